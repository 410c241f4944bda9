"""LSE exact modes against the reference scripts, from the same mp4 files.

Ours: ``syncnet_exact``'s extractors scored by the ``lse_*_syncnet_python`` and
``lse_*_wav2lip_lrs`` metrics. Theirs: ``lse_parity``'s run of the scripts' own FFmpeg
command lines, OpenCV XVID writer, syncnet-python's S3FD/SyncNetPipeline loaders and
``SyncNetInstance.evaluate`` on the JPEG files FFmpeg wrote (joonson's run_pipeline.py glue
restated: it is not importable). SyncNet is random, saved in the real format. S3FD runs
unpatched on both sides (``S3FD.detect_faces``: scale, threshold, NMS, decoding): its weights,
saved in the real format, are chosen so that it finds one ~160 px face in a light frame and
none in a dark one, the box moving with the frame's brightness (``brightness_s3fd``).
joonson's own ``> 100`` frame rule is kept on both sides.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from optional import FFMPEG, needs_binary
from syncnet_python.detectors.s3fd import S3FD
from syncnet_python.detectors.s3fd.nets import S3FDNet
from syncnet_python.syncnet_pipeline import PipelineConfig, SyncNetPipeline
from syncnet_python.SyncNetModel import S

from auhead_bench import BenchError, Clip, ClipSkipped, ClipView, VideoView, media
from auhead_bench.config import RunConfig
from auhead_bench.frames import FrameSource
from auhead_bench.media import sha256_file
from auhead_bench.metric import NotComputed
from auhead_bench.parity import collect_checks, run_parity
from auhead_bench.plugins import get_registry
from auhead_bench_metrics import lse, lse_parity
from auhead_bench_metrics import syncnet_exact as ex
from auhead_bench_metrics import syncnet_features as sf

pytestmark = needs_binary("ffmpeg", FFMPEG)  # the reference scripts' own command lines
RTOL = 1e-4
FACE = [48.0, 40.0, 208.0, 216.0]  # a 160 px face in a 256 px frame
CHECK_IDS = ["syncnet_python-lse-c", "syncnet_python-lse-d", "wav2lip-lrs-lse-c",
             "wav2lip-lrs-lse-d"]


def brightness_s3fd() -> S3FDNet:
    """An S3FDNet that finds one face, about 160 px, where the frame is light, by S3FD's own
    code: its detections are fixed by its weights (no patched method).

    Every VGG/extra conv passes the mean of the (mean-subtracted) BGR input on through channel
    0 (max-pooled on the way), the last extra averaging the 2x2 map into the one cell of the
    stride-64 head (1024 px anchor at ``scales=[0.25]`` of a 256 px frame). That head's face
    logit is 60 * brightness - 30 (0 for background): a dark frame has no face. Its box is the
    anchor shrunk to ~160 px, shifted right by 10 px per 0.02 of brightness over 0.75, so the
    box moves as the frames' brightness changes. Every other head says background.
    """
    net = S3FDNet(device="cpu")
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
        convs = [m for m in net.vgg if isinstance(m, torch.nn.Conv2d)] + [net.extras[0]]
        convs[0].weight[0, :, 1, 1] = 1 / 3 / 255
        convs[0].bias[0] = 0.5
        for conv in convs[1:]:
            centre = conv.kernel_size[0] // 2
            conv.weight[0, 0, centre, centre] = 1.0
        net.extras[1].weight[0, 0, 1:, 1:] = 0.25  # stride 2 over the 2x2 map: its mean
        for conf in net.conf:
            conf.bias[0] = 10.0  # background everywhere ...
        net.conf[4].bias[0] = 0.0  # ... but where the stride-64 head sees a light frame
        net.conf[4].weight[1, 0, 1, 1] = 60.0
        net.conf[4].bias[1] = -30.0
        loc = net.loc[4]  # decoded as anchor * exp(0.2 * size), centre + 0.1 * anchor * x
        loc.bias[2] = loc.bias[3] = float(np.log(160 / 1024) / 0.2)
        loc.weight[0, 0, 1, 1] = 5.0
        loc.bias[0] = -5.0 * 0.75
    return net


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    syncnet = S()
    for module in syncnet.modules():  # non-trivial BatchNorm statistics, as trained weights
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    files = {}
    for spec, net in ((sf.SYNCNET_WEIGHTS, syncnet), (sf.S3FD_WEIGHTS, brightness_s3fd())):
        path = root / spec.name / spec.filename
        path.parent.mkdir(parents=True)
        torch.save(net.state_dict(), path)
        files[spec.name] = path
    return files


@pytest.fixture
def weights(weight_files, monkeypatch) -> dict[str, Path]:
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(weight_files["syncnet_v2"].parents[1]))
    for name, path in weight_files.items():
        monkeypatch.setitem(sf.WEIGHTS, name,
                            dataclasses.replace(sf.WEIGHTS[name], sha256=sha256_file(path)))
    lse_parity._memo.clear()
    return weight_files


@pytest.fixture
def one_face(weights, tmp_path) -> None:
    """The light head of ``talking_clip`` is the one face S3FD finds (unpatched, both sides)."""
    clip = talking_clip(tmp_path / "one_face.mp4", 3)
    ex.ffmpeg(ex.DUMP_FRAMES, src=clip, dst=tmp_path / "one_face%06d.jpg")
    jpeg = sorted(tmp_path.glob("one_face*.jpg"))[0]
    detector = S3FD(sf.load_s3fd("cpu"), device="cpu")
    frame = cv2.cvtColor(cv2.imread(str(jpeg)), cv2.COLOR_BGR2RGB)
    boxes = detector.detect_faces(frame, conf_th=sf.FACEDET_CONF, scales=[sf.FACEDET_SCALE])
    assert len(boxes) == 1 and boxes[0, 4] > sf.FACEDET_CONF
    side = max(boxes[0, 2] - boxes[0, 0], boxes[0, 3] - boxes[0, 1])
    assert side > ex.MIN_FACE_SIZE  # a face the tracker keeps
    dark = detector.detect_faces(frame // 4, conf_th=sf.FACEDET_CONF,
                                 scales=[sf.FACEDET_SCALE])
    assert len(dark) == 0  # the detector's threshold decides


def talking_clip(path: Path, frames: int, seed: int = 0, audio: bool = True,
                 size: int = 256) -> Path:
    """A grey head whose mouth opens with a speech-like envelope: smooth enough that
    PySceneDetect finds one shot, textured enough that JPEG/MPEG-4 coding changes it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    texture = rng.integers(0, 24, (256, 256, 1))
    video = []
    for t in range(frames):
        image = np.full((256, 256, 3), 90, np.int64) + texture
        image[(x - 128) ** 2 / 80**2 + (y - 128) ** 2 / 95**2 < 1] += np.array([90, 60, 40])
        mouth = 4 + 14 * abs(np.sin(t / 3.0 + seed))
        image[(x - 128) ** 2 / 30**2 + (y - 170) ** 2 / mouth**2 < 1] = (60, 20, 30)
        image = np.clip(image + (t % 5), 0, 255).astype(np.uint8)
        video.append(image if size == 256 else cv2.resize(image, (size, size)))
    t = np.arange(frames * sf.SAMPLES_PER_FRAME) / media.SAMPLE_RATE
    sound = (0.3 * rng.standard_normal(t.size) * np.abs(np.sin(t * 25 / 3.0 + seed))
             ).astype(np.float32)
    media.write_video(path, np.stack(video), sound if audio else None)
    return path


