"""The 24 FEAFA+ Action Units every AU track in the suite uses, and AU label files.

Shared by AUHead's stages (methods), the AU-track metrics and the datasets' label checks, so
it lives in the core: index i of every AU vector is ``AU_NAMES[i]``, the authors' stage-1 order
(see docs/auhead.md), values continuous in [0, 1].

AU label files (``Clip.au_labels``): one row per frame of their video, 24 columns in the
order of ``AU_NAMES``, values in [0, 1], NaN where a frame has no measurement:

- ``.npy``: a float array of shape (T, 24);
- ``.csv``: a header naming the 24 AU columns by ``AU_NAMES`` (any order; other columns
  such as ``frame`` are ignored), one row per frame, empty cells read as NaN; an optional
  ``timestamp`` column (seconds, OpenFace's and py-feat's convention) states the rate;
- ``.json`` / ``.txt``: the authors' raw label files, one JSON list of 24 numbers per line.

Labels are at their video's own rate (MEAD's is 30 fps) and everything downstream works at
25 fps, so ``labels_at_video_rate`` resamples them (linear interpolation over time) before
anything subsamples or compares them. Their rate is, in this order: what the file states
(``timestamp``), a rate given explicitly (a dataset's ``au_labels_fps`` option,
``train stage1 --au-fps``), the source video's rate (``Clip.meta["source_fps"]``). None of
these is known: the labels must have one row per 25 fps frame of the clip, else BenchError.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench.errors import BenchError

AU_NAMES: tuple[str, ...] = (
    "left_eye_closure",
    "right_eye_closure",
    "left_lid_raise",
    "right_lid_raise",
    "left_brow_lower",
    "right_brow_lower",
    "left_brow_raise",
    "right_brow_raise",
    "jaw_drop_mouth_open",
    "lower_lip_slide_left",
    "lower_lip_slide_right",
    "left_lip_corner_raise",
    "right_lip_corner_raise",
    "left_lip_corner_stretch",
    "right_lip_corner_stretch",
    "upper_lip_suck",
    "lower_lip_suck",
    "jaw_thrust",
    "upper_lip_raise",
    "lower_lip_depress",
    "chin_raise",
    "lip_pucker",
    "cheek_puff",
    "nose_wrinkle",
)
N_AUS = len(AU_NAMES)
VIDEO_FPS = 25  # AU tracks and label files in this suite are per video frame at 25 fps
# AUHead's stage 1 reads and writes AUs at 5 fps (every 5th frame); the AU-track metrics also
# report the error on those frames, so the rate is shared.
TOKEN_FPS = 5
FRAME_STRIDE = VIDEO_FPS // TOKEN_FPS  # 5: token frames are video frames 0, 5, 10, ...
LABEL_TOLERANCE = 0.01  # label values this far outside [0, 1] are clipped; further is an error
TIMESTAMP_COLUMN = "timestamp"  # seconds; a label CSV with it states its own frame rate
LENGTH_SLACK = 0.1  # a 25 fps track may differ from its clip by this fraction of frames (+2)
RATE_TOLERANCE = 1e-3  # rates this close (relative) are the same: no resampling
# Clip.meta keys that datasets and the prepare step fill: the labels' rate, the video's.
LABELS_FPS_KEY = "au_labels_fps"
SOURCE_FPS_KEY = "source_fps"


# ---- FEAFA+ -> FACS (py-feat's 20 AUs) ------------------------------------------------------
# What AUHead's AU->mesh step (methods' au_mesh.py) and the AU-control metric share: FEAFA+
# AU (index) -> FACS AU, summed with these weights then clipped to [0, 1]:
#   eye closure (0, 1) -> AU43; lid raise (2, 3) -> AU05; brow lower (4, 5) -> AU04;
#   brow raise (6, 7) -> AU01 and AU02; jaw drop (8) -> AU26; lip corner raise (11, 12) ->
#   AU12; lip corner stretch (13, 14) -> AU20; upper/lower lip suck (15, 16) -> AU28;
#   upper lip raise (18) -> AU10; chin raise (20) -> AU17; nose wrinkle (23) -> AU09
#   (bilateral pairs averaged). UNMAPPED lists the FEAFA+ AUs without a counterpart; py-feat
#   AUs no FEAFA+ AU drives stay 0.
FEAT_AUS = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43",
)  # fmt: skip
# py-feat AU <- (FEAFA index, weight), summed then clipped to [0, 1].
FEAFA_TO_FEAT: dict[str, tuple[tuple[int, float], ...]] = {
    "AU01": ((6, 0.5), (7, 0.5)),
    "AU02": ((6, 0.5), (7, 0.5)),
    "AU04": ((4, 0.5), (5, 0.5)),
    "AU05": ((2, 0.5), (3, 0.5)),
    "AU09": ((23, 1.0),),
    "AU10": ((18, 1.0),),
    "AU12": ((11, 0.5), (12, 0.5)),
    "AU17": ((20, 1.0),),
    "AU20": ((13, 0.5), (14, 0.5)),
    "AU26": ((8, 1.0),),
    "AU28": ((15, 1.0), (16, 1.0)),
    "AU43": ((0, 0.5), (1, 0.5)),
}
UNMAPPED: dict[int, str] = {
    9: "lower lip slide left: FACS AD30 (jaw sideways), not in py-feat's model",
    10: "lower lip slide right: FACS AD30 (jaw sideways), not in py-feat's model",
    17: "jaw thrust: FACS AD29, a forward motion, invisible in a frontal 2D view",
    19: "lower lip depress: FACS AU16, absent from the v4 model",
    21: "lip pucker: FACS AU18, absent from the v4 model",
    22: "cheek puff: FACS AD34, not in py-feat's model",
}


def feat_matrix() -> np.ndarray:
    """(24, 20) matrix M with py-feat AUs = clip(FEAFA AUs @ M, 0, 1)."""
    matrix = np.zeros((N_AUS, len(FEAT_AUS)), np.float32)
    for column, name in enumerate(FEAT_AUS):
        for index, weight in FEAFA_TO_FEAT.get(name, ()):
            matrix[index, column] = weight
    return matrix


def feafa_to_feat(aus: np.ndarray) -> np.ndarray:
    """(T, 24) FEAFA+ AUs -> (T, 20) py-feat AUs in the v4 model's column order."""
    aus = np.asarray(aus, np.float32)
    if aus.ndim != 2 or aus.shape[1] != N_AUS:
        raise ValueError(f"AU track must be (frames, {N_AUS}), got {aus.shape}")
    return np.clip(aus @ feat_matrix(), 0.0, 1.0)


