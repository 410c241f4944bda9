# ruff: noqa: UP031 - the scripts' command lines are kept in their own % format
"""Parity of LSE's exact modes with the reference scripts, run on the files our metric scored.

The reference side runs what a researcher runs: the scripts' ffmpeg command lines through a
shell, syncnet-python's ``SyncNetPipeline`` loaders and ``S3FD.detect_faces``, OpenCV's XVID
writer, PySceneDetect, and syncnet-python's ``SyncNetInstance.evaluate`` reading the JPEG
files and wav FFmpeg wrote. joonson's ``run_pipeline.py`` and Wav2Lip's score scripts are
not importable (they parse argv and run at import), so their glue (``track_shot``,
``crop_video``, the per-file loops and Wav2Lip's resize on read) is restated line by line
here, written apart from ``syncnet_exact`` so the two can disagree.

Like every metric's parity checks, these live beside the metric and import only the pieces it
is built from (``syncnet_features``, ``syncnet_exact``), never the metric module, which
registers them (``lse.register_parity_checks``).
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import io
import os
import shlex
import subprocess
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from auhead_bench.errors import BenchError
from auhead_bench.parity import ParityCheck, ParityInputs, SampleValue
from auhead_bench.weights import file_sha256, locate

DOCUMENTED_SOURCE = "joonson/syncnet_python README: demo_syncnet.py on data/example.avi"
DOCUMENTED = {"AV offset": 3.0, "LSE-D": 5.353, "LSE-C": 10.021}
SAMPLE_TOLERANCE = 0.1  # MoChaBench: +-0.1 across FFmpeg builds

_memo: dict[tuple, Any] = {}  # the C and D checks of one mode share one reference run


def _run(command: str) -> None:
    """A script's ``subprocess.call(command, shell=True)``, failing loudly instead of pdb."""
    if subprocess.call(command, shell=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL) != 0:
        raise BenchError(f"reference command failed: {command}",
                         fix="install the ffmpeg command-line tool (`apt-get install ffmpeg`)")


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _weights_key(*names: str) -> tuple[str, ...]:
    from auhead_bench_metrics.syncnet_features import WEIGHTS

    return tuple(file_sha256(locate(WEIGHTS[name])) for name in names)


def _pipeline(device: str) -> Any:
    """syncnet-python's SyncNetPipeline with the cached weights, loaded by its own loaders."""
    from syncnet_python.syncnet_pipeline import PipelineConfig, SyncNetPipeline

    from auhead_bench_metrics.syncnet_features import S3FD_WEIGHTS, SYNCNET_WEIGHTS, WEIGHTS

    config = PipelineConfig(s3fd_weights=str(locate(WEIGHTS[S3FD_WEIGHTS.name])),
                            syncnet_weights=str(locate(WEIGHTS[SYNCNET_WEIGHTS.name])),
                            min_track=100)
    return SyncNetPipeline(config, device=device)


def _instance(device: str) -> Any:
    """syncnet-python's SyncNetInstance, weights through its ``loadParameters``."""
    from syncnet_python.SyncNetInstance import SyncNetInstance
    from syncnet_python.SyncNetModel import S

    from auhead_bench_metrics.syncnet_features import SYNCNET_WEIGHTS, WEIGHTS

    instance = SyncNetInstance(S(), device=device)
    instance.loadParameters(str(locate(WEIGHTS[SYNCNET_WEIGHTS.name])))
    return instance


# ---- joonson/syncnet_python run_pipeline.py, restated --------------------------------------


def _bb_intersection_over_union(box_a, box_b) -> float:
    x_a, y_a = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    x_b, y_b = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    inter = max(0, x_b - x_a) * max(0, y_b - y_a)
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / float(area_a + area_b - inter)


