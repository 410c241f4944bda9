"""Reads an AU sequence (and a stated emotion) from model output, whatever shape it is in.

A language model's answer can be cut off, wrapped in prose, use tuples or lists, carry
indices outside 0..23 or values outside [0, 1], or give too few or too many frames. The
parser keeps every frame it can read, marks the frames it cannot (NaN rows, later bridged
by interpolation, see tokens.upsample) and says what happened in a ParseReport, so a
result built from a bad answer is never mistaken for a good one.

What it accepts: the training target (``... is: [[[3, 0.32]], []]``), the authors' compact
lines (``[(3,.32),(7,.81)]`` one per line), dense 24-value frames, and flat frames
(``[3, .32, 7, .81]``). Rules: a frame that the text ends inside is dropped (its missing AUs
are unknown, not zero); a pair that is not exactly two numbers is dropped; an index outside
0..23 (or not an integer) drops its pair; a value outside [0, 1] is clipped; a second pair
for the same AU in a frame is dropped; frames beyond the expected count are ignored.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.prompts import canonical_emotion
from auhead_bench_methods.auhead.tokens import TARGET_PREFIX

MAX_MESSAGES = 12  # a report lands in run records: keep it short
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TOKENS = re.compile(
    rf"(?P<open>[\[\(])|(?P<close>[\]\)])|(?P<num>{_NUMBER})(?![A-Za-z_])"
    r"|(?P<sep>[,;:\s\"']+)|(?P<junk>[^\[\]\(\),;:\s\"']+)"
)
_SEQUENCE_START = re.compile(r"AU\s+sequence[^\[\(]*", re.IGNORECASE)


@dataclass
class ParseReport:
    """What the parser recovered and what it could not. ``clean`` is True for a perfect read."""

    expected_frames: int | None = None
    frames_found: int = 0  # frames in the text, readable or not
    frames_used: int = 0  # expected frames filled from the text
    missing_frames: int = 0  # expected frames without a readable frame (NaN, interpolated)
    extra_frames: int = 0  # frames beyond the expected count (ignored)
    pairs_kept: int = 0
    pairs_dropped: int = 0  # not two numbers, junk inside, or cut off
    bad_indices: int = 0  # index not an integer in 0..23 (pair dropped)
    clipped_values: int = 0  # value outside [0, 1] (clipped)
    duplicate_pairs: int = 0  # a second pair for the same AU in one frame (dropped)
    truncated: bool = False  # the text ends inside the sequence
    prefix_found: bool = False  # the answer starts its list with TARGET_PREFIX
    emotion_expected: bool = False
    emotion_found: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.messages

    def note(self, message: str) -> None:
        if message not in self.messages and len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for Generation.info and records."""
        return {**asdict(self), "clean": self.clean}

    @classmethod
    def merge(cls, reports: list[ParseReport]) -> ParseReport:
        """One report for a clip read in several chunks (counts add up)."""
        merged = cls(expected_frames=0, prefix_found=bool(reports))
        for k, report in enumerate(reports):
            for name in (
                "frames_found", "frames_used", "missing_frames", "extra_frames", "pairs_kept",
                "pairs_dropped", "bad_indices", "clipped_values", "duplicate_pairs",
            ):
                setattr(merged, name, getattr(merged, name) + getattr(report, name))
            merged.expected_frames += report.expected_frames or 0
            merged.truncated |= report.truncated
            merged.prefix_found &= report.prefix_found
            merged.emotion_expected |= report.emotion_expected
            merged.emotion_found |= report.emotion_found
            for message in report.messages:
                merged.note(f"chunk {k}: {message}" if len(reports) > 1 else message)
        return merged


@dataclass
class ParsedOutput:
    """``aus_5fps``: (frames, 24) float64, NaN rows where no frame could be read."""

    aus_5fps: np.ndarray
    emotion: str | None
    report: ParseReport


@dataclass
class _Node:
    """One bracketed group: numbers (as text) and nested groups, in order."""

    items: list[str | _Node] = field(default_factory=list)
    junk: int = 0
    closed: bool = False

    @property
    def children(self) -> list[_Node]:
        return [item for item in self.items if isinstance(item, _Node)]

    @property
    def numbers(self) -> list[str]:
        return [item for item in self.items if isinstance(item, str)]

    @property
    def depth(self) -> int:
        return 1 + max((child.depth for child in self.children), default=0)