def view(path: Path) -> VideoView:
    return VideoView(FrameSource(path), sha256_file(path))


def ours(extractor_cls, path: Path, metric_ids=("c", "d"), **options):
    extractor = extractor_cls()
    extractor.setup("cpu")
    arrays = extractor.extract(view(path))
    features = view(path).with_features({extractor.id: arrays})
    mode = {ex.SyncNetPythonPipeline: "SyncNetPython", ex.SyncNetWav2LipLRS: "Wav2LipLRS"}[
        extractor_cls]
    scores = []
    for which in metric_ids:
        cls = getattr(lse, f"LSE{which.upper()}{mode}")
        scores.append(cls(cls.Options(**options)).score(ClipView(Clip(id="c", video=path),
                                                                 features)))
    return arrays, scores


def close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(b), 1.0)


# ---- parity on single files ------------------------------------------------------------------


def test_syncnet_python_mode_matches_the_scripts(weights, one_face, tmp_path):
    path = talking_clip(tmp_path / "long.mp4", 110)
    arrays, (c, d) = ours(ex.SyncNetPythonPipeline, path)
    lines = lse_parity.real_videos_lines(path, tmp_path / "ref", "cpu")
    assert len(lines) == 1 == len(arrays["dists"])
    offset, conf, dist = lines[0]
    assert close(c.value, conf) and close(d.value, dist), (c.value, conf, d.value, dist)
    assert c.info["offset"] == [offset]
    assert (int(arrays["track_start"][0]), int(arrays["track_end"][0])) == (0, 110)
    # the crops really went through lossy files: the curve differs from in-memory crops
    fast = sf.SyncNetS3FD()
    fast.setup("cpu")
    fast.find_faces = lambda frames: [np.array([[*FACE, 0.99]]) for _ in frames]
    in_memory = fast.extract(view(path))["dists"]
    assert not np.allclose(in_memory, arrays["dists"], rtol=1e-4)


