"""AU-control fidelity: do the AUs measured on the generated video follow the AU track the
method was conditioned on?

An AU-driven generator (AUHead, ``auhead_gt_aus``, ``au_warp``) hands over the track it was
conditioned on as ``Generation(arrays={"au_track": (T, 24)})``: 24 FEAFA+ AUs in
``auhead_bench.aus.AU_NAMES`` order, one row per frame of its 25 fps video (a method whose
track runs at another rate says so in ``info["au_track_fps"]`` and it is resampled, linearly,
to 25 fps). py-feat's extractor measures 20 FACS AUs on the generated video, one row per
decoded 25 fps frame. The track is mapped FEAFA+ -> FACS with the mapping AUHead's AU->mesh
step uses (``auhead_bench.aus.feafa_to_feat``), and only the 12 FACS AUs that mapping drives
are compared (CONTROLLED_AUS; the other 8 are 0 in every mapped track, and the FEAFA+ AUs in
``aus.UNMAPPED`` have no FACS counterpart).

Protocol (recorded with every value): both sides at 25 fps from frame 0, cut to the shorter;
frames where py-feat finds no face (or the track has NaN) are left out. Per AU over frames:

- ``au_control_corr_pyfeat_xgb``: Pearson correlation between the mapped control value and
  the measured one; undefined (left out, counted) for an AU constant on either side or with
  fewer than 3 frames; the clip's value is the mean over the defined AUs. Scale-free, so the
  primary reading: does the face move when the control says so?
- ``au_control_mae_pyfeat_xgb``: mean |mapped control - measured|, mean over the 12 AUs.
  py-feat's xgb outputs are presence probabilities, not FACS intensities, so this mixes
  scales: compare it between methods, never read it as an intensity error.

Both keep the per-AU values of the other in ``info`` (``per_au_r``, ``per_au_mae``).

Ceilings. The method ceiling is the same metric on a method conditioned on the clip's
ground-truth AU labels (run ``auhead_gt_aus``, or any method with ``au_source: labels``):
it shows what stage 2 does with perfect AUs, so the gap to AUHead isolates stage 1. The
measurement ceiling (``..._gt_ceiling``) scores the real video against its own AU labels
(``Clip.au_labels``, resampled from their rate to 25 fps): the agreement py-feat and the
FEAFA+ -> FACS mapping allow at best, since a real face follows its labels exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from auhead_bench import ClipScore, ClipSkipped, ClipView, PerClipMetric, hookimpl
from auhead_bench.aus import (
    FEAFA_TO_FEAT,
    FEAT_AUS,
    N_AUS,
    VIDEO_FPS,
    clip_label_rates,
    feafa_to_feat,
    labels_at_video_rate,
    resample_track,
)
from auhead_bench.errors import BenchError, one_line
from auhead_bench_metrics.pyfeat import AU_NAMES as PYFEAT_AUS
from auhead_bench_metrics.pyfeat import PyFeatExpression, find_pyfeat_files

AU_TRACK = "au_track"  # the Generation.arrays key AU-driven methods fill
TRACK_FPS = "au_track_fps"  # Generation.info key of a track not at 25 fps
# The FACS AUs the FEAFA+ mapping drives, in py-feat's column order.
CONTROLLED_AUS: tuple[str, ...] = tuple(name for name in FEAT_AUS if name in FEAFA_TO_FEAT)
MIN_CORR_FRAMES = 3
FLAT = 1e-6  # a side whose standard deviation is below this is constant: r undefined


def paired_frames(
    control: np.ndarray, measured: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(mapped control, measured) rows of CONTROLLED_AUS over frames usable on both sides.

    ``control``: (T, 24) FEAFA+ at 25 fps; ``measured``: (T', 20) py-feat AUs (NaN rows: no
    face). Aligned from frame 0 and cut to the shorter.
    """
    control = np.asarray(control, np.float64)
    measured = np.asarray(measured, np.float64)
    if control.ndim != 2 or control.shape[1] != N_AUS:
        raise ClipSkipped(f"{AU_TRACK} has shape {control.shape}, expected (frames, {N_AUS})")
    columns = [PYFEAT_AUS.index(name) for name in CONTROLLED_AUS]
    count = min(len(control), len(measured))
    finite = np.isfinite(control[:count]).all(axis=1)
    mapped = np.zeros((count, len(FEAT_AUS)))
    mapped[finite] = feafa_to_feat(control[:count][finite])
    target, seen = mapped[:, columns], measured[:count][:, columns]
    usable = finite & np.isfinite(seen).all(axis=1)
    if not usable.any():
        raise ClipSkipped("no frame with a py-feat face and a control value")
    counts = {
        "frames": int(usable.sum()),
        "frames_compared": count,
        "frames_control": len(control),
        "frames_measured": len(measured),
    }
    return target[usable], seen[usable], counts


