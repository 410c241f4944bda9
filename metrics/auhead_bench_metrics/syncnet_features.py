"""SyncNet distance curves: the one network pass per video that LSE-C and LSE-D both read.

Protocol (joonson/syncnet_python ``SyncNetInstance.evaluate``, as packaged by
``syncnet-python`` 0.2.3, whose model, detector and track builder are used here): 224x224
face crops, BGR, raw 0-255 floats, five consecutive frames per window; audio as 16-bit PCM
at 16 kHz through ``python_speech_features.mfcc`` defaults, window v taking MFCC columns
[4v, 4v+20); for each offset k in [-15, 15] the mean over windows of the L2 distance between
the window's video embedding and the audio embedding k windows away (zero vector outside
the clip). Video and audio are truncated to the shorter (``min(frames, samples // 640)``)
and, as in the reference, the last usable window is dropped (``that - 5`` windows).

Two ways to get the crops, two extractors (the fast modes; ``syncnet_exact`` has the
exact ones, which reproduce the reference scripts' file round trips):

- ``syncnet_s3fd``: syncnet_python's real-videos protocol on decoded frames: S3FD faces at
  1/4 scale (confidence > 0.9), PySceneDetect shot cuts, syncnet-python's ``_track`` (IOU
  tracks of more than ``MIN_TRACK`` = 50 frames, syncnet-python's value; joonson's
  ``run_pipeline.py`` needs more than 100 and lets the next face try after an IOU failure)
  with a mean face side over 100 px, median-smoothed square crops padded with grey 110;
- ``syncnet_wholeframe``: Wav2Lip's LRS framing: every decoded 25 fps frame resized to 224.

Deviations from the reference scripts, recorded in ``params()`` and measured in
docs/metrics.md: frames and crops are never written to files (the scripts re-encode to
MPEG-4, round-trip crops through an XVID avi and read JPEG dumps), and each track's audio
is the exact sample range of its frames (the scripts cut it with ``ffmpeg -ss/-to``).
Frames arrive in chunks: detection and shot cuts share one walk over the video, crops are
made a chunk at a time and SyncNet holds one batch of windows (plus 4 frames) at a time.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from auhead_bench import Extractor, VideoView
from auhead_bench.errors import BenchError
from auhead_bench.frames import FrameChunk, writable
from auhead_bench.resources import Resources
from auhead_bench.weights import WeightsSpec, file_sha256, load_state_dict, local_path, locate

_OXFORD = "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data"
_LICENCE = "CC BY, research use (Oxford VGG SyncNet page)"
# The Oxford page publishes no hashes. These digests are the ones syncnet-python's README
# abbreviates ("961e8696...5442", "d54a87c2...c491", files it says are byte-identical to
# Oxford's), and the same full values are pinned by several independent projects.
SYNCNET_WEIGHTS = WeightsSpec(
    name="syncnet_v2",
    filename="syncnet_v2.model",
    source=f"{_OXFORD}/syncnet_v2.model",
    sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
    licence=_LICENCE,
    description="SyncNet v2 audio-visual sync network (Chung & Zisserman 2016), state dict",
)
S3FD_WEIGHTS = WeightsSpec(
    name="s3fd_sfd_face",
    filename="sfd_face.pth",
    source=f"{_OXFORD}/sfd_face.pth",
    sha256="d54a87c2b7543b64729c9a25eafd188da15fd3f6e02f0ecec76ae1b30d86c491",
    licence=_LICENCE,
    description="S3FD face detector used by syncnet_python's pipeline, state dict",
)
# Looked up by name at use, so one place says which file (and hash) each loader expects.
WEIGHTS = {spec.name: spec for spec in (SYNCNET_WEIGHTS, S3FD_WEIGHTS)}

FPS = 25
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
MFCC_PER_FRAME = 4  # 100 MFCC frames/s / 25 fps
WINDOW = 5  # video frames per SyncNet input
MFCC_WINDOW = 20  # MFCC columns per SyncNet input
VSHIFT = 15  # offsets -15..15 frames
CROP_SIZE = 224

# syncnet_python pipeline settings (PipelineConfig / run_pipeline.py defaults)
FACEDET_SCALE = 0.25
FACEDET_CONF = 0.9
FACEDET_NMS = 0.1
MIN_TRACK = 50
NUM_FAILED_DET = 25
MIN_FACE_SIZE = 100
CROP_SCALE = 0.4
SMOOTH_KERNEL = 13
PAD_VALUE = 110


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as the int16 samples FFmpeg's s16 conversion gives.

    The reference reads a 16-bit WAV, and the MFCC's energy term depends on that scale.
    """
    scaled = np.rint(np.asarray(audio, np.float32) * np.float32(32768.0))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def mfcc_columns(pcm: np.ndarray) -> np.ndarray:
    """(13, N) MFCCs at 100 frames/s: python_speech_features defaults on the int16 samples."""
    import python_speech_features

    return python_speech_features.mfcc(pcm, FPS * SAMPLES_PER_FRAME).T


