"""LSE-C / LSE-D: parity with syncnet-python on identical inputs and weights, and bad input.

The reference is syncnet-python 0.2.3 itself: ``SyncNetInstance.evaluate`` (weights loaded
by its own ``loadParameters``), its pipeline's ``_track`` and ``_crop``, and
``S3FD.detect_faces``. Networks are random (no weights can be downloaded here), saved in
the real file formats into a temporary weights cache and loaded through the suite's loader.
``evaluate`` reads ``*.jpg`` files with ``cv2.imread``; the tests write PNG bytes under those
names, which imread decodes by content, so both sides see the same pixels.
"""

from __future__ import annotations

import dataclasses
import io
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.io import wavfile
from syncnet_python import syncnet_pipeline
from syncnet_python.detectors.s3fd import S3FD
from syncnet_python.detectors.s3fd.nets import S3FDNet
from syncnet_python.SyncNetInstance import SyncNetInstance
from syncnet_python.SyncNetModel import S

from auhead_bench import BenchError, Clip, ClipSkipped, ClipView, VideoView, media
from auhead_bench.frames import FrameSource
from auhead_bench.media import sha256_file
from auhead_bench.plugins import get_registry
from auhead_bench.weights import WeightsMissing
from auhead_bench_metrics import lse
from auhead_bench_metrics import syncnet_features as sf

RTOL = 1e-4
CLIP = Clip(id="c", video=Path("clip.mp4"))


# ---- weights: random networks of the real architectures, in the real file formats ----------


def _random_syncnet() -> S:
    torch.manual_seed(0)
    net = S()
    for module in net.modules():  # non-trivial BatchNorm statistics, as trained weights have
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return net


def _faceless_s3fd() -> S3FDNet:
    """A random S3FD whose classifier says 'background' everywhere: a video with no face."""
    torch.manual_seed(1)
    net = S3FDNet(device="cpu")
    with torch.no_grad():
        for layer in net.conf:
            layer.weight.zero_()
        net.conf[0].bias.copy_(torch.tensor([8.0, 8.0, 8.0, -8.0]))
        for layer in net.conf[1:]:
            layer.bias.copy_(torch.tensor([8.0, -8.0]))
    return net


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    """Both weight files, written once for this module (S3FD's is ~90 MB)."""
    root = tmp_path_factory.mktemp("weights")
    files = {}
    for spec, net in ((sf.SYNCNET_WEIGHTS, _random_syncnet()), (sf.S3FD_WEIGHTS, _faceless_s3fd())):
        path = root / spec.name / spec.filename
        path.parent.mkdir(parents=True)
        torch.save(net.state_dict(), path)
        files[spec.name] = path
    return files


@pytest.fixture
def weights(weight_files, monkeypatch) -> dict[str, Path]:
    """The cache points at the random files, and the specs expect their hashes.

    The published hashes are those of the real files; a random file never passes them
    (``test_random_weights_never_pass_for_the_real_ones``).
    """
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(next(iter(weight_files.values())).parents[1]))
    for name, path in weight_files.items():
        spec = dataclasses.replace(sf.WEIGHTS[name], sha256=sha256_file(path))
        monkeypatch.setitem(sf.WEIGHTS, name, spec)
    return weight_files


# ---- media and helpers ----------------------------------------------------------------------


def _speech_like(frames: int, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated noise: MFCCs that change from frame to frame, unlike a tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames * sf.SAMPLES_PER_FRAME) / media.SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * rng.standard_normal(t.size) * envelope).astype(np.float32)


