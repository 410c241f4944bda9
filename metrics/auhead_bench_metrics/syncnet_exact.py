"""LSE's exact modes: the reference pipelines' file round trips, run from the mp4 file.

The fast extractors (``syncnet_s3fd``, ``syncnet_wholeframe``) feed SyncNet decoded frames in
memory. Published LSE numbers come from scripts that instead pass every frame through
lossy files, and that changes the crops SyncNet sees (see docs/metrics.md for the size).
These extractors run the same FFmpeg command lines as the scripts (the ``ffmpeg`` binary
must be on PATH) and the same OpenCV writer, then score with the shared ``distance_curve``:

- ``syncnet_python_pipeline``: joonson/syncnet_python ``run_pipeline.py`` then Wav2Lip's
  ``calculate_scores_real_videos.py``: re-encode to a 25 fps MPEG-4 avi (``-qscale:v 2``),
  JPEG dumps of it (``-qscale:v 2``) and a 16 kHz wav of its audio; S3FD per dumped JPEG;
  PySceneDetect 0.5.1's shots on the avi (``shots``: joonson's pin); IOU tracks of MORE
  than 100 frames, a face that fails the IOU test letting the next face of that frame try;
  crops from the JPEGs written with ``cv2.VideoWriter`` (XVID fourcc), the wav cut with
  ``ffmpeg -ss/-to`` and muxed in; the crop avi dumped again to JPEG at FFmpeg's default
  quality and its audio to a wav; one (offset, dist, conf) per track.
- ``syncnet_wav2lip_lrs``: Wav2Lip ``calculate_scores_LRS.py``: JPEG dumps of the mp4 at
  FFmpeg's default quality, each read back and resized to 224x224, audio to a 16 kHz wav.

joonson's scripts are not an importable package (``run_pipeline.py`` parses argv and runs at
import), so their glue is restated here; syncnet-python's S3FD and the OpenCV/FFmpeg calls are
the reference's own.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from auhead_bench import VideoView
from auhead_bench.errors import BenchError
from auhead_bench.frames import FrameChunk
from auhead_bench.metric import NotComputed
from auhead_bench_metrics.shots import scene_bounds
from auhead_bench_metrics.syncnet_features import (
    CROP_SIZE,
    FACEDET_CONF,
    FACEDET_SCALE,
    FPS,
    MIN_FACE_SIZE,
    NUM_FAILED_DET,
    S3FD_WEIGHTS,
    SAMPLES_PER_FRAME,
    SYNCNET_WEIGHTS,
    WINDOW,
    SyncNetCurves,
    curve_arrays,
    distance_curve,
    load_s3fd,
    track_crops,
)

# run_pipeline.py's --min_track default; a track needs MORE frames than this (len > 100)
REFERENCE_MIN_TRACK = 100
IOU_THRESHOLD = 0.5
READ_BLOCK = 64  # JPEGs read per block while scoring (memory stays flat with the track)

# The scripts' command lines, argument for argument (they run them through a shell).
REENCODE = "-y -i {src} -qscale:v 2 -async 1 -r 25 {dst}"  # run_pipeline.py
DUMP_FRAMES = "-y -i {src} -qscale:v 2 -threads 1 -f image2 {dst}"  # run_pipeline.py
EXTRACT_AUDIO = "-y -i {src} -ac 1 -vn -acodec pcm_s16le -ar 16000 {dst}"  # run_pipeline.py
CUT_AUDIO = "-y -i {src} -ss {start:.3f} -to {end:.3f} {dst}"  # run_pipeline.py crop_video
MUX = "-y -i {src} -i {audio} -c:v copy -c:a copy {dst}"  # run_pipeline.py crop_video
# Wav2Lip's SyncNetInstance_calc_scores.evaluate (no -qscale: FFmpeg's default JPEG quality)
SCORE_FRAMES = "-loglevel error -y -i {src} -threads 1 -f image2 {dst}"
SCORE_AUDIO = "-loglevel error -y -i {src} -async 1 -ac 1 -vn -acodec pcm_s16le -ar 16000 {dst}"
FFMPEG_FIX = "install the ffmpeg command-line tool (`apt-get install ffmpeg`)"


def ffmpeg_binary() -> str:
    """The ``ffmpeg`` the scripts call; NotComputed naming the install when it is missing."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise NotComputed(
            "the exact LSE modes run the reference scripts' own ffmpeg commands, and no "
            f"`ffmpeg` is on PATH: {FFMPEG_FIX}"
        )
    return found


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """``ffmpeg -version``'s first line, or "missing": its JPEG bytes differ across builds,
    so the exact modes' parameters (and cache keys) name the build."""
    found = shutil.which("ffmpeg")
    if found is None:
        return "missing"
    done = subprocess.run([found, "-version"], capture_output=True, text=True)
    return (done.stdout.splitlines() or ["unknown"])[0]