def test_a_track_of_100_frames_or_fewer_gives_no_score_on_either_side(weights, one_face,
                                                                      tmp_path):
    """run_pipeline.py's rule is len(track) > 100 (syncnet-python's package says > 50).

    Its ``-async 1 -r 25`` re-encode can add frames (AAC priming lengthens the audio), so
    the dumps can hold a frame or two more than the shot PySceneDetect reads."""
    for frames in (60, 100):
        path = talking_clip(tmp_path / f"short{frames}.mp4", frames)
        arrays, _ = ours(ex.SyncNetPythonPipeline, path, metric_ids=())
        assert lse_parity.real_videos_lines(path, tmp_path / f"ref{frames}", "cpu") == []
        assert len(arrays["dists"]) == 0 and set(arrays["faces"].tolist()) == {1}
        assert frames <= len(arrays["faces"]) <= frames + 2  # dumps of the avi: +2 here
        features = view(path).with_features({ex.SyncNetPythonPipeline.id: arrays})
        with pytest.raises(ClipSkipped, match="no face track of more than 100 frames"):
            lse.LSEDSyncNetPython().score(ClipView(Clip(id="c", video=path), features))


def test_wav2lip_lrs_mode_matches_the_script(weights, tmp_path):
    path = talking_clip(tmp_path / "clip.mp4", 30, seed=2)
    arrays, (c, d) = ours(ex.SyncNetWav2LipLRS, path)
    offset, conf, dist = lse_parity.wav2lip_evaluate(lse_parity._instance("cpu"), path,
                                                     tmp_path / "ref")
    assert close(c.value, conf) and close(d.value, dist)
    assert c.info["offset"] == offset and c.info["windows"] == 25


def test_default_quality_jpeg_dumps_are_what_the_mode_reads(tmp_path):
    """FFmpeg's image2 default (no -qscale) is far lossier than the -qscale:v 2 dumps."""
    path = talking_clip(tmp_path / "clip.mp4", 10, audio=False)
    for name, template in (("default", ex.SCORE_FRAMES), ("q2", ex.DUMP_FRAMES)):
        (tmp_path / name).mkdir()
        ex.ffmpeg(template, src=path, dst=tmp_path / name / "%06d.jpg")
    default = sum(f.stat().st_size for f in (tmp_path / "default").glob("*.jpg"))
    q2 = sum(f.stat().st_size for f in (tmp_path / "q2").glob("*.jpg"))
    assert len(list((tmp_path / "default").glob("*.jpg"))) == 10
    assert default < 0.75 * q2  # ~0.51 on this clip