def _track_shot(scenefaces: list[list[dict]]) -> list[dict]:
    """``track_shot`` with run_pipeline.py's defaults (min_track 100, num_failed_det 25,
    min_face_size 100), iterating and removing exactly as the script does."""
    from scipy.interpolate import interp1d

    tracks = []
    while True:
        track: list[dict] = []
        for framefaces in scenefaces:
            for face in framefaces:  # noqa: B909 - the script mutates the list it walks
                if track == []:
                    track.append(face)
                    framefaces.remove(face)
                elif face["frame"] - track[-1]["frame"] <= 25:
                    iou = _bb_intersection_over_union(face["bbox"], track[-1]["bbox"])
                    if iou > 0.5:
                        track.append(face)
                        framefaces.remove(face)
                        continue
                else:
                    break
        if track == []:
            break
        elif len(track) > 100:
            framenum = np.array([f["frame"] for f in track])
            bboxes = np.array([np.array(f["bbox"]) for f in track])
            frame_i = np.arange(framenum[0], framenum[-1] + 1)
            bboxes_i = np.stack([interp1d(framenum, bboxes[:, ij])(frame_i) for ij in range(4)],
                                axis=1)
            if max(np.mean(bboxes_i[:, 2] - bboxes_i[:, 0]),
                   np.mean(bboxes_i[:, 3] - bboxes_i[:, 1])) > 100:
                tracks.append({"frame": frame_i, "bbox": bboxes_i})
    return tracks


def _crop_video(track: dict, flist: list[str], audio_wav: Path, tmp_wav: Path,
                cropfile: Path) -> None:
    """``crop_video`` (crop_scale 0.4, 25 fps): crops via cv2.VideoWriter XVID, audio cut
    with ffmpeg -ss/-to and muxed with -c copy into ``cropfile``.avi."""
    from scipy import signal

    out = cv2.VideoWriter(f"{cropfile}t.avi", cv2.VideoWriter_fourcc(*"XVID"), 25, (224, 224))
    dets: dict[str, Any] = {"x": [], "y": [], "s": []}
    for det in track["bbox"]:
        dets["s"].append(max((det[3] - det[1]), (det[2] - det[0])) / 2)
        dets["y"].append((det[1] + det[3]) / 2)
        dets["x"].append((det[0] + det[2]) / 2)
    for key in ("s", "x", "y"):
        dets[key] = signal.medfilt(dets[key], kernel_size=13)
    for fidx, frame in enumerate(track["frame"]):
        cs = 0.4
        bs = dets["s"][fidx]
        bsi = int(bs * (1 + 2 * cs))
        image = cv2.imread(flist[frame])
        padded = np.pad(image, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant",
                        constant_values=(110, 110))
        my, mx = dets["y"][fidx] + bsi, dets["x"][fidx] + bsi
        face = padded[int(my - bs):int(my + bs * (1 + 2 * cs)),
                      int(mx - bs * (1 + cs)):int(mx + bs * (1 + cs))]
        out.write(cv2.resize(face, (224, 224)))
    out.release()
    start, end = track["frame"][0] / 25, (track["frame"][-1] + 1) / 25
    _run("ffmpeg -y -i %s -ss %.3f -to %.3f %s" % (_q(audio_wav), start, end, _q(tmp_wav)))
    _run("ffmpeg -y -i %s -i %s -c:v copy -c:a copy %s"
         % (_q(f"{cropfile}t.avi"), _q(tmp_wav), _q(f"{cropfile}.avi")))
    os.remove(f"{cropfile}t.avi")


def _scene_detect(avi: Path) -> list:
    from scenedetect.detectors import ContentDetector
    from scenedetect.scene_manager import SceneManager
    from scenedetect.stats_manager import StatsManager
    from scenedetect.video_manager import VideoManager

    video_manager = VideoManager([str(avi)])
    scene_manager = SceneManager(StatsManager())
    scene_manager.add_detector(ContentDetector())
    base_timecode = video_manager.get_base_timecode()
    video_manager.set_downscale_factor()
    video_manager.start()
    scene_manager.detect_scenes(frame_source=video_manager)
    scene_list = scene_manager.get_scene_list(base_timecode)
    if scene_list == []:
        scene_list = [(video_manager.get_base_timecode(), video_manager.get_current_timecode())]
    video_manager.release()
    return scene_list