def ffmpeg(template: str, **values: Any) -> None:
    """One reference command line, each path one argument (the scripts' shell would split a
    path with spaces; the arguments are otherwise the same)."""
    args = [part.format(**values) for part in template.split()]
    done = subprocess.run([ffmpeg_binary(), *args], capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"ffmpeg {' '.join(args)} failed: {tail}",
                         fix="check that the file plays with `ffprobe`")


def read_wav(path: Path) -> np.ndarray:
    """The int16 samples the scripts' ``wavfile.read`` gives (empty when ffmpeg wrote none)."""
    from scipy.io import wavfile

    if not path.is_file():
        return np.zeros(0, np.int16)
    _, pcm = wavfile.read(path)
    return np.asarray(pcm, np.int16)


def jpeg_blocks(files: Sequence[Path], resize: bool) -> Iterator[np.ndarray]:
    """The JPEGs as ``cv2.imread`` reads them (BGR), in blocks; ``resize``: Wav2Lip's
    ``cv2.resize(img, (224, 224))`` on read (a no-op copy for 224 px crops)."""
    for start in range(0, len(files), READ_BLOCK):
        images = [cv2.imread(str(f)) for f in files[start : start + READ_BLOCK]]
        if resize:
            images = [cv2.resize(i, (CROP_SIZE, CROP_SIZE)) for i in images]
        yield np.stack(images)


def track_shot(shot_faces: list[list[dict]]) -> list[dict]:
    """run_pipeline.py ``track_shot``: IOU tracks within one shot, in its exact order.

    Written by hand because the script cannot be imported. Its quirks are kept: the faces of
    a frame are visited as a list iterator sees them while the matched face is removed (the
    face after a removed one is not visited in that pass); a face that fails the IOU test
    lets the next face of the frame try (syncnet-python's ``_track`` gives up on the frame);
    a face more than 25 frames after the track's last ends the frame's visit; tracks need
    more than 100 frames; gaps are linearly interpolated; mean side over 100 px.
    """
    from scipy.interpolate import interp1d

    tracks = []
    while True:
        track: list[dict] = []
        for faces in shot_faces:
            index = 0  # the list iterator's position: +1 after each face, removed or not
            while index < len(faces):
                face = faces[index]
                if not track:
                    track.append(face)
                    del faces[index]
                elif face["frame"] - track[-1]["frame"] <= NUM_FAILED_DET:
                    if _iou(face["bbox"], track[-1]["bbox"]) > IOU_THRESHOLD:
                        track.append(face)
                        del faces[index]
                else:
                    break
                index += 1
        if not track:
            return tracks
        if len(track) > REFERENCE_MIN_TRACK:
            frames = np.array([f["frame"] for f in track])
            boxes = np.array([np.array(f["bbox"]) for f in track])
            every = np.arange(frames[0], frames[-1] + 1)
            filled = np.stack([interp1d(frames, boxes[:, i])(every) for i in range(4)], axis=1)
            side = max(np.mean(filled[:, 2] - filled[:, 0]), np.mean(filled[:, 3] - filled[:, 1]))
            if side > MIN_FACE_SIZE:
                tracks.append({"frame": every, "bbox": filled})


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union)


