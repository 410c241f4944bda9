"""Stage-1 evaluation: a method's AU track against AU labels measured on the real video.

What the AUHead paper lacks (its reviewers asked for it): a direct check of the AUs that
stage 1 predicts from audio against the AUs of the real clip. A method hands over the track
it was conditioned on as ``Generation(arrays={"au_track": (T, 24)}, info={"emotion": ...})``;
the runner hands both to metrics with the generated video (``ClipView.arrays`` and
``.info``). The labels are ``Clip.au_labels`` (auhead_bench.aus: 24 FEAFA+ AUs in AU_NAMES
order, [0, 1], NaN = not measured), resampled from their own frame rate (MEAD's: 30 fps) to
25 fps by ``labels_at_video_rate``; the rate used is in ``info["label_rate"]``.

Protocol (recorded with every value): both tracks at 25 fps aligned from frame 0 and cut to
the shorter; label frames with NaN are left out; predicted values clipped to [0, 1] (NaN
read as 0). An AU is active when its value >= ``active_threshold`` (0.05 by default).

- ``au_track_mae_feafa24``: mean |predicted - label| over every frame and all 24 AUs, so
  false positives count (the authors' script averages only over AUs active in the label and
  never counts false positives; that variant is kept in ``info["mae_label_active"]``).
  ``info`` has the per-AU MAE and the MAE on the 5 fps token frames (0, 5, 10, ...).
- ``au_track_precision_feafa24`` / ``au_track_recall_feafa24`` / ``au_track_f1_feafa24``:
  over the clip's (frame, AU) cells. A clip where the value is undefined (no predicted
  active cell for precision, no labelled one for recall, neither for F1) is skipped and
  counted, never scored 0 or 1.
- ``stated_emotion_acc``: 1 if the emotion the method states (``info["emotion"]``, e.g.
  AUHead's emotion-then-AU step) is the clip's emotion label, else 0 (stating none is 0);
  methods that state nothing are skipped.

The paper's stage-1 numbers on MEAD (0.65-0.72 precision/recall, MAE 0.19-0.24) come from the
authors' own definitions and are not comparable with these as they stand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from auhead_bench import ClipScore, ClipSkipped, ClipView, Options, PerClipMetric, hookimpl
from auhead_bench.aus import (
    AU_NAMES,
    FRAME_STRIDE,
    N_AUS,
    VIDEO_FPS,
    clip_label_rates,
    labels_at_video_rate,
)
from auhead_bench.emotions import canonical_emotion
from auhead_bench.errors import BenchError, one_line

AU_TRACK = "au_track"  # the Generation.arrays key methods fill
LENGTH_NOTE = 5  # frames; a larger length difference is flagged in info


class AUTrackOptions(Options):
    active_threshold: float = Field(0.05, ge=0.0, le=1.0)


def aligned_tracks(
    view: ClipView,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(predicted, labels, frame numbers) over the labelled frames both cover, and notes."""
    clip = view.clip
    track = view.arrays.get(AU_TRACK)
    if track is None:
        raise ClipSkipped(f"the method returned no {AU_TRACK!r} array")
    track = np.asarray(track, dtype=np.float64)
    if track.ndim != 2 or track.shape[1] != N_AUS:
        raise ClipSkipped(f"{AU_TRACK} has shape {track.shape}, expected (frames, {N_AUS})")
    if clip.au_labels is None:
        raise ClipSkipped("clip has no AU labels")
    try:
        labels, rate = labels_at_video_rate(
            clip.au_labels, frames=len(track), **clip_label_rates(clip.meta)
        )
        labels = labels.astype(np.float64)
    except BenchError as exc:
        raise ClipSkipped(f"AU labels unusable: {one_line(exc)}") from None
    count = min(len(track), len(labels))
    predicted = np.clip(np.nan_to_num(track[:count], nan=0.0), 0.0, 1.0)
    truth = labels[:count]
    measured = np.isfinite(truth).all(axis=1)
    if not measured.any():
        raise ClipSkipped("no labelled frame to compare")
    info: dict[str, Any] = {
        "frames": int(measured.sum()),
        "length_difference": int(len(track) - len(labels)),
        "label_rate": f"{rate.fps:.3f} fps ({rate.source})",
    }
    if abs(info["length_difference"]) > LENGTH_NOTE:
        info["note"] = "AU track and labels differ in length by more than 0.2 s"
    return predicted[measured], truth[measured], np.flatnonzero(measured), info