def parse_output(
    text: str, expected_frames: int | None = None, expect_emotion: bool = False
) -> ParsedOutput:
    """Read the AU sequence (and, if ``expect_emotion``, the stated emotion) from ``text``.

    ``expected_frames`` (token frames at 5 fps) fixes the output's length: short answers
    leave NaN rows, long ones are cut. None takes as many frames as the text has.
    """
    report = ParseReport(expected_frames=expected_frames, emotion_expected=expect_emotion)
    text = text or ""
    start, report.prefix_found = _sequence_start(text)
    if start is None:
        frames: list[np.ndarray | None] = []
        report.note("no AU sequence found in the output")
    else:
        frames = _read_sequence(text[start:], report)
    report.frames_found = len(frames)
    total = len(frames) if expected_frames is None else expected_frames
    aus = np.full((total, N_AUS), np.nan)
    for t, frame in enumerate(frames[:total]):
        if frame is not None:
            aus[t] = frame
    report.frames_used = int(np.isfinite(aus).all(axis=1).sum())
    report.missing_frames = total - report.frames_used
    report.extra_frames = max(0, len(frames) - total)
    emotion = None
    if expect_emotion:
        emotion = _read_emotion(text, start, report)
    _summarise(report)
    return ParsedOutput(aus_5fps=aus, emotion=emotion, report=report)


# ---- locating ----------------------------------------------------------------------------


def _sequence_start(text: str) -> tuple[int | None, bool]:
    """Where the list begins, and whether the exact target prefix introduced it."""
    prefix_at = text.find(TARGET_PREFIX)
    if prefix_at < 0:
        prefix_at = text.lower().find(TARGET_PREFIX.lower())
    match = _SEQUENCE_START.search(text) if prefix_at < 0 else None
    after = prefix_at + len(TARGET_PREFIX) if prefix_at >= 0 else (match.end() if match else 0)
    bracket = _first_bracket(text, after)
    if bracket is None and after:
        bracket = _first_bracket(text, 0)
    return bracket, prefix_at >= 0 and bracket is not None


def _first_bracket(text: str, start: int) -> int | None:
    found = [i for i in (text.find("[", start), text.find("(", start)) if i >= 0]
    return min(found) if found else None


# ---- reading -----------------------------------------------------------------------------


def _forest(text: str, report: ParseReport) -> list[_Node]:
    """Bracket groups of ``text``; '(' and '[' are the same; stray closers are skipped."""
    roots: list[_Node] = []
    stack: list[_Node] = []
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        if kind == "open":
            node = _Node()
            (stack[-1].items if stack else roots).append(node)
            stack.append(node)
        elif kind == "close":
            if stack:
                stack.pop().closed = True
        elif kind == "num" and stack:
            stack[-1].items.append(match.group())
        elif kind == "junk" and stack:
            stack[-1].junk += 1
    if stack:
        report.truncated = True
    return roots


def _read_sequence(text: str, report: ParseReport) -> list[np.ndarray | None]:
    roots = _forest(text, report)
    if not roots:
        report.note("no bracketed list found in the output")
        return []
    first = roots[0]
    bare_frames = first.depth == 2 and not all(_pair_like(c) for c in first.children)
    if first.depth >= 3 or bare_frames:  # [[pairs], ...] or [[24 values], [], ...]
        sequence = first
        while sequence.depth > 3 and len(sequence.children) == 1:
            sequence = sequence.children[0]
            report.note("extra brackets around the sequence were ignored")
        if sequence.numbers or sequence.junk:
            report.note("text between frames was ignored")
        if len(roots) > 1:
            report.note("text after the sequence was ignored")
        nodes = sequence.children
    else:  # one frame per line: the authors' compact label layout
        nodes = []
        for root in roots:
            if root.depth > 2 or root.junk:
                report.note("text after the frames was ignored")
                break
            nodes.append(root)
    return [_read_frame(node, report) for node in nodes]


def _pair_like(node: _Node) -> bool:
    return not node.children and len(node.numbers) == 2