def run_pipeline(videofile: Path, data_dir: Path, s3fd: Any) -> list[str]:
    """run_pipeline.py --videofile VIDEO --data_dir DIR (reference "ref"): the crop avis."""
    avi_dir, frames_dir, crop_dir, tmp_dir = (data_dir / d / "ref" for d in
                                              ("pyavi", "pyframes", "pycrop", "pytmp"))
    for folder in (avi_dir, frames_dir, crop_dir, tmp_dir):
        folder.mkdir(parents=True)
    _run("ffmpeg -y -i %s -qscale:v 2 -async 1 -r 25 %s"
         % (_q(videofile), _q(avi_dir / "video.avi")))
    _run("ffmpeg -y -i %s -qscale:v 2 -threads 1 -f image2 %s"
         % (_q(avi_dir / "video.avi"), _q(frames_dir / "%06d.jpg")))
    _run("ffmpeg -y -i %s -ac 1 -vn -acodec pcm_s16le -ar 16000 %s"
         % (_q(avi_dir / "video.avi"), _q(avi_dir / "audio.wav")))
    flist = sorted(glob.glob(os.path.join(frames_dir, "*.jpg")))
    faces = []
    for fidx, fname in enumerate(flist):
        image_np = cv2.cvtColor(cv2.imread(fname), cv2.COLOR_BGR2RGB)
        bboxes = s3fd.detect_faces(image_np, conf_th=0.9, scales=[0.25])
        faces.append([{"frame": fidx, "bbox": bbox[:-1].tolist(), "conf": bbox[-1]}
                      for bbox in bboxes])
    alltracks = []
    for shot in _scene_detect(avi_dir / "video.avi"):
        if shot[1].frame_num - shot[0].frame_num >= 100:
            alltracks.extend(_track_shot(faces[shot[0].frame_num:shot[1].frame_num]))
    for ii, track in enumerate(alltracks):
        _crop_video(track, flist, avi_dir / "audio.wav", tmp_dir / "audio.wav",
                    crop_dir / ("%05d" % ii))
    return sorted(glob.glob(os.path.join(crop_dir, "0*.avi")))


# ---- Wav2Lip evaluation/scores_LSE, restated ------------------------------------------------


@contextlib.contextmanager
def _resize_on_read():
    """Wav2Lip's SyncNetInstance_calc_scores.evaluate is syncnet-python's evaluate plus
    ``cv2.resize(img_input, (224, 224))`` after each ``cv2.imread``: that one line, patched in."""
    # the package's __init__ binds the class over the submodule's name: ask importlib
    module = importlib.import_module("syncnet_python.SyncNetInstance")
    real = module.cv2
    module.cv2 = types.SimpleNamespace(
        imread=lambda name: real.resize(real.imread(name), (224, 224)))
    try:
        yield
    finally:
        module.cv2 = real


def wav2lip_evaluate(instance: Any, videofile: Path | str, tmp_dir: Path,
                     resize: bool = True) -> tuple[int, float, float]:
    """Wav2Lip's ``evaluate(opt, videofile)``: default-quality JPEG dumps and a 16 kHz wav
    of the file, then syncnet-python's ``SyncNetInstance.evaluate`` on them."""
    tmp_dir.mkdir(parents=True)
    _run("ffmpeg -loglevel error -y -i %s -threads 1 -f image2 %s"
         % (_q(videofile), _q(tmp_dir / "%06d.jpg")))
    _run("ffmpeg -loglevel error -y -i %s -async 1 -ac 1 -vn -acodec pcm_s16le -ar 16000 %s"
         % (_q(videofile), _q(tmp_dir / "audio.wav")))
    opt = types.SimpleNamespace(tmp_dir=str(tmp_dir), batch_size=20, vshift=15)
    with contextlib.redirect_stdout(io.StringIO()):  # evaluate prints per-frame confidences
        if resize:
            with _resize_on_read():
                return instance.evaluate(opt)
        return instance.evaluate(opt)


def real_videos_lines(
    videofile: Path, workdir: Path, device: str
) -> list[tuple[int, float, float]]:
    """calculate_scores_real_videos.sh for one file: run_pipeline.py, then one
    (offset, conf, dist) per crop avi (the script prints "dist conf" per track)."""
    pipeline = _pipeline(device)
    crops = run_pipeline(videofile, workdir / "tmp_dir", pipeline.s3fd)
    return [wav2lip_evaluate(pipeline.syncnet, crop, workdir / f"pytmp{i}")
            for i, crop in enumerate(crops)]


# ---- the checks ------------------------------------------------------------------------------


class _LSEParity(ParityCheck):
    """One statistic of one exact mode; per clip, the mean over the reference's lines."""

    requires = {"syncnet_python": "syncnet-python", "scenedetect": "scenedetect",
                "python_speech_features": "python_speech_features"}
    mode: str
    statistic: str  # "conf" or "dist"

    def lines(self, video: Path, workdir: Path, device: str) -> list[tuple[int, float, float]]:
        raise NotImplementedError

    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        weights = _weights_key(*self.weight_names)
        for clip in inputs.clips:
            stat = clip.generated.stat()
            key = (self.mode, str(clip.generated), stat.st_size, stat.st_mtime_ns,
                   inputs.device, weights)
            if key not in _memo:
                _memo[key] = self.lines(clip.generated, inputs.workdir / clip.clip_id,
                                        inputs.device)
            found = _memo[key]
            column = 1 if self.statistic == "conf" else 2
            values[clip.clip_id] = (float(np.mean([line[column] for line in found]))
                                    if found else None)
        return values


