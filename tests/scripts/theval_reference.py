"""Run THEval's own metric functions on mp4 files and print their values as JSON.

Usage: python theval_reference.py THEVAL_REPO WAV_FOLDER SEGMENTS VIDEO.mp4...
       python theval_reference.py --segments PROBS.json

SEGMENTS is ``vad`` (Silero decides) or a JSON list of ``[start, end]`` seconds that replaces
what THEval's ``get_speech_timestamps`` returns (to compare everything downstream of the
network on audio the network finds no speech in). ``--segments`` runs silero-vad 5.1.2's own
``get_speech_timestamps`` on lists of window probabilities (a model that replays them) and
prints the segments it makes.

THEVAL_REPO is a checkout of Newbyl/THEval (its code is executed from there, never copied).
Each script's module is loaded afresh for every video, so its module-level FaceMesh tracker
starts from nothing on each video, as ours does. Lip dynamics and eyebrow dynamics need only
cv2 and mediapipe. Silent-lip stability and lip-sync also import THEval's audio stack
(pydub 0.25.1, librosa 0.11.0, moviepy 1.0.3, decord 0.6.0, silero-vad 5.1.2): put them on
PYTHONPATH (tests/scripts/theval_reference_env.sh installs them into a folder); without them
those values are null. Audio goes through THEval's ``--audio_folder`` route: WAV_FOLDER holds
``<video stem>.wav`` made by THEval's own ``theval.cli.extract_audio`` (16 kHz mono).

silero-vad 5.1.2 imports torchaudio for its file reader only; torchaudio builds for our torch
(>= 2.9) no longer have the backend API that reader calls, so a stand-in module gives it what
torchaudio's soundfile backend did for a 16 kHz mono WAV: the samples as float32 / 32768.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path


def torchaudio_stand_in() -> None:
    import soundfile
    import torch

    module = types.ModuleType("torchaudio")

    def load(path):
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate

    def no_sox(*args, **kwargs):
        raise RuntimeError("no sox here")  # read_audio then takes its torchaudio.load branch

    module.list_audio_backends = lambda: ["soundfile"]
    module.load = load
    module.sox_effects = types.SimpleNamespace(apply_effects_file=no_sox)
    module.transforms = types.SimpleNamespace()
    sys.modules["torchaudio"] = module


def load(repo: Path, relative: str):
    spec = importlib.util.spec_from_file_location(f"theval_{Path(relative).stem}", repo / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Replay:
    """A stand-in VAD model that returns given probabilities, one per window."""

    def __init__(self, probs):
        self.probs = list(probs)

    def reset_states(self):
        self.at = 0

    def __call__(self, chunk, rate):
        import torch

        self.at += 1
        return torch.tensor(self.probs[self.at - 1])


def segments_of(cases: list[dict]) -> list:
    torchaudio_stand_in()
    import torch
    from silero_vad import get_speech_timestamps

    out = []
    for case in cases:
        audio = torch.zeros(case["samples"])
        out.append([[s["start"], s["end"]] for s in get_speech_timestamps(
            audio, Replay(case["probs"]), return_seconds=True)])
    return out


def main() -> None:
    if sys.argv[1] == "--segments":
        print(json.dumps(segments_of(json.loads(Path(sys.argv[2]).read_text()))))
        return
    repo, wavs, forced = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    videos = [Path(p) for p in sys.argv[4:]]
    try:
        torchaudio_stand_in()
        import decord  # noqa: F401
        import librosa  # noqa: F401
        import moviepy.editor  # noqa: F401
        import pydub  # noqa: F401
        import silero_vad
        audio_stack = silero_vad.__version__
    except ImportError as exc:
        audio_stack = None
        print(f"audio stack missing: {exc}", file=sys.stderr)
    sys.path.insert(0, str(repo))
    from theval.cli.extract_audio import extract_audio

    out = {"audio_stack": audio_stack, "videos": {}}
    for video in videos:
        row: dict = {}
        row["lip_dynamics"] = load(repo, "Naturalness/lip_dynamics.py").compute_mouth_diversity(
            str(video)
        )
        row["eyebrow_dynamics"] = load(
            repo, "Naturalness/eyebrow_dynamics.py"
        ).compute_micro_expression_intensity(str(video))
        if audio_stack:
            import cv2
            import librosa

            wav = wavs / f"{video.stem}.wav"
            ok, why = extract_audio(video, wav, 16000, 1, True)
            assert ok, why
            sync = load(repo, "Synchronization/lip_sync.py")
            silent = load(repo, "Synchronization/silent_lip_stability.py")
            if forced != "vad":
                fixed = [{"start": a, "end": b} for a, b in json.loads(forced)]
                sync.get_speech_timestamps = lambda *a, _f=fixed, **k: [dict(s) for s in _f]
                silent.get_speech_timestamps = sync.get_speech_timestamps
            y, sr = librosa.load(str(wav), sr=None)
            row["lip_sync"] = float(sync.process_video(str(video), y, sr, str(wav)))
            wav_audio = sync.read_audio(str(wav))
            row["vad_segments"] = [
                [s["start"], s["end"]]
                for s in sync.get_speech_timestamps(wav_audio, sync.vad_model, return_seconds=True)
            ]
            cap = cv2.VideoCapture(str(video))
            fps, total = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
            frames = silent.detect_silence_frames(str(wav), fps, total)
            row["silent_frames"] = sorted(frames)
            row["silent_lip_stability"] = (
                float(silent.process_video(str(video), frames)) if frames else float("nan")
            )
        out["videos"][str(video)] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
