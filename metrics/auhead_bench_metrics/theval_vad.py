"""THEval's speech/silence decision: Silero VAD v5 speech segments of a video's audio.

THEval's ``lip_sync.py`` and ``silent_lip_stability.py`` decide which frames are speech with
Silero VAD (``silero-vad==5.1.2``: ``load_silero_vad()`` then ``get_speech_timestamps(wav,
model, return_seconds=True)`` at its defaults), not with an energy threshold. The decision is a
network's, so it needs that network: the TorchScript file the 5.1.2 wheel ships, declared here
as weights (``auhead-bench weights pull silero_vad_v5``; an installed silero-vad 5.x package's
own copy is used when its sha256 matches).

The package itself is not a dependency: its ``read_audio`` needs torchaudio's pre-2.9 audio
backends, and it pins torchaudio, which would pull another torch. So the model runs here through
``torch.jit`` on our decoded 16 kHz mono audio, and the segmentation that turns its per-window
speech probabilities into segments (hysteresis thresholds, minimum speech and silence, padding,
rounding to 0.1 s) is ours, written from 5.1.2's ``get_speech_timestamps`` at THEval's
arguments and tested against that function (tests/test_theval.py).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench import Extractor, VideoView, hookimpl
from auhead_bench.weights import WeightsMissing, WeightsSpec, file_sha256, locate

SILERO_VAD_V5 = WeightsSpec(
    name="silero_vad_v5",
    filename="silero_vad.jit",
    source="https://github.com/snakers4/silero-vad/raw/v5.1.2/src/silero_vad/data/silero_vad.jit",
    # The file in the silero-vad 5.1.2 wheel and at the repository's tag v5.1.2 (both hashed).
    sha256="85c48e1f0ecb604e5d2a268f3ccfb912d4f7e935acdc86af5a3fc5b0aea7b29a",
    licence="MIT (Silero Team)",
    description="Silero VAD v5 TorchScript model (silero-vad 5.1.2), THEval's speech decision",
)

RATE = 16000
WINDOW = 512  # samples per speech probability at 16 kHz (5.1.2's only window there)
# get_speech_timestamps' defaults, which THEval keeps.
THRESHOLD = 0.5
NEG_THRESHOLD = THRESHOLD - 0.15
MIN_SPEECH_MS = 250
MIN_SILENCE_MS = 100
SPEECH_PAD_MS = 30
RMS_SECONDS = 0.05  # lip_sync.py: RMS frame and hop length
MIN_SILENT_RUN_MS = 300  # silent_lip_stability.py: MIN_SILENCE_DURATION


def find_model(spec: WeightsSpec = SILERO_VAD_V5) -> Path:
    """Our weights cache first; else an installed silero-vad package's own file with the same
    sha256 (found without importing the package, which needs torchaudio)."""
    try:
        return locate(spec)
    except WeightsMissing as missing:
        found = importlib.util.find_spec("silero_vad")
        if found is not None and found.submodule_search_locations:
            for folder in found.submodule_search_locations:
                path = Path(folder) / "data" / spec.filename
                if path.is_file() and file_sha256(path) == spec.sha256:
                    return path
        raise missing


def speech_probabilities(model: Any, audio: np.ndarray) -> np.ndarray:
    """The model's speech probability for each 512-sample window (the last one zero-padded),
    its state reset first: the loop of ``get_speech_timestamps``. One torch thread, as
    silero-vad sets on import: the model's ops are tiny, and two threads ran it ~10x slower
    (6 s of audio: 0.43 s on one thread, 3-7 s on two, on this 2-core machine)."""
    import torch

    model.reset_states()
    samples = torch.from_numpy(np.ascontiguousarray(audio, np.float32))
    probs = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for start in range(0, len(samples), WINDOW):
                chunk = samples[start : start + WINDOW]
                if len(chunk) < WINDOW:
                    chunk = torch.nn.functional.pad(chunk, (0, WINDOW - len(chunk)))
                probs.append(model(chunk, RATE).item())
    finally:
        torch.set_num_threads(threads)
    return np.array(probs, np.float64)


def speech_segments(probs: np.ndarray, length: int) -> list[tuple[float, float]]:
    """Speech segments in seconds from window probabilities, as 5.1.2's
    ``get_speech_timestamps(..., return_seconds=True)`` makes them at its defaults (no
    maximum segment length, so its splitting branch never runs). ``length``: audio samples.
    """
    min_speech = RATE * MIN_SPEECH_MS / 1000
    min_silence = RATE * MIN_SILENCE_MS / 1000
    pad = RATE * SPEECH_PAD_MS / 1000
    speeches: list[dict[str, float]] = []
    current: dict[str, float] = {}
    triggered = False
    temp_end = 0
    for i, prob in enumerate(probs):
        here = WINDOW * i
        if prob >= THRESHOLD and temp_end:
            temp_end = 0
        if prob >= THRESHOLD and not triggered:
            triggered = True
            current["start"] = here
            continue
        if prob < NEG_THRESHOLD and triggered:
            if not temp_end:
                temp_end = here
            if here - temp_end < min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech:
                speeches.append(current)
            current, temp_end, triggered = {}, 0, False
    if current and length - current["start"] > min_speech:
        current["end"] = length
        speeches.append(current)
    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1]["start"] - speech["end"]
            if gap < 2 * pad:
                speech["end"] += int(gap // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - gap // 2))
            else:
                speech["end"] = int(min(length, speech["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(length, speech["end"] + pad))
    return [(round(s["start"] / RATE, 1), round(s["end"] / RATE, 1)) for s in speeches]


def speech_frames(segments: np.ndarray, count: int, fps: float) -> np.ndarray:
    """Frames ``int(start * fps)`` .. ``int(end * fps)`` of each speech segment (lip_sync.py's
    ``detect_speech_segments``; silent_lip_stability.py removes the same frames)."""
    speech = np.zeros(count, bool)
    for start, end in np.asarray(segments, np.float64).reshape(-1, 2):
        speech[int(start * fps) : min(int(end * fps) + 1, count)] = True
    return speech


def silent_frames(segments: np.ndarray, count: int, fps: float) -> np.ndarray:
    """Non-speech frames in runs of at least 0.3 s (``detect_silence_frames``)."""
    silent = ~speech_frames(segments, count, fps)
    keep = np.zeros(count, bool)
    shortest = MIN_SILENT_RUN_MS / 1000 * fps
    start = None
    for t in range(count + 1):
        if t < count and silent[t]:
            start = t if start is None else start
        elif start is not None:
            if t - start >= shortest:
                keep[start:t] = True
            start = None
    return keep


def audio_rms(audio: np.ndarray, rate: int) -> np.ndarray:
    """librosa.feature.rms with frame = hop = 50 ms, centred (zero padding): lip_sync.py's
    ``compute_volume`` before it interpolates at the video frames' times. Written here: it
    is a few lines of numpy, and librosa would pull numba for them."""
    length = int(rate * RMS_SECONDS)
    padded = np.pad(np.asarray(audio, np.float64), length // 2)
    if len(padded) < length:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(padded, length)[::length]
    return np.sqrt(np.mean(frames**2, axis=1))


class SileroVAD(Extractor):
    """Speech segments of the video's audio (seconds), THEval's speech/silence decision; with
    the audio's RMS per 50 ms (lip-sync's volume), so no metric decodes the audio itself."""

    id = "theval_vad_silero_v5"
    description = "Silero VAD v5 speech segments (s) at get_speech_timestamps' defaults, as THEval."
    version = "1"
    needs = ("audio",)

    def __init__(self) -> None:
        self._model: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "sample_rate": RATE, "window": WINDOW, "threshold": THRESHOLD,
            "neg_threshold": NEG_THRESHOLD, "min_speech_duration_ms": MIN_SPEECH_MS,
            "min_silence_duration_ms": MIN_SILENCE_MS, "speech_pad_ms": SPEECH_PAD_MS,
            "return_seconds": "round(s, 1)", "rms": "librosa.feature.rms 50 ms frame and hop",
        }  # fmt: skip

    def weights(self) -> dict[str, str]:
        # The expected hash: the file is only ever loaded after matching it.
        return {SILERO_VAD_V5.filename: str(SILERO_VAD_V5.sha256)}

    def setup(self, device: str) -> None:
        """Load the TorchScript model on the CPU (as silero-vad does; it is tiny)."""
        if self._model is None:
            import torch

            path = find_model()
            with warnings.catch_warnings():  # deprecated for torch.export; the file is TorchScript
                warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
                self._model = torch.jit.load(str(path), map_location="cpu").eval()

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        self.setup("cpu")
        audio = video.audio if video.has_audio else np.zeros(0, np.float32)
        probs = speech_probabilities(self._model, audio)
        segments = speech_segments(probs, len(audio))
        return {
            "segments": np.array(segments, np.float64).reshape(-1, 2),
            "probabilities": probs.astype(np.float32),
            "samples": np.array(len(audio), np.int64),
            "rms": audio_rms(audio, RATE),
        }


@hookimpl
def register_extractors(register):
    register(SileroVAD)


@hookimpl
def register_weights(register):
    register(SILERO_VAD_V5)