class SyncNetExact(SyncNetCurves):
    """Shared by the exact modes: they read ``video.path`` with FFmpeg, never decoded frames."""

    @classmethod
    def check_tools(cls) -> None:
        ffmpeg_binary()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "ffmpeg": ffmpeg_version(), "opencv": cv2.__version__}

    def crop_tracks(self, video, arrays):  # the exact modes override extract instead
        raise NotImplementedError

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        if self._syncnet is None:
            self.setup(self.device)
        path = Path(video.path)
        if not path.is_file():
            raise BenchError("the exact LSE modes read the video file, and there is none",
                             path=path, fix="score a video file, not frames in memory")
        arrays: dict[str, np.ndarray] = {}
        if not video.has_audio:
            return curve_arrays(
                [], [], [], [], video_frames=video.frame_count(), audio_frames=0,
                has_audio=False, silent=True,
                reason="no audio track: LSE scores lip sync against the speech")
        with tempfile.TemporaryDirectory(prefix="lse-exact-") as work:
            tracks, frames, audio_frames, reason = self.reference_tracks(path, Path(work), arrays)
            dists, windows, starts, ends = [], [], [], []
            for start, end, jpegs, pcm, resize in tracks:
                result = distance_curve(self._syncnet, jpeg_blocks(jpegs, resize), pcm,
                                        self.device, self.batch_size, count=len(jpegs))
                if result is not None:
                    dists.append(result[0])
                    windows.append(result[1])
                    starts.append(start)
                    ends.append(end)
            if tracks and not dists:
                reason = (f"fewer than {WINDOW + 1} frames with both video and audio "
                          f"({frames} video frames, {audio_frames} frames of audio)")
        arrays.update(curve_arrays(
            dists, windows, starts, ends, video_frames=frames, audio_frames=audio_frames,
            has_audio=True, silent=video.silent, reason=reason,
        ))
        return arrays

    def reference_tracks(
        self, video: Path, work: Path, arrays: dict[str, np.ndarray]
    ) -> tuple[list[tuple[int, int, list[Path], np.ndarray, bool]], int, int, str]:
        """Per track (start, end, its JPEG files, its int16 audio, resize on read), the
        video's frame and audio-frame counts as the script decoded them, and why no track."""
        raise NotImplementedError


class SyncNetWav2LipLRS(SyncNetExact):
    """Wav2Lip ``calculate_scores_LRS.py``: default-quality JPEG dumps of the mp4 itself
    (no re-encode, no fps change), each resized to 224x224 on read; one track per video."""

    id = "syncnet_wav2lip_lrs"
    description = ("SyncNet distance per AV offset on whole frames, through Wav2Lip LRS's "
                   "FFmpeg JPEG dumps resized to 224 (exact mode).")
    crop = "whole_frame_reference_io"
    # False reads the JPEGs as they are: joonson's demo_syncnet.py (SyncNetInstance.evaluate
    # on the file), the path syncnet_python's README documents example.avi's values for.
    resize_on_read = True

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "frame_io": f"ffmpeg {SCORE_FRAMES} (default JPEG quality), cv2.imread",
            "resize": "cv2.resize to 224x224 on read, INTER_LINEAR",
            "audio_io": f"ffmpeg {SCORE_AUDIO}, scipy wavfile.read",
            "reference": "Wav2Lip evaluation/scores_LSE/calculate_scores_LRS.py",
        }

    def reference_tracks(self, video, work, arrays):
        (work / "frames").mkdir()
        ffmpeg(SCORE_FRAMES, src=video, dst=work / "frames" / "%06d.jpg")
        ffmpeg(SCORE_AUDIO, src=video, dst=work / "audio.wav")
        jpegs = sorted((work / "frames").glob("*.jpg"))
        pcm = read_wav(work / "audio.wav")
        audio_frames = len(pcm) // SAMPLES_PER_FRAME
        if not jpegs:
            return [], 0, audio_frames, "ffmpeg dumped no frame"
        return [(0, len(jpegs), jpegs, pcm, self.resize_on_read)], len(jpegs), audio_frames, ""


