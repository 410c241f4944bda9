"""LSE-C and LSE-D (Sync-C / Sync-D): lip-sync confidence and distance from SyncNet.

Per face track, from the distance curve of ``syncnet_features`` (mean SyncNet distance at
each audio-video offset -15..15 frames): LSE-D = the minimum over offsets, LSE-C = the
median minus the minimum, AV offset = 15 - argmin (``SyncNetInstance.evaluate``). A video
with several tracks is reduced by the named ``track_aggregation``: ``best`` (syncnet-python:
the highest confidence and the lowest distance over tracks, each on its own), ``mean`` over
tracks, or ``longest`` (the track with the most windows). The ids name the crop protocol:

- exact modes (the reference scripts' FFmpeg/OpenCV file round trips, ``syncnet_exact``):
  ``*_syncnet_python`` (joonson's ``run_pipeline.py`` + Wav2Lip's
  ``calculate_scores_real_videos.py``, tracks averaged as Wav2Lip's users average its lines)
  and ``*_wav2lip_lrs`` (Wav2Lip's ``calculate_scores_LRS.py``);
- fast modes (decoded frames in memory, no JPEG round trip): ``*_s3fd`` (syncnet_python's
  face tracks, syncnet-python's 50-frame minimum) and ``*_wholeframe`` (Wav2Lip LRS framing).

A video without a usable face track or audio is skipped with the reason, never scored as
inf; silent audio is scored (the number is then meaningless) and flagged ``silent_audio``.
All four metrics read one cached extractor output, so SyncNet runs once per video.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from auhead_bench import ClipScore, ClipSkipped, ClipView, Options, PerClipMetric, hookimpl
from auhead_bench.weights import locate
from auhead_bench_metrics.lse_parity import CHECKS
from auhead_bench_metrics.syncnet_exact import SyncNetPythonPipeline, SyncNetWav2LipLRS
from auhead_bench_metrics.syncnet_features import (
    WEIGHTS,
    SyncNetCurves,
    SyncNetS3FD,
    SyncNetWholeFrame,
    track_scores,
)

__all__ = ["METRICS", "track_scores"]  # track_scores: re-exported for callers of lse


class LSEOptions(Options):
    """How the tracks of one video become one number (one track: all agree)."""

    track_aggregation: Literal["best", "mean", "longest"] = "best"


class LSEExactOptions(LSEOptions):
    """Wav2Lip's users average every (dist, conf) line its script prints: each track alike."""

    track_aggregation: Literal["best", "mean", "longest"] = "mean"


class _LSE(PerClipMetric):
    """Shared scoring: subclasses pick the statistic and the extractor (crop protocol)."""

    needs_ground_truth = False
    Options = LSEOptions
    extractor: ClassVar[type[SyncNetCurves]]
    statistic: ClassVar[Literal["confidence", "distance"]]

    def setup(self, device: str) -> None:
        """Fail early, with the pull command, when a weight file is not in the cache."""
        for spec in self.extractor.weight_specs():
            locate(spec)
        self.extractor.check_tools()

    def protocol(self) -> dict[str, Any]:
        formula = {
            "confidence": "median over offsets minus min over offsets",
            "distance": "min over offsets",
        }[self.statistic]
        return {
            **super().protocol(),
            "statistic": formula,
            "per_offset": "mean over 5-frame windows of the L2 distance of SyncNet embeddings",
            "syncnet": self.extractor().params(),
            "no_track": "skipped with the reason (never inf)",
            "clip_reduction": "mean over scored clips",
        }

    def score(self, view: ClipView) -> ClipScore:
        curves = view.generated[self.extractor.id]
        dists = curves["dists"]
        if not len(dists):
            raise ClipSkipped(str(curves["skipped"]))
        confidence, distance = track_scores(dists)
        offset = np.asarray(curves["offsets"])
        values = confidence if self.statistic == "confidence" else distance
        windows = np.asarray(curves["windows"])
        aggregation = self.options.track_aggregation
        if aggregation == "mean":
            value, chosen = float(values.mean()), None
        else:
            if aggregation == "longest":
                index = int(windows.argmax())
            elif self.statistic == "confidence":
                index = int(values.argmax())
            else:
                index = int(values.argmin())
            value, chosen = float(values[index]), index
        info: dict[str, Any] = {
            "tracks": len(dists),
            "offset": int(offset[chosen]) if chosen is not None else offset.tolist(),
            "windows": int(windows[chosen]) if chosen is not None else int(windows.sum()),
            "video_frames": int(curves["video_frames"]),
            "audio_frames": int(curves["audio_frames"]),
            "silent_audio": bool(curves["silent"]),
        }
        if chosen is not None and len(dists) > 1:
            info["track"] = [int(curves["track_start"][chosen]), int(curves["track_end"][chosen])]
        return ClipScore(value, info)