def per_au_mae(target: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Mean |target - measured| over frames, per AU."""
    return np.abs(target - measured).mean(axis=0)


def per_au_pearson(target: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Pearson r over frames per AU; NaN where undefined (constant side, < 3 frames)."""
    out = np.full(target.shape[1], np.nan)
    if len(target) < MIN_CORR_FRAMES:
        return out
    a = target - target.mean(axis=0)
    b = measured - measured.mean(axis=0)
    sa, sb = np.sqrt((a * a).mean(axis=0)), np.sqrt((b * b).mean(axis=0))
    defined = (sa > FLAT) & (sb > FLAT)
    out[defined] = (a * b).mean(axis=0)[defined] / (sa * sb)[defined]
    return np.clip(out, -1.0, 1.0)


def _by_au(values: np.ndarray) -> dict[str, float | None]:
    return {
        name: (round(float(v), 6) if np.isfinite(v) else None)
        for name, v in zip(CONTROLLED_AUS, values, strict=True)
    }


class _AUControlMetric(PerClipMetric):
    """Control track (the method's, or the clip's labels) vs py-feat AUs on a video."""

    version = "1"
    needs = (PyFeatExpression.id,)
    needs_ground_truth = False
    scores_ground_truth: ClassVar[bool] = False

    def setup(self, device: str) -> None:
        find_pyfeat_files(PyFeatExpression.specs)  # WeightsMissing: not computed, with the fix

    def weights(self) -> dict[str, str]:
        return {}  # the extractor's weights are recorded with the extractor

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "extractor": PyFeatExpression.id,
            "control": "the clip's AU labels (Clip.au_labels) resampled to 25 fps"
            if self.scores_ground_truth
            else f"Generation.arrays[{AU_TRACK!r}] (FEAFA+ 24), at info[{TRACK_FPS!r}] or 25 fps",
            "measured": "py-feat xgb AU presence probabilities on the "
            + ("ground-truth" if self.scores_ground_truth else "generated")
            + " video",
            "mapping": "auhead_bench.aus.feafa_to_feat (FEAFA+ -> FACS, AUHead's AU->mesh map)",
            "aus": list(CONTROLLED_AUS),
            "rate_fps": VIDEO_FPS,
            "alignment": "from frame 0, cut to the shorter; frames without a face left out",
            "ceiling": "measurement: the same metric's _gt_ceiling (real video vs its labels)"
            if not self.scores_ground_truth
            else "this is the measurement ceiling",
            "method_ceiling": "this metric on auhead_gt_aus (or any method conditioned on "
            "the clip's ground-truth AU labels)",
        }

    def _pairs(self, view: ClipView) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        if self.scores_ground_truth:
            video = view.ground_truth
            if video is None:
                raise ClipSkipped("no ground-truth video")
            measured = np.asarray(video[PyFeatExpression.id]["aus"])
            if view.clip.au_labels is None:
                raise ClipSkipped("clip has no AU labels")
            try:
                control, rate = labels_at_video_rate(
                    view.clip.au_labels, frames=len(measured), **clip_label_rates(view.clip.meta)
                )
            except BenchError as exc:
                raise ClipSkipped(f"AU labels unusable: {one_line(exc)}") from None
            target, seen, info = paired_frames(control, measured)
            return target, seen, {**info, "label_rate": f"{rate.fps:.3f} fps ({rate.source})"}
        track = view.arrays.get(AU_TRACK)
        if track is None:
            raise ClipSkipped(
                f"the method returned no {AU_TRACK!r} array: it exposes no AU control"
            )
        fps = float(view.info.get(TRACK_FPS) or VIDEO_FPS)
        control = resample_track(np.asarray(track, np.float64), fps)
        measured = np.asarray(view.generated[PyFeatExpression.id]["aus"])
        target, seen, info = paired_frames(control, measured)
        return target, seen, {**info, "control_fps": fps}

    def _both(self, view: ClipView) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        target, seen, info = self._pairs(view)
        mae, r = per_au_mae(target, seen), per_au_pearson(target, seen)
        info.update(per_au_mae=_by_au(mae), per_au_r=_by_au(r))
        info["aus_defined"] = int(np.isfinite(r).sum())
        return mae, r, info


class AUControlCorrelation(_AUControlMetric):
    id = "au_control_corr_pyfeat_xgb"
    description = (
        "AU-control fidelity: Pearson r per FACS AU between the method's AU control track "
        "(FEAFA+ mapped to FACS) and py-feat's AUs on its video, mean over AUs."
    )
    higher_is_better = True

    def score(self, view: ClipView) -> ClipScore:
        _, r, info = self._both(view)
        if not np.isfinite(r).any():
            raise ClipSkipped("no AU varies on both sides: correlation undefined")
        return ClipScore(float(np.nanmean(r)), info)


class AUControlMAE(_AUControlMetric):
    id = "au_control_mae_pyfeat_xgb"
    description = (
        "AU-control error: MAE per FACS AU between the method's AU control track (FEAFA+ "
        "mapped to FACS) and py-feat's AU probabilities on its video, mean over AUs."
    )
    higher_is_better = False

    def score(self, view: ClipView) -> ClipScore:
        mae, _, info = self._both(view)
        return ClipScore(float(mae.mean()), info)


class AUControlCorrelationCeiling(AUControlCorrelation):
    id = "au_control_corr_pyfeat_xgb_gt_ceiling"
    description = "Measurement ceiling of au_control_corr_pyfeat_xgb: real video vs its AU labels."
    needs_ground_truth = True
    scores_ground_truth = True


class AUControlMAECeiling(AUControlMAE):
    id = "au_control_mae_pyfeat_xgb_gt_ceiling"
    description = "Measurement ceiling of au_control_mae_pyfeat_xgb: real video vs its AU labels."
    needs_ground_truth = True
    scores_ground_truth = True


AU_CONTROL_METRICS = (
    AUControlCorrelation, AUControlMAE, AUControlCorrelationCeiling, AUControlMAECeiling,
)  # fmt: skip


@hookimpl
def register_metrics(register):
    for metric in AU_CONTROL_METRICS:
        register(metric)