# ---- the tracker --------------------------------------------------------------------------


def _faces(rows: list[list[list[float]]]) -> list[list[dict]]:
    return [[{"frame": t, "bbox": box, "conf": 0.99} for box in boxes]
            for t, boxes in enumerate(rows)]


def test_tracker_tries_the_next_face_where_syncnet_python_gives_up():
    """Frame lists [far face, the tracked face]: joonson's track_shot keeps the first track
    going through the second face; syncnet-python's ``_track`` ends that frame's visit at
    the far face, so its first track dies at one frame and the face's track starts a frame
    late (and the tracks come in another order)."""
    near, far = [10.0, 10.0, 150.0, 150.0], [160.0, 10.0, 250.0, 120.0]
    rows = [[near]] + [[far, near] for _ in range(120)]

    def spans(tracks):
        return [(int(t["frame"][0]), int(t["frame"][-1]), t["bbox"][0].tolist()) for t in tracks]

    expected = [(0, 120, near), (1, 120, far)]
    assert spans(ex.track_shot(_faces(rows))) == expected
    assert spans(lse_parity._track_shot(_faces(rows))) == expected
    package = SyncNetPipeline.__new__(SyncNetPipeline)
    package.cfg = PipelineConfig(min_track=100)
    assert spans(package._track(_faces(rows))) == [(1, 120, far), (1, 120, near)]


def test_tracker_matches_the_script_on_random_detections():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows = []
        for _t in range(rng.integers(100, 140)):
            boxes = []
            for _k in range(rng.integers(0, 4)):
                x, y = rng.choice([20.0, 24.0, 120.0]), rng.choice([10.0, 14.0])
                side = rng.choice([105.0, 120.0])
                boxes.append([x, y, x + side, y + side])
            rows.append(boxes)
        ours_tracks = ex.track_shot(_faces(rows))
        reference = lse_parity._track_shot(_faces(rows))
        assert len(ours_tracks) == len(reference)
        for a, b in zip(ours_tracks, reference, strict=True):
            assert np.array_equal(a["frame"], b["frame"]) and np.array_equal(a["bbox"], b["bbox"])


# ---- tools, samples, end to end ---------------------------------------------------------------


def test_without_ffmpeg_the_exact_modes_are_not_computed(weights, monkeypatch):
    monkeypatch.setattr(ex.shutil, "which", lambda name: None)
    for metric in (lse.LSECSyncNetPython(), lse.LSEDWav2LipLRS()):
        with pytest.raises(NotComputed, match="no `ffmpeg` is on PATH.*apt-get install ffmpeg"):
            metric.setup("cpu")
    lse.LSECWholeFrame().setup("cpu")  # the fast modes need no ffmpeg


def test_sample_values_are_reported_against_the_readme(weights, tmp_path):
    """With random weights the values cannot match: the structure is what is checked."""
    path = talking_clip(tmp_path / "example.mp4", 30, size=224)  # example.avi: 224 px crops
    checks = {c.id: c for c in collect_checks(get_registry())}
    c_values = checks["wav2lip-lrs-lse-c"].samples(path, "cpu")
    d_values = checks["wav2lip-lrs-lse-d"].samples(path, "cpu")
    assert [(v.name, v.documented) for v in c_values + d_values] == [
        ("AV offset", 3.0), ("LSE-C", 10.021), ("LSE-D", 5.353)]
    assert all(v.tolerance == 0.1 and "example.avi" in v.source for v in c_values + d_values)
    extractor = ex.SyncNetWav2LipLRS()
    extractor.resize_on_read = False
    extractor.setup("cpu")
    confidence, distance = lse.track_scores(extractor.extract(view(path))["dists"])
    assert c_values[1].ours == pytest.approx(confidence[0]) and d_values[0].ours == \
        pytest.approx(distance[0])
    assert isinstance(c_values[0].passed, bool)
    with pytest.raises(BenchError, match="224x224"):
        checks["wav2lip-lrs-lse-d"].samples(talking_clip(tmp_path / "big.mp4", 8), "cpu")