class LSECS3FD(_LSE):
    id = "lse_c_s3fd"
    description = "LSE-C fast: S3FD face tracks cropped in memory (min track 50, no JPEG)."
    higher_is_better = True
    statistic = "confidence"
    extractor = SyncNetS3FD
    needs = (SyncNetS3FD.id,)


class LSEDS3FD(_LSE):
    id = "lse_d_s3fd"
    description = "LSE-D fast: S3FD face tracks cropped in memory (min track 50, no JPEG)."
    higher_is_better = False
    statistic = "distance"
    extractor = SyncNetS3FD
    needs = (SyncNetS3FD.id,)


class LSECWholeFrame(_LSE):
    id = "lse_c_wholeframe"
    description = "LSE-C fast: decoded frames resized to 224 in memory (Wav2Lip LRS framing)."
    higher_is_better = True
    statistic = "confidence"
    extractor = SyncNetWholeFrame
    needs = (SyncNetWholeFrame.id,)


class LSEDWholeFrame(_LSE):
    id = "lse_d_wholeframe"
    description = "LSE-D fast: decoded frames resized to 224 in memory (Wav2Lip LRS framing)."
    higher_is_better = False
    statistic = "distance"
    extractor = SyncNetWholeFrame
    needs = (SyncNetWholeFrame.id,)


class LSECSyncNetPython(_LSE):
    id = "lse_c_syncnet_python"
    description = ("LSE-C exact: joonson's run_pipeline.py face tracks and file round trips, "
                   "tracks averaged (Wav2Lip real videos).")
    higher_is_better = True
    statistic = "confidence"
    Options = LSEExactOptions
    extractor = SyncNetPythonPipeline
    needs = (SyncNetPythonPipeline.id,)


class LSEDSyncNetPython(_LSE):
    id = "lse_d_syncnet_python"
    description = ("LSE-D exact: joonson's run_pipeline.py face tracks and file round trips, "
                   "tracks averaged (Wav2Lip real videos).")
    higher_is_better = False
    statistic = "distance"
    Options = LSEExactOptions
    extractor = SyncNetPythonPipeline
    needs = (SyncNetPythonPipeline.id,)


class LSECWav2LipLRS(_LSE):
    id = "lse_c_wav2lip_lrs"
    description = "LSE-C exact: Wav2Lip calculate_scores_LRS.py (JPEG dumps, whole frame to 224)."
    higher_is_better = True
    statistic = "confidence"
    extractor = SyncNetWav2LipLRS
    needs = (SyncNetWav2LipLRS.id,)


class LSEDWav2LipLRS(_LSE):
    id = "lse_d_wav2lip_lrs"
    description = "LSE-D exact: Wav2Lip calculate_scores_LRS.py (JPEG dumps, whole frame to 224)."
    higher_is_better = False
    statistic = "distance"
    extractor = SyncNetWav2LipLRS
    needs = (SyncNetWav2LipLRS.id,)


METRICS = (LSECS3FD, LSEDS3FD, LSECWholeFrame, LSEDWholeFrame,
           LSECSyncNetPython, LSEDSyncNetPython, LSECWav2LipLRS, LSEDWav2LipLRS)


@hookimpl
def register_metrics(register):
    for metric in METRICS:
        register(metric)


@hookimpl
def register_extractors(register):
    for extractor in (SyncNetS3FD, SyncNetWholeFrame, SyncNetPythonPipeline, SyncNetWav2LipLRS):
        register(extractor)


@hookimpl
def register_parity_checks(register):
    for check in CHECKS:
        register(check)


@hookimpl
def register_weights(register):
    for spec in WEIGHTS.values():
        register(spec)