class SyncNetPythonPipeline(SyncNetExact):
    """joonson/syncnet_python ``run_pipeline.py`` + Wav2Lip ``calculate_scores_real_videos.py``.

    Adds ``faces`` (T,): S3FD faces per dumped frame, to see why a video has no track.
    """

    id = "syncnet_python_pipeline"
    description = ("SyncNet distance per AV offset on S3FD face tracks through joonson's "
                   "run_pipeline.py file round trips (exact mode).")
    crop = "s3fd_tracks_reference_io"
    weight_names = (SYNCNET_WEIGHTS.name, S3FD_WEIGHTS.name)

    def __init__(self) -> None:
        super().__init__()
        self._s3fd: Any = None

    def setup(self, device: str) -> None:
        if self._s3fd is None or device != self.device:
            from syncnet_python.detectors.s3fd import S3FD

            self._s3fd = S3FD(load_s3fd(device), device=device)
        super().setup(device)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "reencode": f"ffmpeg {REENCODE}",
            "frame_dumps": f"ffmpeg {DUMP_FRAMES}",
            "audio": f"ffmpeg {EXTRACT_AUDIO} (the avi's audio, as the script)",
            "detector": "syncnet-python S3FD.detect_faces(rgb, conf_th=0.9, scales=[0.25]) "
                        "per dumped JPEG",
            "shots": "PySceneDetect 0.5.1 ContentDetector() semantics on the avi (threshold "
                     "30, min_scene_len 15, subsampled by 0.5.1's width rule; shots.py)",
            "min_track": f"more than {REFERENCE_MIN_TRACK} frames (run_pipeline.py)",
            "track_rule": "run_pipeline.py track_shot: IOU > 0.5, next face on IOU failure, "
                          f"gaps <= {NUM_FAILED_DET}",
            "min_face_size": MIN_FACE_SIZE,
            "crop_io": "cv2.VideoWriter XVID 25 fps 224x224, audio cut with ffmpeg -ss/-to "
                       f"and muxed; then ffmpeg {SCORE_FRAMES} (default JPEG quality)",
            "track_audio": f"ffmpeg {SCORE_AUDIO} of the crop avi",
            "reference": "joonson/syncnet_python run_pipeline.py + Wav2Lip "
                         "calculate_scores_real_videos.py",
        }

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        """S3FD boxes ``[x0, y0, x1, y1, score]`` of one RGB frame (a seam for tests)."""
        return self._s3fd.detect_faces(rgb, conf_th=FACEDET_CONF, scales=[FACEDET_SCALE])

    def reference_tracks(self, video, work, arrays):
        avi, frames_dir, wav = work / "video.avi", work / "frames", work / "audio.wav"
        frames_dir.mkdir()
        ffmpeg(REENCODE, src=video, dst=avi)
        ffmpeg(DUMP_FRAMES, src=avi, dst=frames_dir / "%06d.jpg")
        ffmpeg(EXTRACT_AUDIO, src=avi, dst=wav)
        jpegs = sorted(frames_dir.glob("*.jpg"))
        audio_frames = len(read_wav(wav)) // SAMPLES_PER_FRAME
        faces = []
        for index, jpeg in enumerate(jpegs):
            boxes = self.detect(cv2.cvtColor(cv2.imread(str(jpeg)), cv2.COLOR_BGR2RGB))
            faces.append([{"frame": index, "bbox": box[:-1].tolist(), "conf": box[-1]}
                          for box in boxes])
        arrays["faces"] = np.array([len(f) for f in faces], np.int64)
        tracks = []
        for start, end in scene_bounds(avi):
            if end - start >= REFERENCE_MIN_TRACK:
                tracks.extend(track_shot(faces[start:end]))
        if not tracks:
            seen = int((arrays["faces"] > 0).sum())
            return [], len(jpegs), audio_frames, (
                f"no face track of more than {REFERENCE_MIN_TRACK} frames with faces over "
                f"{MIN_FACE_SIZE} px (faces detected in {seen} of {len(jpegs)} frames)")
        out = []
        for number, track in enumerate(tracks):
            crop_dir = work / f"crop{number:05d}"
            crop_dir.mkdir()
            crop_avi = self.write_crop_video(track, jpegs, wav, crop_dir)
            (crop_dir / "frames").mkdir()
            ffmpeg(SCORE_FRAMES, src=crop_avi, dst=crop_dir / "frames" / "%06d.jpg")
            ffmpeg(SCORE_AUDIO, src=crop_avi, dst=crop_dir / "audio.wav")
            start, end = int(track["frame"][0]), int(track["frame"][-1]) + 1
            out.append((start, end, sorted((crop_dir / "frames").glob("*.jpg")),
                        read_wav(crop_dir / "audio.wav"), True))
        return out, len(jpegs), audio_frames, ""

    @staticmethod
    def write_crop_video(track: dict, jpegs: list[Path], wav: Path, folder: Path) -> Path:
        """run_pipeline.py ``crop_video``: the track's crops (from the dumped JPEGs) through
        OpenCV's XVID writer at 25 fps, the wav cut to the track and muxed in by FFmpeg."""
        silent_avi, cut, crop_avi = folder / "t.avi", folder / "audio.wav", folder / "crop.avi"
        writer = cv2.VideoWriter(str(silent_avi), cv2.VideoWriter_fourcc(*"XVID"), FPS,
                                 (CROP_SIZE, CROP_SIZE))
        chunks = (FrameChunk(int(t), cv2.imread(str(jpegs[int(t)]))[None, ..., ::-1])
                  for t in track["frame"])
        try:
            for block in track_crops(chunks, track):
                for crop in block:
                    writer.write(crop)
        finally:
            writer.release()
        start, end = track["frame"][0] / FPS, (track["frame"][-1] + 1) / FPS
        ffmpeg(CUT_AUDIO, src=wav, start=start, end=end, dst=cut)
        ffmpeg(MUX, src=silent_avi, audio=cut, dst=crop_avi)
        return crop_avi