# ---- FACS (py-feat) -> FEAFA+: the inverse direction, for making labels ----------------------
# feafa_to_feat averages each bilateral pair into one FACS AU, feeds brow raise into AU01 and
# AU02 alike and adds the two lip sucks into AU28: it cannot be undone exactly. Its
# minimum-norm inverse (the pseudo-inverse of feat_matrix) undoes it under symmetry: both
# sides of a pair get the FACS value (FEAFA+'s left/right split is not measured), brow raise
# the mean of AU01 and AU02, each lip suck half of AU28. FACS AUs no FEAFA+ AU drives (AU06,
# AU07, AU11, AU14, AU15, AU23, AU24, AU25) are dropped; the FEAFA+ AUs in UNMAPPED get no
# measurement (the caller's ``unmapped`` value). Round trip: feafa_to_feat(feat_to_feafa(x))
# equals x on the FACS AUs feafa_to_feat can make (AU01 == AU02, AU28 <= 1).

def facs_matrix() -> np.ndarray:
    """(20, 24) matrix P with FEAFA+ AUs = clip(py-feat AUs @ P, 0, 1): pinv(feat_matrix())."""
    return np.linalg.pinv(feat_matrix().astype(np.float64)).astype(np.float32)


def feat_to_feafa(facs: np.ndarray, names: tuple[str, ...] = FEAT_AUS,
                  unmapped: float = 0.0) -> np.ndarray:
    """(T, len(names)) FACS AU values (columns named by ``names``, e.g. an extractor's) ->
    (T, 24) FEAFA+ AUs; ``unmapped`` (0: at rest, or NaN: not measured) for UNMAPPED's AUs.
    A NaN row (no face) stays NaN."""
    facs = np.asarray(facs, np.float32)
    if facs.ndim != 2 or facs.shape[1] != len(names):
        raise ValueError(f"FACS AUs must be (frames, {len(names)}), got {facs.shape}")
    missing = [n for n in FEAFA_TO_FEAT if n not in names]
    if missing:
        raise ValueError(f"FACS AUs lack {missing}: needed for FEAFA+ AUs")
    full = np.zeros((len(facs), len(FEAT_AUS)), np.float32)
    for column, name in enumerate(FEAT_AUS):
        if name in names:
            full[:, column] = facs[:, list(names).index(name)]
    out = np.clip(full @ facs_matrix(), 0.0, 1.0)
    out[:, list(UNMAPPED)] = unmapped
    out[~np.isfinite(facs).all(axis=1)] = np.nan
    return out