def test_run_parity_end_to_end(weights, one_face, tmp_path):
    """Two demo clips (50 frames: no track of more than 100 frames for either side) and a
    110-frame clip (one track): every check runs the reference on the files scored and
    agrees within 1e-4 where both have a value."""
    folder = tmp_path / "long"
    folder.mkdir()
    talking_clip(folder / "talk.mp4", 110, seed=1)
    config = RunConfig.model_validate({
        "name": "parity-lse",
        "datasets": ["demo", {"id": "folder", "options": {"root": str(folder)}}],
        "methods": ["ground_truth"],
        "metrics": ["psnr_rgb"],
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    })
    report = run_parity(config, tmp_path / "out", wanted=CHECK_IDS, clips=2,
                        say=lambda _: None)
    by_check: dict[str, list] = {}
    for row in report.rows:
        by_check.setdefault(row.check, []).append(row)
    assert sorted(by_check) == sorted(CHECK_IDS) and all(len(v) == 2 for v in by_check.values())
    for check, found in by_check.items():
        demo = next(r for r in found if "demo" in r.record)
        long = next(r for r in found if "folder" in r.record)
        assert long.status == "pass" and long.clips == 1, (check, long)
        if check.startswith("syncnet_python"):
            # no track of more than 100 frames: ours skips both demo clips and so does the
            # reference: they agree, yet nothing was compared (never a pass)
            assert demo.status == "not_compared" and demo.clips == 0, demo
            assert demo.note == "no clip compared: all 2 left out by both"
        else:
            assert demo.status == "pass" and demo.clips == 2, (check, demo)
    # the reference also finds no track on the demo clips, run on them directly
    check = next(c for c in collect_checks(get_registry()) if c.id == "syncnet_python-lse-d")
    demo_files = sorted((tmp_path / "cache").rglob("video.mp4"))
    short = [f for f in demo_files if FrameSource(f).frame_count() < 100]  # the demo's
    assert short
    from auhead_bench.parity import ParityClip, ParityInputs

    clips = [ParityClip(f"d{i}", f, f, None, None) for i, f in enumerate(short[:2])]
    values = check.reference_values(ParityInputs(clips, "cpu", tmp_path / "direct"))
    assert values == {clip.clip_id: None for clip in clips}


def test_the_exact_metrics_are_registered_with_their_checks():
    registry = get_registry()
    for metric_id, extractor_id in (("lse_c_syncnet_python", "syncnet_python_pipeline"),
                                    ("lse_d_syncnet_python", "syncnet_python_pipeline"),
                                    ("lse_c_wav2lip_lrs", "syncnet_wav2lip_lrs"),
                                    ("lse_d_wav2lip_lrs", "syncnet_wav2lip_lrs")):
        cls = registry.get("metric", metric_id).cls
        assert cls.needs == (extractor_id,)
        assert registry.get("extractor", extractor_id)
    assert lse.LSECSyncNetPython.Options().track_aggregation == "mean"
    checks = {c.id: c.metric for c in collect_checks(registry)}
    assert {k: checks[k] for k in CHECK_IDS} == {
        "syncnet_python-lse-c": "lse_c_syncnet_python",
        "syncnet_python-lse-d": "lse_d_syncnet_python",
        "wav2lip-lrs-lse-c": "lse_c_wav2lip_lrs", "wav2lip-lrs-lse-d": "lse_d_wav2lip_lrs"}
    # FFmpeg builds write different JPEG bytes: the parameters (and so the cache key) say which
    params = ex.SyncNetWav2LipLRS().params()
    assert params["ffmpeg"].startswith("ffmpeg version") and params["opencv"] == cv2.__version__