def load_syncnet(device: str) -> torch.nn.Module:
    """syncnet-python's SyncNet ``S`` with the cached ``syncnet_v2.model`` state dict."""
    from syncnet_python.SyncNetModel import S

    model = S()
    _load_into(model, WEIGHTS[SYNCNET_WEIGHTS.name])
    return model.to(device).eval()


def load_s3fd(device: str) -> torch.nn.Module:
    """syncnet-python's ``S3FDNet`` with the cached ``sfd_face.pth`` state dict."""
    from syncnet_python.detectors.s3fd.nets import S3FDNet

    net = S3FDNet(device=device)
    _load_into(net, WEIGHTS[S3FD_WEIGHTS.name])
    return net.to(device).eval()


def _load_into(model: torch.nn.Module, spec: WeightsSpec) -> None:
    """The cached file (sha256-checked) as a plain state dict, strictly into ``model``.

    The files are torch-saved state dicts, so ``torch.load(weights_only=True)`` (via
    ``load_state_dict``) reads them; the packages' own loaders unpickle without that guard.
    """
    path = locate(spec)
    try:
        model.load_state_dict(load_state_dict(path))
    except RuntimeError as exc:  # wrong keys or shapes: not this network's weights
        first = str(exc).splitlines()[0]
        raise BenchError(f"weights do not fit {type(model).__name__}: {first}", path=path,
                         fix=f"`{spec.pull_command()} --force`") from None