class SyncNetPythonLSEC(_LSEParity):
    id = "syncnet_python-lse-c"
    metric = "lse_c_syncnet_python"
    reference = ("joonson run_pipeline.py + Wav2Lip calculate_scores_real_videos.py "
                 "(syncnet-python S3FD + SyncNetInstance.evaluate), mean of the track lines")
    mode, statistic = "real_videos", "conf"
    weight_names = ("syncnet_v2", "s3fd_sfd_face")

    def lines(self, video, workdir, device):
        return real_videos_lines(video, workdir, device)


class SyncNetPythonLSED(SyncNetPythonLSEC):
    id = "syncnet_python-lse-d"
    metric = "lse_d_syncnet_python"
    statistic = "dist"


class Wav2LipLRSLSEC(_LSEParity):
    id = "wav2lip-lrs-lse-c"
    metric = "lse_c_wav2lip_lrs"
    reference = ("Wav2Lip calculate_scores_LRS.py: ffmpeg JPEG dumps, resize to 224, "
                 "syncnet-python SyncNetInstance.evaluate")
    mode, statistic = "lrs", "conf"
    weight_names = ("syncnet_v2",)

    def lines(self, video, workdir, device):
        return [wav2lip_evaluate(_instance(device), video, workdir / "pytmp")]

    def samples(self, path: Path, device: str) -> list[SampleValue]:
        """syncnet_python's README values for its example.avi, from our exact mode run the way
        demo_syncnet.py runs (SyncNetInstance.evaluate on the file, JPEGs read unresized)."""
        offset, confidence, distance = demo_values(path, device)
        wanted = {"AV offset": offset, "LSE-C": confidence, "LSE-D": distance}
        names = ("AV offset", "LSE-C") if self.statistic == "conf" else ("LSE-D",)
        return [SampleValue(name, wanted[name], DOCUMENTED[name], SAMPLE_TOLERANCE,
                            DOCUMENTED_SOURCE) for name in names]


class Wav2LipLRSLSED(Wav2LipLRSLSEC):
    id = "wav2lip-lrs-lse-d"
    metric = "lse_d_wav2lip_lrs"
    statistic = "dist"


def demo_values(path: Path, device: str) -> tuple[float, float, float]:
    """(offset, LSE-C, LSE-D) of our ``syncnet_wav2lip_lrs`` extractor on ``path`` with
    demo_syncnet.py's reading (no resize); NaN with no score (e.g. no audio)."""
    from auhead_bench import VideoView
    from auhead_bench.frames import FrameSource
    from auhead_bench.media import probe_video, sha256_file
    from auhead_bench_metrics.syncnet_exact import SyncNetWav2LipLRS
    from auhead_bench_metrics.syncnet_features import track_scores

    if not Path(path).is_file():
        raise BenchError("sample file not found", path=path,
                         fix="pass syncnet_python's data/example.avi (download_model.sh)")
    info = probe_video(Path(path))
    if (info.width, info.height) != (224, 224):
        raise BenchError(
            f"the documented values are for 224x224 face crops; this video is "
            f"{info.width}x{info.height}", path=path,
            fix="pass syncnet_python's data/example.avi (fetched by its download_model.sh)")
    key = ("demo", str(path), Path(path).stat().st_mtime_ns, device,
           _weights_key("syncnet_v2"))
    if key not in _memo:
        extractor = SyncNetWav2LipLRS()
        extractor.resize_on_read = False
        extractor.setup(device)
        arrays = extractor.extract(VideoView(FrameSource(Path(path)), sha256_file(path)))
        if not len(arrays["dists"]):
            _memo[key] = (float("nan"),) * 3
        else:
            confidence, distance = track_scores(arrays["dists"][:1])
            _memo[key] = (float(arrays["offsets"][0]), float(confidence[0]), float(distance[0]))
    return _memo[key]


CHECKS = (SyncNetPythonLSEC, SyncNetPythonLSED, Wav2LipLRSLSEC, Wav2LipLRSLSED)