# ---- label files --------------------------------------------------------------------------


def load_au_labels(path: Path) -> np.ndarray:
    """A clip's AU labels as (T, 24) float32 at the file's own rate (NaN = not measured);
    ``labels_at_video_rate`` gives them at 25 fps.

    Raises BenchError naming the file and the fix for anything that is not such a file.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchError("AU label file not found", path=path, fix="check the clip's au_labels")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BenchError(f"AU labels cannot be read ({exc})", path=path) from None
    elif suffix == ".csv":
        values = _read_csv(path)
    elif suffix in (".json", ".txt", ".jsonl"):
        values = _read_lines(path)
    else:
        raise BenchError(
            f"AU labels have an unknown format {suffix!r}",
            path=path,
            fix="use .npy (T, 24), .csv with the 24 AU_NAMES columns, or one JSON list per line",
        )
    return _validated_labels(np.asarray(values), path)


def save_au_labels(path: Path, aus: np.ndarray, fps: float | None = None) -> Path:
    """Write (T, 24) labels as .npy or .csv (header: frame + AU_NAMES), by the suffix.

    ``fps``: a CSV also gets a ``timestamp`` column (seconds), so it states its own rate.
    """
    path = Path(path)
    aus = checked_au_matrix(aus, "AU labels").astype(np.float32)
    if path.suffix.lower() == ".npy":
        if fps is not None:
            raise ValueError(f"{path}: a .npy label file cannot state its rate; use .csv")
        np.save(path, aus)
        return path
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: save AU labels as .npy or .csv")
    lead = ("frame",) if fps is None else ("frame", TIMESTAMP_COLUMN)
    lines = [",".join((*lead, *AU_NAMES))]
    for t, row in enumerate(aus):
        cells = ("" if not math.isfinite(v) else f"{v:.6g}" for v in row.tolist())
        stamp = () if fps is None else (f"{t / fps:.6f}",)
        lines.append(",".join((str(t), *stamp, *cells)))
    path.write_text("\n".join(lines) + "\n")
    return path


def _csv_table(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchError(
            f"AU labels CSV cannot be read ({exc})".replace("\n", " "), path=path
        ) from None


def _read_csv(path: Path) -> np.ndarray:
    table = _csv_table(path)
    columns = {str(c).strip(): c for c in table.columns}
    missing = [name for name in AU_NAMES if name not in columns]
    if missing:
        facs = [c for c in columns if c.upper().startswith("AU")]
        hint = (
            f"its columns {facs[:4]} look like FACS AUs (e.g. py-feat's); AUHead's labels are "
            "the 24 FEAFA+ AUs"
            if facs
            else f"{len(missing)} of the 24 AU columns are missing, e.g. {missing[0]!r}"
        )
        raise BenchError(
            f"AU labels CSV does not name the 24 FEAFA+ AU columns: {hint}",
            path=path,
            fix="header: frame," + ",".join(AU_NAMES[:3]) + ",... (au_space.AU_NAMES)",
        )
    try:
        return table[[columns[name] for name in AU_NAMES]].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise BenchError(f"AU labels CSV has a non-numeric cell ({exc})", path=path) from None


def _read_lines(path: Path) -> np.ndarray:
    rows = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"AU labels cannot be read ({exc})", path=path) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)  # Python's json reads NaN too
        except ValueError:
            raise BenchError(
                f"line {number} is not a JSON list of {N_AUS} numbers", path=path
            ) from None
        if not isinstance(row, list) or len(row) != N_AUS:
            raise BenchError(f"line {number} does not hold {N_AUS} numbers", path=path)
        rows.append([math.nan if v is None else v for v in row])
    return np.asarray(rows, dtype=np.float64).reshape(-1, N_AUS)


def _validated_labels(values: np.ndarray, path: Path) -> np.ndarray:
    if values.ndim != 2 or values.shape[1] != N_AUS or not np.issubdtype(values.dtype, np.number):
        raise BenchError(
            f"AU labels have shape {values.shape}, expected (frames, {N_AUS}) numbers",
            path=path,
            fix="one row per 25 fps frame, columns in au_space.AU_NAMES order",
        )
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < -LABEL_TOLERANCE or finite.max() > 1 + LABEL_TOLERANCE):
        raise BenchError(
            f"AU labels range {finite.min():.3g}..{finite.max():.3g}, expected 0..1",
            path=path,
            fix="FEAFA+ AU values are in [0, 1]; rescale intensities (e.g. FACS 0-5) first",
        )
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def checked_au_matrix(aus: np.ndarray, what: str) -> np.ndarray:
    """``aus`` as an array, ValueError unless it is (frames, 24): one check for every AU track."""
    aus = np.asarray(aus)
    if aus.ndim != 2 or aus.shape[1] != N_AUS:
        raise ValueError(f"{what} must have shape (frames, {N_AUS}), got {aus.shape}")
    return aus


# ---- frame rate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRate:
    """The frame rate of a label file and where it came from (recorded with what uses it)."""

    fps: float
    source: str  # "label file" | "given" | "source video" | "clip length"


def label_file_rate(path: Path) -> float | None:
    """The rate a label file states about itself (a CSV's ``timestamp`` column), or None.

    BenchError when the timestamps cannot give one (unordered, or not evenly spaced).
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return None
    table = _csv_table(path)
    columns = {str(c).strip().lower(): c for c in table.columns}
    if TIMESTAMP_COLUMN not in columns:
        return None
    try:
        stamps = table[columns[TIMESTAMP_COLUMN]].to_numpy(dtype=np.float64)
    except ValueError:
        raise BenchError("AU labels CSV has a non-numeric timestamp", path=path) from None
    stamps = stamps[np.isfinite(stamps)]
    steps = np.diff(stamps)
    if len(steps) == 0:
        return None  # one row: no rate to read, and none needed
    step = float(np.median(steps))
    if step <= 0 or np.abs(steps - step).max() > 0.25 * step:
        raise BenchError(
            "AU labels CSV timestamps are not evenly spaced, increasing seconds",
            path=path,
            fix=f"one row per video frame with its time in seconds, or drop {TIMESTAMP_COLUMN}",
        )
    return len(steps) / float(stamps[-1] - stamps[0])  # over the span: rounding averages out


def resample_track(track: np.ndarray, from_fps: float, to_fps: float = VIDEO_FPS) -> np.ndarray:
    """A (T, K) track at ``from_fps`` -> (round(T * to / from), K) at ``to_fps``.

    Linear interpolation over time, frame i sitting at i / fps; output frames past the last
    input frame hold its value. An output value is NaN when an input frame it draws on is
    NaN (not measured stays not measured). Same rates: returned unchanged.
    """
    track = np.asarray(track)
    if from_fps <= 0 or to_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {from_fps} -> {to_fps}")
    if abs(from_fps - to_fps) <= RATE_TOLERANCE * to_fps or len(track) == 0:
        return track
    count = int(round(len(track) * to_fps / from_fps))
    position = np.minimum(np.arange(count) * (from_fps / to_fps), len(track) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(track) - 1)
    weight = (position - below)[:, None]
    values = track.astype(np.float64)
    low, high = values[below], values[above]
    out = np.where(weight == 0, low, (1 - weight) * low + weight * high)
    return out.astype(track.dtype if np.issubdtype(track.dtype, np.floating) else np.float64)


def label_rate(
    path: Path, rows: int, *, frames: int | None = None, fps: float | None = None,
    source_fps: float | None = None,
) -> LabelRate:
    """The rate of the ``rows`` labels in ``path`` (see the module docstring for the order).

    ``frames``: the clip's length at 25 fps; with it, a rate that does not fit the labels'
    length (or no rate and a length that is not the clip's) is a BenchError naming the fix.
    """
    stated = label_file_rate(path)
    if stated is not None and fps is not None and abs(stated - fps) > RATE_TOLERANCE * fps:
        raise BenchError(
            f"AU labels state {stated:.3f} fps (timestamps) but {fps:g} fps was given",
            path=path,
            fix="drop the explicit rate (au_labels_fps / --au-fps) or fix the timestamps",
        )
    if stated is not None:
        rate = LabelRate(stated, "label file")
    elif fps is not None:
        rate = LabelRate(float(fps), "given")
    elif source_fps:
        rate = LabelRate(float(source_fps), "source video")
    elif frames is not None and _fits(rows, frames):
        return LabelRate(float(VIDEO_FPS), "clip length")
    else:
        where = f"the clip has {frames} frames at {VIDEO_FPS} fps and " if frames else ""
        raise BenchError(
            f"AU labels have {rows} rows; {where}their frame rate is unknown",
            path=path,
            fix=f"give their rate: a {TIMESTAMP_COLUMN!r} column (seconds), the dataset option "
            f"{LABELS_FPS_KEY} (or train stage1 --au-fps), or one row per {VIDEO_FPS} fps frame",
        )
    resampled = int(round(rows * VIDEO_FPS / rate.fps))
    if frames is not None and not _fits(resampled, frames):
        raise BenchError(
            f"AU labels have {rows} rows: at {rate.fps:.3f} fps ({rate.source}) that is "
            f"{resampled} frames at {VIDEO_FPS} fps, but the clip has {frames}",
            path=path,
            fix=f"state the labels' own rate: a {TIMESTAMP_COLUMN!r} column or the dataset "
            f"option {LABELS_FPS_KEY} (train stage1 --au-fps)",
        )
    return rate


def labels_at_video_rate(
    path: Path, *, frames: int | None = None, fps: float | None = None,
    source_fps: float | None = None,
) -> tuple[np.ndarray, LabelRate]:
    """A label file read and resampled to 25 fps: ((T25, 24) float32, the rate it had)."""
    labels = load_au_labels(path)
    rate = label_rate(path, len(labels), frames=frames, fps=fps, source_fps=source_fps)
    return resample_track(labels, rate.fps).astype(np.float32), rate


def clip_label_rates(meta: dict[str, Any]) -> dict[str, float | None]:
    """``fps`` / ``source_fps`` for ``labels_at_video_rate`` from a clip's ``meta``."""
    fps, source = meta.get(LABELS_FPS_KEY), meta.get(SOURCE_FPS_KEY)
    return {
        "fps": float(fps) if fps else None,
        "source_fps": float(source) if source else None,
    }


def _fits(rows: int, frames: int) -> bool:
    return rows > 0 and abs(rows - frames) <= LENGTH_SLACK * frames + 2