def _frames(count: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    return np.stack([np.roll(base, 2 * t, axis=1) for t in range(count)])


def _in_memory(frames: np.ndarray, audio: np.ndarray | None) -> VideoView:
    """``audio`` None: a video without an audio track."""
    return VideoView.from_arrays(frames, audio, path=Path("clip.mp4"))


def _from_file(path: Path) -> VideoView:
    """The file as the feature store hands it to an extractor: one decode pass, in chunks."""
    return VideoView(FrameSource(path), sha256_file(path))


def _fixed_faces(boxes: list[np.ndarray]):
    """A ``find_faces`` giving ``boxes`` (one entry per frame of the video) chunk by chunk:
    the extractor calls it once per chunk of frames, in order, with that chunk's frames."""
    seen = [0]

    def find_faces(self, frames: np.ndarray) -> list[np.ndarray]:
        start = seen[0] % len(boxes)  # a second extraction starts again at frame 0
        seen[0] += len(frames)
        found = boxes[start : start + len(frames)]
        assert len(found) == len(frames)
        return found

    return find_faces


def _features(extractor: sf.SyncNetCurves, video: VideoView) -> VideoView:
    """Extract, then round-trip through .npz exactly as the runner's feature cache does."""
    buffer = io.BytesIO()
    np.savez(buffer, **extractor.extract(video))
    buffer.seek(0)
    with np.load(buffer) as data:
        arrays = {name: data[name] for name in data.files}
    return video.with_features({extractor.id: arrays})


def _reference_evaluate(folder: Path, crops_bgr: np.ndarray, pcm: np.ndarray, weights: Path):
    """syncnet-python's SyncNetInstance.evaluate on these crops and samples: (offset, C, D)."""
    folder.mkdir(parents=True)
    for index, crop in enumerate(crops_bgr):
        ok, png = cv2.imencode(".png", crop)
        assert ok
        (folder / f"{index:06d}.jpg").write_bytes(png.tobytes())
    wavfile.write(folder / "audio.wav", media.SAMPLE_RATE, pcm)
    instance = SyncNetInstance(S(), device="cpu")
    instance.loadParameters(str(weights))
    opt = types.SimpleNamespace(tmp_dir=str(folder), batch_size=20, vshift=15)
    return instance.evaluate(opt)


def _scores(features: VideoView, mode: str, **options):
    c_cls, d_cls = {
        "s3fd": (lse.LSECS3FD, lse.LSEDS3FD),
        "wholeframe": (lse.LSECWholeFrame, lse.LSEDWholeFrame),
    }[mode]
    return (
        c_cls(c_cls.Options(**options)).score(ClipView(CLIP, features)),
        d_cls(d_cls.Options(**options)).score(ClipView(CLIP, features)),
    )


def _close(ours: float, reference: float) -> bool:
    return abs(ours - reference) <= RTOL * abs(reference)


# ---- parity -----------------------------------------------------------------------------------


def test_wholeframe_matches_syncnet_python_evaluate(weights, tmp_path):
    """Wav2Lip LRS mode: the reference gets the same decoded frames resized to 224."""
    path = tmp_path / "clip.mp4"
    media.write_video(path, _frames(24, 64), _speech_like(24))
    video = _from_file(path)
    extractor = sf.SyncNetWholeFrame()
    extractor.setup("cpu")
    c, d = _scores(_features(extractor, video), "wholeframe")

    frames = video.all_frames()
    resized = np.stack([cv2.resize(f[..., ::-1].copy(), (224, 224)) for f in frames])
    offset, conf, dist = _reference_evaluate(
        tmp_path / "ref", resized, sf.pcm16(video.audio), weights["syncnet_v2"]
    )
    assert _close(c.value, conf) and _close(d.value, dist)
    assert c.info["offset"] == d.info["offset"] == offset
    assert c.info["windows"] == min(len(frames), len(video.audio) // 640) - 5


def test_s3fd_tracks_match_syncnet_python_pipeline(weights, tmp_path, monkeypatch):
    """S3FD mode with the detections fixed (random S3FD weights find nothing meaningful).

    Controlled: the per-frame face boxes, and the minimum track length (12 on both sides,
    to keep the clip short on CPU). Compared with the package's own code: tracks
    (``SyncNetPipeline._track``), crops (``_crop``, its XVID writer replaced by a recorder
    and its ffmpeg calls skipped) and scores (``evaluate`` on those crops and the track's
    audio samples).
    """
    count, min_track = 20, 12
    monkeypatch.setattr(sf, "MIN_TRACK", min_track)
    path = tmp_path / "clip.mp4"
    media.write_video(path, _frames(count, 200, seed=3), _speech_like(count, seed=3))
    video = _from_file(path)
    boxes = [
        np.array([[40 + 3 * np.sin(t / 5), 30 + 2 * np.cos(t / 7), 160 + t % 3, 155, 0.99]])
        for t in range(count)
    ]
    monkeypatch.setattr(sf.SyncNetS3FD, "find_faces", _fixed_faces(boxes))
    extractor = sf.SyncNetS3FD()
    extractor.setup("cpu")
    c, d = _scores(_features(extractor, video), "s3fd")
    frames = video.all_frames()

    pipeline = syncnet_pipeline.SyncNetPipeline.__new__(syncnet_pipeline.SyncNetPipeline)
    pipeline.cfg = syncnet_pipeline.PipelineConfig(min_track=min_track)
    faces = [[{"frame": t, "bbox": b[0, :4].tolist(), "conf": 0.99}] for t, b in enumerate(boxes)]
    (track,) = pipeline._track(faces)
    frame_files = []
    for index, frame in enumerate(frames):
        frame_files.append(tmp_path / "frames" / f"{index:06d}.jpg")
        frame_files[-1].parent.mkdir(exist_ok=True)
        frame_files[-1].write_bytes(cv2.imencode(".png", frame[..., ::-1].copy())[1].tobytes())
    written: list[np.ndarray] = []

    class Recorder:
        def __init__(self, filename, *args):
            self.filename = filename

        def write(self, image):
            written.append(image.copy())

        def release(self):
            Path(self.filename).touch()

    monkeypatch.setattr(syncnet_pipeline.cv2, "VideoWriter", Recorder)
    monkeypatch.setattr(syncnet_pipeline.subprocess, "run", lambda *a, **k: None)
    pipeline._crop(track, [str(f) for f in frame_files], "unused.wav", tmp_path / "crop" / "0")
    reference_crops = np.stack(written)
    assert np.array_equal(sf.crop_track(frames, track), reference_crops)

    start, end = int(track["frame"][0]), int(track["frame"][-1]) + 1
    pcm = sf.pcm16(video.audio)[start * 640 : end * 640]
    offset, conf, dist = _reference_evaluate(
        tmp_path / "ref", reference_crops, pcm, weights["syncnet_v2"]
    )
    assert _close(c.value, conf) and _close(d.value, dist)
    assert c.info["offset"] == offset and c.info["tracks"] == 1


def test_batched_s3fd_matches_detect_faces():
    """Our batched S3FD call gives S3FD.detect_faces(conf_th=0.9, scales=[0.25])'s boxes."""
    torch.manual_seed(2)
    net = S3FDNet(device="cpu").eval()
    with torch.no_grad():  # make the random detector confident somewhere, so boxes exist
        for layer in net.conf:
            layer.weight.mul_(0.01)
        net.conf[0].bias.copy_(torch.tensor([-4.0, -4.0, -4.0, 4.0]))
        net.conf[2].bias.copy_(torch.tensor([-4.0, 4.0]))
    frames = np.random.default_rng(0).integers(0, 256, (3, 160, 200, 3)).astype(np.uint8)
    ours = sf.detect_faces(net, frames, "cpu", batch_size=2)
    reference = S3FD(net, device="cpu")
    for frame, boxes in zip(frames, ours, strict=True):
        expected = reference.detect_faces(frame, conf_th=0.9, scales=[0.25])
        assert len(expected) > 1
        np.testing.assert_allclose(boxes, expected, rtol=0, atol=1e-3)


# ---- bad input ----------------------------------------------------------------------------------


def test_no_face_skips_the_clip_with_the_reason(weights):
    """The real S3FD path (a detector that sees no face) -> ClipSkipped, never inf."""
    extractor = sf.SyncNetS3FD()
    extractor.setup("cpu")
    video = _in_memory(_frames(20, 128), _speech_like(20))
    features = _features(extractor, video)
    for metric in (lse.LSECS3FD(), lse.LSEDS3FD()):
        with pytest.raises(ClipSkipped, match="no face track of more than 50 frames") as info:
            metric.score(ClipView(CLIP, features))
        assert "faces detected in 0 of 20 frames" in str(info.value)


def test_a_face_track_too_short_is_skipped(weights, monkeypatch):
    boxes = [np.array([[10.0, 10.0, 130.0, 130.0, 0.99]]) if t < 30 else np.zeros((0, 5))
             for t in range(56)]
    monkeypatch.setattr(sf.SyncNetS3FD, "find_faces", _fixed_faces(boxes))
    extractor = sf.SyncNetS3FD()
    extractor.setup("cpu")
    features = _features(extractor, _in_memory(_frames(56, 160), _speech_like(56)))
    with pytest.raises(ClipSkipped, match=r"more than 50 frames.*detected in 30 of 56 frames"):
        lse.LSEDS3FD().score(ClipView(CLIP, features))


def test_silent_audio_is_scored_and_flagged(weights):
    extractor = sf.SyncNetWholeFrame()
    extractor.setup("cpu")
    video = _in_memory(_frames(12, 32), np.zeros(12 * 640, np.float32))
    c, d = _scores(_features(extractor, video), "wholeframe")
    assert np.isfinite(c.value) and np.isfinite(d.value)
    assert c.info["silent_audio"] and d.info["silent_audio"]


def test_no_audio_track_is_skipped(weights):
    extractor = sf.SyncNetWholeFrame()
    extractor.setup("cpu")
    features = _features(extractor, _in_memory(_frames(12, 32), None))
    with pytest.raises(ClipSkipped, match="no audio track"):
        lse.LSECWholeFrame().score(ClipView(CLIP, features))


def test_length_mismatch_truncates_to_the_shorter(weights):
    """20 frames with 12 frames of audio score exactly like the first 12 frames alone."""
    extractor = sf.SyncNetWholeFrame()
    extractor.setup("cpu")
    frames, audio = _frames(20, 32), _speech_like(12)
    long_video = _scores(_features(extractor, _in_memory(frames, audio)), "wholeframe")
    short_video = _scores(_features(extractor, _in_memory(frames[:12], audio)), "wholeframe")
    for ours, truncated in zip(long_video, short_video, strict=True):
        assert ours.value == pytest.approx(truncated.value, rel=1e-6)
        assert ours.info["windows"] == 12 - 5
        assert (ours.info["video_frames"], ours.info["audio_frames"]) == (20, 12)


def test_too_short_a_clip_is_skipped(weights):
    extractor = sf.SyncNetWholeFrame()
    extractor.setup("cpu")
    features = _features(extractor, _in_memory(_frames(5, 32), _speech_like(5)))
    with pytest.raises(ClipSkipped, match="fewer than 6 frames with both video and audio"):
        lse.LSEDWholeFrame().score(ClipView(CLIP, features))


def test_missing_weights_name_the_pull_command(weight_files, tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull syncnet_v2"):
        lse.LSEDWholeFrame().setup("cpu")
    only_syncnet = tmp_path / "partial"
    (only_syncnet / "syncnet_v2").mkdir(parents=True)
    (only_syncnet / "syncnet_v2" / "syncnet_v2.model").write_bytes(
        weight_files["syncnet_v2"].read_bytes()
    )
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(only_syncnet))
    monkeypatch.setitem(sf.WEIGHTS, "syncnet_v2", dataclasses.replace(
        sf.SYNCNET_WEIGHTS, sha256=sha256_file(weight_files["syncnet_v2"])))
    lse.LSEDWholeFrame().setup("cpu")  # whole-frame mode needs SyncNet only
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull s3fd_sfd_face"):
        lse.LSECS3FD().setup("cpu")


def test_random_weights_never_pass_for_the_real_ones(weight_files, monkeypatch):
    """With the published sha256, a file of other weights is refused, naming the fix."""
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(weight_files["syncnet_v2"].parents[1]))
    with pytest.raises(WeightsMissing, match="do not match their sha256"):
        lse.LSECWholeFrame().setup("cpu")


def test_a_file_of_other_weights_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "syncnet_v2" / "syncnet_v2.model"
    path.parent.mkdir()
    torch.save({"w": torch.zeros(2)}, path)
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setitem(sf.WEIGHTS, "syncnet_v2",
                        dataclasses.replace(sf.SYNCNET_WEIGHTS, sha256=sha256_file(path)))
    with pytest.raises(BenchError, match="weights do not fit S.*weights pull syncnet_v2 --force"):
        sf.SyncNetWholeFrame().setup("cpu")


# ---- aggregation and registration ----------------------------------------------------------


def _curves(dists: list[list[float]], windows: list[int]) -> VideoView:
    count = len(dists)
    arrays = {
        "dists": np.array(dists, np.float32),
        "offsets": 15 - np.argmin(dists, axis=1),
        "windows": np.array(windows),
        "track_start": np.arange(count) * 100,
        "track_end": np.arange(count) * 100 + np.array(windows) + 5,
        "video_frames": np.array(400),
        "audio_frames": np.array(400),
        "silent": np.array(False),
        "skipped": np.array(""),
    }
    blank = np.zeros((1, 2, 2, 3), np.uint8)  # the metric reads only the curves
    return VideoView.from_arrays(blank, features={"syncnet_s3fd": arrays}, content_sha256="x")


def test_tracks_are_combined_by_the_named_rule():
    first = np.full(31, 10.0)
    first[15 - 3] = 4.0  # minimum at offset +3: LSE-D 4, LSE-C 6
    second = np.full(31, 9.0)
    second[15] = 1.0  # minimum at offset 0: LSE-D 1, LSE-C 8
    features = _curves([first.tolist(), second.tolist()], windows=[200, 60])
    c, d = _scores(features, "s3fd", track_aggregation="best")
    assert (c.value, d.value, c.info["offset"], d.info["offset"]) == (8.0, 1.0, 0, 0)
    c, d = _scores(features, "s3fd", track_aggregation="longest")
    assert (c.value, d.value, c.info["offset"], c.info["track"]) == (6.0, 4.0, 3, [0, 205])
    c, d = _scores(features, "s3fd", track_aggregation="mean")
    assert (c.value, d.value, c.info["offset"]) == (7.0, 2.5, [3, 0])


def test_metrics_share_one_extractor_per_protocol():
    registry = get_registry()
    for protocol in ("s3fd", "wholeframe"):
        c = registry.get("metric", f"lse_c_{protocol}").cls
        d = registry.get("metric", f"lse_d_{protocol}").cls
        assert c.needs == d.needs == (f"syncnet_{protocol}",)
        assert c.higher_is_better and not d.higher_is_better
        assert not c.needs_ground_truth
        assert registry.get("extractor", f"syncnet_{protocol}")
        assert c().protocol()["syncnet"]["crop"] == d().protocol()["syncnet"]["crop"]