def distance_curve(
    model: torch.nn.Module,
    crops: np.ndarray | Iterable[np.ndarray],
    pcm: np.ndarray,
    device: str,
    batch_size: int,
    count: int | None = None,
) -> tuple[np.ndarray, int] | None:
    """Mean SyncNet distance per offset -15..15, shape (31,), and the windows averaged.

    ``crops``: (T, 224, 224, 3) uint8 BGR, or blocks of them in order with ``count`` = T
    (only a batch of windows and the 4 frames a window reaches past it are held: memory does
    not grow with the track). ``pcm``: the int16 audio of the same span. None when fewer than
    6 frames have both video and audio (no window to score).
    """
    if isinstance(crops, np.ndarray):
        count, crops = len(crops), [crops]
    assert count is not None, "count is required when crops come in blocks"
    aligned = min(count, len(pcm) // SAMPLES_PER_FRAME)
    windows = aligned - WINDOW  # as evaluate's `lastframe`: the last possible window is unused
    if windows < 1:
        return None
    mfcc = torch.from_numpy(mfcc_columns(pcm).astype(np.float32))
    lip, aud = [], []
    held = np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    held_start = seen = start = 0
    for block in crops:
        block = np.asarray(block)[: max(0, aligned - seen)]
        seen += len(block)
        held = np.concatenate([held, block]) if len(held) else block
        # windows [start, stop) read frames [start, stop + 4): run each batch once it is here
        while start < windows:
            stop = min(start + batch_size, windows)
            if held_start + len(held) < stop + WINDOW - 1:
                break
            video = torch.from_numpy(writable(held)).to(device)
            video = video.permute(3, 0, 1, 2)  # (3, T, H, W), channels stay BGR
            with torch.no_grad():
                frames = range(start, stop)
                clips = torch.stack(
                    [video[:, v - held_start : v - held_start + WINDOW] for v in frames]
                ).float()
                lip.append(model.forward_lip(clips).cpu())
                cols = [mfcc[:, v * MFCC_PER_FRAME : v * MFCC_PER_FRAME + MFCC_WINDOW]
                        for v in frames]
                aud.append(model.forward_aud(torch.stack(cols)[:, None].to(device)).cpu())
            held, held_start, start = held[stop - held_start :], stop, stop
        if seen >= aligned:
            break
    lip_feat, aud_feat = torch.cat(lip), torch.cat(aud)
    # Offset k compares window v's video with window v+k's audio; the reference pads the
    # audio embeddings with zero vectors, so edge windows see a zero embedding there.
    padded = F.pad(aud_feat, (0, 0, VSHIFT, VSHIFT))
    shifted = padded.unfold(0, 2 * VSHIFT + 1, 1).permute(0, 2, 1)  # (windows, 31, D)
    dists = F.pairwise_distance(lip_feat[:, None, :].expand_as(shifted), shifted)
    # Averaged as a contiguous (31, windows) array, the layout the reference reduces.
    return dists.T.contiguous().mean(dim=1).numpy(), windows


def detect_faces(
    net: torch.nn.Module, frames: np.ndarray, device: str, batch_size: int
) -> list[np.ndarray]:
    """S3FD faces per RGB frame, rows ``[x0, y0, x1, y1, score]`` in frame pixels.

    ``S3FD.detect_faces(frame, conf_th=0.9, scales=[0.25])`` of syncnet-python, with the
    network run on batches of frames instead of one frame at a time.
    """
    from syncnet_python.detectors.s3fd.box_utils import nms_

    height, width = frames.shape[1:3]
    # S3FD's BGR mean (104, 117, 123), subtracted from the RGB channels in RGB order.
    mean = np.array([123.0, 117.0, 104.0], np.float32)
    to_pixels = torch.tensor([width, height, width, height], dtype=torch.float32)
    found: list[np.ndarray] = []
    for start in range(0, len(frames), batch_size):
        small = [
            cv2.resize(f, (0, 0), fx=FACEDET_SCALE, fy=FACEDET_SCALE,
                       interpolation=cv2.INTER_LINEAR)
            for f in frames[start : start + batch_size]
        ]
        batch = torch.from_numpy((np.stack(small).astype(np.float32) - mean).transpose(0, 3, 1, 2))
        with torch.no_grad():
            out = net(batch.contiguous().to(device)).cpu()  # (B, classes, top_k, [score, box])
        for image in out:
            rows = []
            for per_class in image:
                # Rows are sorted by score; the reference reads them until one is <= conf_th.
                count = int(torch.cumprod(per_class[:, 0] > FACEDET_CONF, 0).sum())
                for row in per_class[:count]:
                    rows.append([*(row[1:] * to_pixels).tolist(), row[0].item()])
            boxes = np.array(rows, np.float64).reshape(-1, 5)
            found.append(boxes[nms_(boxes, FACEDET_NMS)])
    return found


def shot_bounds(frames: np.ndarray | Iterable[np.ndarray]) -> list[tuple[int, int]]:
    """[start, end) frame ranges between PySceneDetect ContentDetector cuts (default settings).

    Frames (an array, or blocks of it in order) are fed as syncnet_python's SceneManager
    would: BGR, auto-downscaled.
    """
    from scenedetect import ContentDetector
    from scenedetect.scene_manager import compute_downscale_factor

    detector = ContentDetector()
    cuts: list[int] = []
    index = 0
    for block in [frames] if isinstance(frames, np.ndarray) else frames:
        height, width = block.shape[1:3]
        factor = compute_downscale_factor(max(width, height))
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        for frame in block:
            bgr = np.ascontiguousarray(frame[..., ::-1])
            if factor > 1.0:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
            cuts += detector.process_frame(index, bgr)
            index += 1
    cuts += detector.post_process(index - 1)
    edges = [0, *sorted(set(cuts)), index]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def build_tracks(detections: list[np.ndarray], bounds: list[tuple[int, int]]) -> list[dict]:
    """Face tracks per shot by syncnet-python's own track builder (``SyncNetPipeline._track``).

    Its IOU chaining, gap interpolation and size filter are reused rather than rewritten;
    the pipeline object is made without ``__init__``, which would load weights from the cwd.
    """
    from syncnet_python.syncnet_pipeline import PipelineConfig, SyncNetPipeline

    builder = SyncNetPipeline.__new__(SyncNetPipeline)
    builder.cfg = PipelineConfig(
        min_track=MIN_TRACK, num_failed_det=NUM_FAILED_DET, min_face_size=MIN_FACE_SIZE
    )
    faces = [
        [{"frame": t, "bbox": box[:4].tolist(), "conf": float(box[4])} for box in boxes]
        for t, boxes in enumerate(detections)
    ]
    tracks: list[dict] = []
    for start, end in bounds:
        if end - start >= MIN_TRACK:
            tracks.extend(builder._track([list(f) for f in faces[start:end]]))
    return tracks


def crop_track(frames: np.ndarray, track: dict) -> np.ndarray:
    """(n, 224, 224, 3) uint8 BGR crops of one track, as syncnet_python's ``crop_video``."""
    return np.concatenate(list(track_crops([FrameChunk(0, frames)], track)))


def track_crops(chunks: Iterable[FrameChunk], track: dict) -> Iterator[np.ndarray]:
    """The crops of one track, a block per video chunk it covers.

    Box half-size and centre are median-filtered (13 frames, zero-padded ends, as
    scipy's medfilt); each frame is padded with grey 110 and cut from 1 half-size above
    the centre to 1 + 2 * 0.4 below it, 1 + 0.4 either side, then resized (bilinear).
    """
    from scipy.signal import medfilt

    boxes = np.asarray(track["bbox"], np.float64)
    half = medfilt(np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2,
                   SMOOTH_KERNEL)
    centre_x = medfilt((boxes[:, 0] + boxes[:, 2]) / 2, SMOOTH_KERNEL)
    centre_y = medfilt((boxes[:, 1] + boxes[:, 3]) / 2, SMOOTH_KERNEL)
    order = {int(t): i for i, t in enumerate(np.asarray(track["frame"], int))}
    last = max(order)
    for chunk in chunks:
        rows = [(i, t) for t in range(chunk.start, chunk.stop) if (i := order.get(t)) is not None]
        if rows:
            out = np.zeros((len(rows), CROP_SIZE, CROP_SIZE, 3), np.uint8)
            for k, (i, t) in enumerate(rows):
                bs = half[i]
                pad = int(bs * (1 + 2 * CROP_SCALE))
                image = cv2.copyMakeBorder(
                    np.ascontiguousarray(chunk.frames[t - chunk.start][..., ::-1]),
                    pad, pad, pad, pad,
                    cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
                )
                my, mx = centre_y[i] + pad, centre_x[i] + pad
                face = image[int(my - bs) : int(my + bs * (1 + 2 * CROP_SCALE)),
                             int(mx - bs * (1 + CROP_SCALE)) : int(mx + bs * (1 + CROP_SCALE))]
                out[k] = cv2.resize(face, (CROP_SIZE, CROP_SIZE))
            yield out
        if chunk.stop > last:
            return


def curve_arrays(
    dists: list[np.ndarray], windows: list[int], starts: list[int], ends: list[int], *,
    video_frames: int, audio_frames: int, has_audio: bool, silent: bool, reason: str,
) -> dict[str, np.ndarray]:
    """The arrays every SyncNet extractor returns (see ``SyncNetCurves``), one row per track."""
    curves = np.array(dists, np.float32).reshape(-1, 2 * VSHIFT + 1)
    return {
        "dists": curves,
        "offsets": (VSHIFT - curves.argmin(axis=1)).astype(np.int64),
        "windows": np.array(windows, np.int64),
        "track_start": np.array(starts, np.int64),
        "track_end": np.array(ends, np.int64),
        "video_frames": np.array(video_frames, np.int64),
        "audio_frames": np.array(audio_frames, np.int64),
        "has_audio": np.array(has_audio),
        "silent": np.array(silent),
        "skipped": np.array("" if len(dists) else reason),
    }


def track_scores(dists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per track (rows of ``dists``, offsets -15..15): LSE-C (median minus minimum over
    offsets) and LSE-D (the minimum), as ``SyncNetInstance.evaluate`` reduces its curve."""
    dists = np.asarray(dists, np.float64)
    minimum = dists.min(axis=1)
    return np.median(dists, axis=1) - minimum, minimum


@dataclass
class CropTrack:
    """Frames [start, end) of a video; ``crops()`` yields their 224x224 BGR crops in blocks.

    Crops are made while the track is scored, a video chunk at a time.
    """

    start: int
    end: int
    crops: Callable[[], Iterator[np.ndarray]]


class SyncNetCurves(Extractor):
    """Per face track: SyncNet's mean distance at each offset -15..15, and where the track is.

    Output arrays (``n`` tracks, possibly 0):

    - ``dists`` (n, 31) float32, offset k = index - 15; ``windows`` (n,) windows averaged;
    - ``offsets`` (n,) AV offset of each track, 15 - argmin (the reference's sign);
    - ``track_start`` / ``track_end`` (n,) frame range [start, end) of each track;
    - ``video_frames``, ``audio_frames`` (audio samples // 640), ``has_audio``, ``silent``;
    - ``skipped``: why there is no track ("" when there is one).
    """

    resources = Resources(gpus=0.25)  # a small network: four tasks share a GPU

    crop: ClassVar[str]
    weight_names: ClassVar[tuple[str, ...]] = (SYNCNET_WEIGHTS.name,)

    def __init__(self) -> None:
        self._syncnet: torch.nn.Module | None = None
        self.device = "cpu"

    @property
    def batch_size(self) -> int:
        """Windows (or frames) per network call; results do not depend on it."""
        return 20 if self.device == "cpu" else 128

    def setup(self, device: str) -> None:
        if self._syncnet is None or device != self.device:
            self.device = device
            self._syncnet = load_syncnet(device)

    @classmethod
    def check_tools(cls) -> None:
        """Raise NotComputed naming the install when a tool this extractor runs is missing."""

    @classmethod
    def weight_specs(cls) -> list[WeightsSpec]:
        return [WEIGHTS[name] for name in cls.weight_names]

    def weights(self) -> dict[str, str]:
        """File hashes, or "missing" (metrics then report not computed before any extraction)."""
        return {
            spec.filename: file_sha256(local_path(spec)) if local_path(spec).is_file()
            else "missing"
            for spec in self.weight_specs()
        }

    def params(self) -> dict[str, Any]:
        return {
            "crop": self.crop,
            "network": "syncnet_python SyncNetModel.S (syncnet_v2.model)",
            "fps": FPS,
            "video_input": "BGR 224x224, raw 0-255 floats, 5-frame windows",
            "audio_input": "16 kHz mono int16 (x32768), python_speech_features.mfcc defaults",
            "mfcc_window": "window v: columns [4v, 4v+20)",
            "offsets": [-VSHIFT, VSHIFT],
            "distance": "torch pairwise_distance (eps 1e-6), zero audio embedding off the clip",
            "align": "truncate_to_shorter: min(frames, samples // 640) frames, that - 5 windows",
        }

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        if self._syncnet is None:
            self.setup(self.device)
        pcm = pcm16(video.audio)
        arrays: dict[str, np.ndarray] = {}
        if not video.has_audio or not len(pcm):
            tracks, reason = [], "no audio track: LSE scores lip sync against the speech"
        else:
            tracks, reason = self.crop_tracks(video, arrays)
        dists, windows, starts, ends = [], [], [], []
        for track in tracks:
            span = pcm[track.start * SAMPLES_PER_FRAME : track.end * SAMPLES_PER_FRAME]
            result = distance_curve(
                self._syncnet, track.crops(), span, self.device, self.batch_size,
                count=track.end - track.start,
            )
            if result is not None:
                dists.append(result[0])
                windows.append(result[1])
                starts.append(track.start)
                ends.append(track.end)
        frame_count = video.frame_count()
        if tracks and not dists:
            audio_frames = len(pcm) / SAMPLES_PER_FRAME
            reason = (f"fewer than {WINDOW + 1} frames with both video and audio "
                      f"({frame_count} video frames, {audio_frames:.1f} frames of audio)")
        arrays.update(curve_arrays(
            dists, windows, starts, ends, video_frames=frame_count,
            audio_frames=len(pcm) // SAMPLES_PER_FRAME, has_audio=video.has_audio,
            silent=video.silent, reason=reason,
        ))
        return arrays

    @abstractmethod
    def crop_tracks(
        self, video: VideoView, arrays: dict[str, np.ndarray]
    ) -> tuple[list[CropTrack], str]:
        """The crops to score and, when there are none, why; may add arrays of its own."""


class SyncNetWholeFrame(SyncNetCurves):
    """Wav2Lip's LRS protocol: the whole frame resized to 224x224 is the 'face'."""

    id = "syncnet_wholeframe"
    description = ("SyncNet distance per AV offset on decoded frames resized to 224 in memory "
                   "(Wav2Lip LRS framing, fast mode).")
    crop = "whole_frame"

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "resize": "cv2.resize to 224x224, INTER_LINEAR (Wav2Lip calculate_scores_LRS)",
            "frame_io": "in memory (the reference reads JPEG dumps)",
        }

    def crop_tracks(self, video, arrays):
        def crops() -> Iterator[np.ndarray]:
            for chunk in video.chunks():
                yield np.stack([
                    cv2.resize(np.ascontiguousarray(f[..., ::-1]), (CROP_SIZE, CROP_SIZE))
                    for f in chunk.frames
                ])

        return [CropTrack(0, video.frame_count(), crops)], ""


class SyncNetS3FD(SyncNetCurves):
    """syncnet_python's real-videos protocol: S3FD face tracks, one curve per track.

    Adds ``faces`` (T,): S3FD faces kept per frame, to see why a video has no track.
    """

    id = "syncnet_s3fd"
    description = ("SyncNet distance per AV offset on S3FD face tracks cropped in memory "
                   "(syncnet-python's tracker, min track 50; fast mode).")
    crop = "s3fd_tracks"
    weight_names = (SYNCNET_WEIGHTS.name, S3FD_WEIGHTS.name)

    def __init__(self) -> None:
        super().__init__()
        self._s3fd: torch.nn.Module | None = None

    @property
    def detect_batch(self) -> int:
        return 8 if self.device == "cpu" else 32

    def setup(self, device: str) -> None:
        if self._s3fd is None or device != self.device:
            self._s3fd = load_s3fd(device)
        super().setup(device)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "detector": "S3FD sfd_face.pth",
            "facedet_scale": FACEDET_SCALE,
            "facedet_conf": FACEDET_CONF,
            "facedet_nms": FACEDET_NMS,
            "shots": "scenedetect ContentDetector(threshold=27, min_scene_len=15), auto-downscale",
            "min_track": MIN_TRACK,
            "track_rule": "IOU > 0.5 chaining, gaps <= 25 frames, more than min_track frames",
            "num_failed_det": NUM_FAILED_DET,
            "min_face_size": MIN_FACE_SIZE,
            "crop_scale": CROP_SCALE,
            "smoothing": f"medfilt {SMOOTH_KERNEL} on box half-size and centre",
            "pad_value": PAD_VALUE,
            "crop_io": "in memory (the reference round-trips crops through XVID avi and JPEG)",
            "track_audio": "samples [start * 640, end * 640) of the video's audio",
        }

    def crop_tracks(self, video, arrays):
        detections: list[np.ndarray] = []

        def detected() -> Iterator[np.ndarray]:  # one walk: faces and shot cuts together
            for chunk in video.chunks():
                detections.extend(self.find_faces(chunk.frames))
                yield chunk.frames

        bounds = shot_bounds(detected())
        arrays["faces"] = np.array([len(d) for d in detections], np.int64)
        tracks = build_tracks(detections, bounds)
        if not tracks:
            seen = int((arrays["faces"] > 0).sum())
            return [], (
                f"no face track of more than {MIN_TRACK} frames with faces over "
                f"{MIN_FACE_SIZE} px (faces detected in {seen} of {len(detections)} frames)"
            )
        return [
            CropTrack(int(t["frame"][0]), int(t["frame"][-1]) + 1,
                      lambda t=t: track_crops(video.chunks(), t))
            for t in tracks
        ], ""

    def find_faces(self, frames: np.ndarray) -> list[np.ndarray]:
        """S3FD boxes per frame (a seam tests use to inject known faces)."""
        return detect_faces(self._s3fd, frames, self.device, self.detect_batch)