class _AUTrackMetric(PerClipMetric):
    version = "2"  # 2: labels resampled from their own frame rate to 25 fps
    needs = ()  # no decoded frames or extractors: the track comes with the generation
    needs_ground_truth = False  # the labels come with the clip, not from its video
    Options = AUTrackOptions

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "au_space": "FEAFA+ 24, au_space.AU_NAMES order",
            "labels": "Clip.au_labels, resampled to 25 fps from their own rate (linear)",
            "prediction": f"Generation.arrays[{AU_TRACK!r}]",
            "rate_fps": VIDEO_FPS,
            "alignment": "from frame 0, cut to the shorter; NaN label frames left out",
            "active": "value >= active_threshold",
        }

    def _confusion(self, view: ClipView) -> tuple[int, int, int, dict]:
        """True/false positives and false negatives over (frame, AU) cells, and notes.

        ``info["per_au_counts"]``: [tp, fp, fn] per AU, enough to pool per-AU precision and
        recall over clips.
        """
        predicted, truth, _, info = aligned_tracks(view)
        threshold = self.options.active_threshold
        hit, real = predicted >= threshold, truth >= threshold
        counts = np.stack([(hit & real).sum(0), (hit & ~real).sum(0), (~hit & real).sum(0)], 1)
        tp, fp, fn = (int(v) for v in counts.sum(0))
        info.update(tp=tp, fp=fp, fn=fn)
        info["per_au_counts"] = {
            name: [int(c) for c in row] for name, row in zip(AU_NAMES, counts, strict=True)
        }
        return tp, fp, fn, info


class AUTrackMAE(_AUTrackMetric):
    id = "au_track_mae_feafa24"
    description = (
        "MAE of the method's AU track (24 FEAFA+ AUs, 25 fps) vs the clip's AU labels, "
        "over all frames and AUs (false positives count)."
    )
    higher_is_better = False

    def score(self, view: ClipView):
        predicted, truth, frames, info = aligned_tracks(view)
        error = np.abs(predicted - truth)
        active = truth >= self.options.active_threshold
        info["per_au_mae"] = {
            name: round(float(v), 6) for name, v in zip(AU_NAMES, error.mean(axis=0), strict=True)
        }
        token = frames % FRAME_STRIDE == 0  # what stage 1 writes; the rest is interpolated
        info["mae_5fps"] = float(error[token].mean()) if token.any() else None
        info["mae_label_active"] = float(error[active].mean()) if active.any() else None
        return ClipScore(float(error.mean()), info)


class AUTrackPrecision(_AUTrackMetric):
    id = "au_track_precision_feafa24"
    description = "Precision of active AUs (value >= threshold) in the method's AU track."
    higher_is_better = True

    def score(self, view: ClipView):
        tp, fp, _, info = self._confusion(view)
        if tp + fp == 0:
            raise ClipSkipped("no active AU predicted: precision undefined")
        return ClipScore(tp / (tp + fp), info)


class AUTrackRecall(_AUTrackMetric):
    id = "au_track_recall_feafa24"
    description = "Recall of the clip's active AUs (value >= threshold) by the method's AU track."
    higher_is_better = True

    def score(self, view: ClipView):
        tp, _, fn, info = self._confusion(view)
        if tp + fn == 0:
            raise ClipSkipped("no active AU in the labels: recall undefined")
        return ClipScore(tp / (tp + fn), info)


class AUTrackF1(_AUTrackMetric):
    id = "au_track_f1_feafa24"
    description = "F1 of active AUs (value >= threshold): method's AU track vs AU labels."
    higher_is_better = True

    def score(self, view: ClipView):
        tp, fp, fn, info = self._confusion(view)
        if tp + fp + fn == 0:
            raise ClipSkipped("no active AU predicted or labelled: F1 undefined")
        return ClipScore(2 * tp / (2 * tp + fp + fn), info)


class StatedEmotionAccuracy(PerClipMetric):
    id = "stated_emotion_acc"
    description = (
        "1 if the emotion the method states (Generation.info['emotion'], e.g. AUHead's "
        "emotion-then-AU step) is the clip's emotion label, else 0."
    )
    higher_is_better = True
    needs = ()
    needs_ground_truth = False

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "stated": "Generation.info['emotion']",
            "names": "prompts.canonical_emotion (MEAD's 8 names; synonyms folded)",
            "none_stated": "scored 0",
        }

    def score(self, view: ClipView):
        info, clip = view.info, view.clip
        if "emotion" not in info:
            raise ClipSkipped("the method states no emotion")
        label = canonical_emotion(clip.emotion)
        if label is None:
            raise ClipSkipped(f"clip emotion {clip.emotion!r} is not a known emotion")
        stated = canonical_emotion(info["emotion"])
        return ClipScore(float(stated == label), {"stated": stated, "label": label})


@hookimpl
def register_metrics(register):
    for metric in (AUTrackMAE, AUTrackPrecision, AUTrackRecall, AUTrackF1, StatedEmotionAccuracy):
        register(metric)