def _read_frame(node: _Node, report: ParseReport) -> np.ndarray | None:
    if not node.closed:
        report.note("the output ends inside a frame; that frame is treated as missing")
        return None
    vector = np.zeros(N_AUS)
    if node.junk:
        report.note("non-numeric text inside a frame was ignored")
    pairs = node.children
    if pairs:
        if node.numbers:
            report.note("numbers outside pairs were ignored")
        seen: set[int] = set()
        kept = report.pairs_kept
        for pair in pairs:
            _read_pair(pair, vector, seen, report)
        if report.pairs_kept == kept:
            report.note("a frame whose pairs are all unusable is treated as missing")
            return None
        return vector
    numbers = node.numbers
    if not numbers:
        if node.junk:
            report.note("a frame without numbers is treated as missing")
            return None
        return vector  # [] : no active AU
    values = [_number(n) for n in numbers]
    if len(values) == N_AUS:
        report.note(f"a frame of {N_AUS} bare values was read as a dense AU vector")
        for index, value in enumerate(values):
            _store(vector, index, value, report)
        report.pairs_kept += N_AUS
        return vector
    indices = values[0::2]
    if len(values) % 2 == 0 and all(_index(v) is not None for v in indices):
        report.note("a frame of bare numbers was read as (index, value) pairs")
        seen = set()
        for index, value in zip(indices, values[1::2], strict=True):
            _keep_pair(vector, seen, _index(index), value, report)
        return vector
    report.note("a frame that is neither pairs nor 24 values is treated as missing")
    return None


def _read_pair(pair: _Node, vector: np.ndarray, seen: set[int], report: ParseReport) -> None:
    numbers = pair.numbers
    if not pair.closed or pair.children or pair.junk or len(numbers) != 2:
        report.pairs_dropped += 1
        return
    index, value = _index(_number(numbers[0])), _number(numbers[1])
    if index is None:
        report.bad_indices += 1
        return
    _keep_pair(vector, seen, index, value, report)


def _keep_pair(
    vector: np.ndarray, seen: set[int], index: int | None, value: float, report: ParseReport
) -> None:
    if index is None:
        report.bad_indices += 1
        return
    if not math.isfinite(value):
        report.pairs_dropped += 1
        return
    if index in seen:
        report.duplicate_pairs += 1
        return
    seen.add(index)
    _store(vector, index, value, report)
    report.pairs_kept += 1


def _store(vector: np.ndarray, index: int, value: float, report: ParseReport) -> None:
    if not math.isfinite(value):
        value = 0.0
        report.pairs_dropped += 1
    if value < 0.0 or value > 1.0:
        report.clipped_values += 1
        value = min(max(value, 0.0), 1.0)
    vector[index] = value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # pragma: no cover - the token pattern only yields numbers
        return math.nan


def _index(value: float) -> int | None:
    if not math.isfinite(value) or not float(value).is_integer():
        return None
    index = int(value)
    return index if 0 <= index < N_AUS else None


# ---- emotion and summary -----------------------------------------------------------------


def _read_emotion(text: str, start: int | None, report: ParseReport) -> str | None:
    """The emotion stated before the sequence ('Emotion: happy.'), as the suite names it."""
    head = text if start is None else text[:start]
    keyword = re.search(r"emotion", head, re.IGNORECASE)
    if keyword:
        words = re.findall(r"[A-Za-z]+", head[keyword.end() : keyword.end() + 80])
        for word in words:
            emotion = canonical_emotion(word)
            if emotion is not None:
                report.emotion_found = True
                return emotion
        stated = next((w for w in words if w.lower() not in ("is", "the", "of")), "")
        report.note(f"unknown emotion {stated[:20]!r}" if stated else "no emotion stated")
        return None
    for word in re.findall(r"[A-Za-z]+", head):
        emotion = canonical_emotion(word)
        if emotion is not None:
            report.emotion_found = True
            report.note("emotion read without the 'Emotion:' prefix")
            return emotion
    report.note("no emotion stated")
    return None


def _summarise(report: ParseReport) -> None:
    counts = Counter(
        {
            "pairs dropped (malformed or cut off)": report.pairs_dropped,
            "pairs with an AU index outside 0..23 dropped": report.bad_indices,
            "values outside [0, 1] clipped": report.clipped_values,
            "duplicate AU pairs in a frame dropped": report.duplicate_pairs,
            "frames beyond the expected count ignored": report.extra_frames,
        }
    )
    for what, count in counts.items():
        if count:
            report.note(f"{count} {what}")
    if report.missing_frames:
        report.note(
            f"{report.missing_frames} of {report.missing_frames + report.frames_used} "
            "expected frames missing (interpolated from neighbours, zeros if none)"
        )
    if report.truncated:
        report.note("the output was cut off inside the sequence")
    if not report.prefix_found and report.frames_found:
        report.note("the answer did not start with the expected prefix")
