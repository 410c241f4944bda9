"""The 24 FEAFA+ Action Units every AU track in the suite uses, and AU label files.

Shared by AUHead's stages (methods), the AU-track metrics and the datasets' label checks, so
it lives in the core: index i of every AU vector is ``AU_NAMES[i]``, the authors' stage-1 order
(see AUHEAD.md), values continuous in [0, 1].

AU label files (``Clip.au_labels``): one row per video frame at 25 fps, 24 columns in the
order of ``AU_NAMES``, values in [0, 1], NaN where a frame has no measurement:

- ``.npy``: a float array of shape (T, 24);
- ``.csv``: a header naming the 24 AU columns by ``AU_NAMES`` (any order; other columns
  such as ``frame`` are ignored), one row per frame, empty cells read as NaN;
- ``.json`` / ``.txt``: the authors' raw label files, one JSON list of 24 numbers per line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

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


# ---- label files --------------------------------------------------------------------------


def load_au_labels(path: Path) -> np.ndarray:
    """A clip's AU labels as (T, 24) float32 at 25 fps (NaN = not measured).

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


def save_au_labels(path: Path, aus: np.ndarray) -> Path:
    """Write (T, 24) labels as .npy or .csv (header: frame + AU_NAMES), by the suffix."""
    path = Path(path)
    aus = checked_au_matrix(aus, "AU labels").astype(np.float32)
    if path.suffix.lower() == ".npy":
        np.save(path, aus)
        return path
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: save AU labels as .npy or .csv")
    lines = [",".join(("frame", *AU_NAMES))]
    for t, row in enumerate(aus):
        cells = ("" if not math.isfinite(v) else f"{v:.6g}" for v in row.tolist())
        lines.append(",".join((str(t), *cells)))
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_csv(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchError(
            f"AU labels CSV cannot be read ({exc})".replace("\n", " "), path=path
        ) from None
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
