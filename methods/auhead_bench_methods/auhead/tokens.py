"""Spatial-temporal AU tokenization (AUHead stage 1), its exact inverse, and AU label files.

Tokenization, as the authors' stage-1 code does it (see docs/auhead.md):

- temporal: AU tracks at 25 fps are subsampled to 5 fps by keeping every 5th frame
  (frames 0, 5, 10, ...); the audio stays at 16 kHz, one token frame per 3200 samples;
- spatial: per token frame only the active AUs are written, as (index, value) pairs with the
  value rounded to 2 decimals; values that round to 0 are dropped.

Two spellings exist in the authors' pipeline and both are implemented:

- ``compact``: their intermediate label lines, no spaces and no leading zero:
  ``[(3,.32),(7,.81)]`` (one line per token frame);
- ``sequence`` (the training target): those lines read back as Python literals and written
  with ``json.dumps``, so the text the model learns is
  ``The AU sequence for each frame of audio is: [[[3, 0.32], [7, 0.81]], []]`` with a
  leading zero and the shortest float spelling (``0.1``, not ``.10``; ``1.0`` for 1).
  We emit exactly that, since it is what their fine-tuned model saw.

The inverse (text -> 5 fps matrix) is exact: ``decode(encode(M)) == quantize(M)``.
Back to 25 fps by linear interpolation between token frames (the paper); frames after the
last token frame hold its value.

AU label files (``load_au_labels``, ``save_au_labels``) are read and written by the core's
``auhead_bench.aus``, since metrics and datasets read them too; the names stay here for callers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from auhead_bench.aus import FRAME_STRIDE, N_AUS, VIDEO_FPS
from auhead_bench.aus import checked_au_matrix as _checked_matrix
from auhead_bench.aus import load_au_labels as load_au_labels
from auhead_bench.aus import save_au_labels as save_au_labels
from auhead_bench_methods.auhead.au_space import AUDIO_RATE, SAMPLES_PER_TOKEN_FRAME

TOKENS_VERSION = "1"  # bump when any spelling below changes: it keys cached generations
SAMPLES_PER_VIDEO_FRAME = AUDIO_RATE // VIDEO_FPS  # 640
DECIMALS = 2
TARGET_PREFIX = "The AU sequence for each frame of audio is:"

Pair = tuple[int, float]


# ---- time ---------------------------------------------------------------------------------


def video_frames_for_audio(n_samples: int) -> int:
    """Video frames (25 fps) that an audio of ``n_samples`` at 16 kHz spans, rounded."""
    return int(round(n_samples / SAMPLES_PER_VIDEO_FRAME))


def token_frames_for(video_frames: int) -> int:
    """Token frames (5 fps) that subsampling ``video_frames`` keeps: frames 0, 5, 10, ..."""
    return -(-video_frames // FRAME_STRIDE)


def subsample(aus: np.ndarray) -> np.ndarray:
    """25 fps (T, 24) -> 5 fps (ceil(T/5), 24): every 5th frame, starting with frame 0."""
    return _checked_matrix(aus, "AU track")[::FRAME_STRIDE]


def upsample(aus_5fps: np.ndarray, video_frames: int) -> np.ndarray:
    """5 fps -> 25 fps by linear interpolation; token frame k sits on video frame 5k.

    Rows that are NaN (token frames the model did not give) are bridged by interpolating
    between their neighbours; the ends hold the nearest known value; no known row at all
    gives zeros (a neutral face). The result is float32 in [0, 1].
    """
    aus_5fps = np.asarray(aus_5fps, dtype=np.float64)
    out = np.zeros((video_frames, N_AUS), dtype=np.float32)
    known = np.flatnonzero(np.isfinite(aus_5fps).all(axis=1)) if len(aus_5fps) else []
    if video_frames == 0 or len(known) == 0:
        return out
    times = np.arange(video_frames, dtype=np.float64)
    keys = np.asarray(known, dtype=np.float64) * FRAME_STRIDE
    for au in range(N_AUS):
        out[:, au] = np.interp(times, keys, aus_5fps[known, au])
    return np.clip(out, 0.0, 1.0)


def chunk_bounds(token_frames: int, chunk_token_frames: int) -> list[tuple[int, int]]:
    """[start, stop) token-frame ranges of at most ``chunk_token_frames`` covering all frames."""
    if chunk_token_frames < 1:
        raise ValueError("chunk_token_frames must be >= 1")
    return [
        (start, min(start + chunk_token_frames, token_frames))
        for start in range(0, token_frames, chunk_token_frames)
    ]


def audio_for_token_frames(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The samples token frames [start, stop) cover: 3200 per frame, the last may be short."""
    return audio[start * SAMPLES_PER_TOKEN_FRAME : stop * SAMPLES_PER_TOKEN_FRAME]


# ---- values -------------------------------------------------------------------------------


def quantize(aus: np.ndarray) -> np.ndarray:
    """What tokenization keeps: values clipped to [0, 1] and rounded to 2 decimals.

    Rounding is Python's ``round(value, 2)`` (correctly rounded, as the authors' label script
    does; numpy's round can differ at ties such as 0.005). Values that round to 0 become 0
    (dropped from the text). float64, so each value is exactly the float its 2-decimal
    spelling reads back as.
    """
    values = _checked_matrix(aus, "AU matrix").astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("AU matrix has NaN or infinite values; only measured frames tokenize")
    rounded = np.array([round(v, DECIMALS) for v in values.ravel().tolist()], dtype=np.float64)
    return np.clip(rounded.reshape(values.shape), 0.0, 1.0) + 0.0  # + 0.0: no -0.0


def frame_pairs(vector: np.ndarray) -> list[Pair]:
    """The active (index, value) pairs of one 24-d AU vector, in index order."""
    row = quantize(np.asarray(vector).reshape(1, N_AUS))[0]
    return [(int(i), float(row[i])) for i in np.flatnonzero(row > 0)]


def pairs_to_matrix(frames: Sequence[Sequence[Pair]]) -> np.ndarray:
    """Token frames of (index, value) pairs -> (T, 24) float64; absent AUs are 0."""
    out = np.zeros((len(frames), N_AUS), dtype=np.float64)
    for t, pairs in enumerate(frames):
        for index, value in pairs:
            out[t, index] = value
    return out


# ---- text ---------------------------------------------------------------------------------


def encode_sequence(aus_5fps: np.ndarray) -> str:
    """The training target's list: ``[[[3, 0.32], [7, 0.81]], []]`` (json.dumps spelling)."""
    frames = [[[i, v] for i, v in frame_pairs(row)] for row in _checked_matrix(aus_5fps, "AUs")]
    return json.dumps(frames)


def target_text(aus_5fps: np.ndarray) -> str:
    """The assistant text the model is trained to write (before any emotion sentence)."""
    return f"{TARGET_PREFIX} {encode_sequence(aus_5fps)}"


def encode_compact(aus_5fps: np.ndarray) -> str:
    """The authors' intermediate label lines: ``[(3,.32),(7,.81)]``, one per token frame."""
    lines = []
    for row in _checked_matrix(aus_5fps, "AUs"):
        items = ",".join(f"({i},{_compact_value(v)})" for i, v in frame_pairs(row))
        lines.append(f"[{items}]")
    return "\n".join(lines)


def _compact_value(value: float) -> str:
    text = f"{value:.{DECIMALS}f}"
    return text[1:] if text.startswith("0.") else text
