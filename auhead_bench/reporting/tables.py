"""Comparison tables: methods x metrics with CIs, best per column, reasons, cost, breakdowns.

One ``Report`` (numbers only) is built from records and then rendered as Markdown, CSV, LaTeX
or JSON, so every format shows the same numbers. Record strings are escaped for the target
format here (Markdown pipes, LaTeX specials, spreadsheet formulas); HTML escaping is the
leaderboard's job (Jinja autoescape).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from auhead_bench.errors import BenchError
from auhead_bench.private_paths import PathScrubber
from auhead_bench.records import MetricResult, RunRecord
from auhead_bench.reporting.inputs import LoadedRecord, is_reference
from auhead_bench.reporting.stats import (
    LEVEL,
    MIN_CLIPS,
    N_BOOT,
    N_TOO_SMALL,
    SEED,
    Comparison,
    Estimate,
    estimate,
    group_estimates,
    label_sort_key,
    paired_comparison,
    skipped_clips,
)

ARROW = {True: "↑", False: "↓"}
FORMATS = ("md", "csv", "latex", "json")
BREAKDOWNS = ("emotion", "intensity")
VIEWS = ("main", "compare", *BREAKDOWNS)
LAYOUTS = ("auto", "wide", "tall")  # LaTeX: methods as rows (wide) or metrics as rows (tall)
# A paper column (241 pt in a 10pt two-column article; CVPR/IEEE are alike) holds a label
# column and three columns of "0.5258" over "[0.5101, 0.5402]" in footnotesize (measured with
# pdflatex: tests/test_report_display.py::test_latex_fits_a_paper_column).
COLUMN_FITS = 3
# Peak memory: the runner's GenerationResult.peak_memory_bytes (CUDA), else what a method put
# in GenerationResult.info[key], in bytes or MiB.
MEMORY_KEYS = {"peak_memory_bytes": 1, "peak_memory_mib": 2**20, "peak_memory_mb": 2**20}


@dataclass(frozen=True)
class Column:
    """A metric column and its direction."""

    metric_id: str
    higher_is_better: bool

    @property
    def arrow(self) -> str:
        return ARROW[self.higher_is_better]


@dataclass
class Cell:
    """One record's result for one metric, ready to render in any format."""

    metric_id: str
    status: str  # ok, not_computed, failed, or missing (the record has no such metric)
    estimate: Estimate
    n: int = 0  # independent clips with a value (never clips x seeds)
    n_skipped: int = 0  # clips left unscored under at least one seed
    reason: str | None = None  # full reason from the record
    best: bool = False
    decimals: int | None = None  # fixed decimals (--decimals); None: 4 significant digits

    @property
    def value(self) -> float | None:
        return self.estimate.value

    @property
    def short_reason(self) -> str | None:
        """The reason without its ``-- fix: ...`` tail, cut at a word to fit a cell (the
        Markdown and LaTeX tables give the whole reason in a numbered note instead)."""
        if not self.reason:
            return None
        text = self.reason.split(" -- ")[0].strip()
        if len(text) <= 80:
            return text
        cut = text[:78].rsplit(" ", 1)[0] if " " in text[:78] else text[:78]
        return cut.rstrip(" ,;:(") + " …"

    def value_text(self) -> str:
        """'22.10 [20.30, 25.00]' (the CI as it is, asymmetric or not), or '' for no value."""
        return interval_text(self.estimate, self.decimals)

    def number_text(self) -> str:
        """The value alone, formatted like the rest of its column."""
        return "" if self.value is None else format_value(self.value, self.decimals)

    def ci_text(self) -> str:
        """'[20.30, 25.00]', or '' where there is no interval."""
        est = self.estimate
        if est.value is None or est.ci_low is None or est.ci_high is None:
            return ""
        low = format_like(est.ci_low, est.value, self.decimals)
        return f"[{low}, {format_like(est.ci_high, est.value, self.decimals)}]"

    def status_text(self) -> str:
        return {"missing": "not run"}.get(self.status, self.status.replace("_", " "))

    def empty_note(self) -> str:
        """Why the cell has no value, whole: the note a column shows once."""
        if self.status == "missing":
            return "not run: the record has no result for this metric"
        return f"{self.status_text()}: {self.reason}" if self.reason else self.status_text()

    def note_text(self) -> str | None:
        """The whole reason, for a numbered note under a table: why the cell is empty, or
        why clips were skipped."""
        if self.value is None:
            return self.empty_note()
        if self.n_skipped:
            return f"clips skipped: {self.reason or 'no reason given'}"
        return None

    def n_text(self) -> str:
        """'n=12', or 'n=3, n too small' when there are too few clips for a CI."""
        too_small = ", n too small" if self.estimate.too_small else ""
        return f"n={self.n}{too_small}"

    def detail_text(self) -> str:
        """'n=10, seed sd 0.10, 3 skipped' or the reason the cell is empty."""
        if self.value is None:
            what = self.status_text()
            return f"{what}: {self.short_reason}" if self.short_reason else what
        parts = [self.n_text()]
        if self.estimate.seed_std is not None:
            sd = format_like(self.estimate.seed_std, self.value, self.decimals)
            parts.append(f"seed sd {sd}")
        if self.n_skipped:
            parts.append(f"{self.n_skipped} skipped")
        return ", ".join(parts)

    def tooltip(self) -> str:
        """Plain-text interval description for a leaderboard tooltip (the reason an empty cell
        has is the column's note, not repeated here)."""
        est = self.estimate
        if self.value is None:
            return self.status_text()
        lines = [f"value {self.value:.6g} ({self.n} clips, {est.n_seeds} seed(s))"]
        if est.ci_low is not None and est.ci_high is not None:
            lines.append(
                f"{est.level:.0%} CI [{est.ci_low:.6g}, {est.ci_high:.6g}], bootstrap over "
                f"{est.n_clips} clips ({est.n_boot} resamples)"
            )
        elif est.note:
            lines.append(est.note)
        if est.seed_std is not None:
            lines.append(f"sd over {est.n_seeds} seeds {est.seed_std:.4g}")
        if self.n_skipped:
            lines.append(f"{self.n_skipped} skipped: {self.reason}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            **self.estimate.as_dict(),
            "n": self.n,
            "n_skipped": self.n_skipped,
            "reason": self.reason,
            "best": self.best,
        }


@dataclass(frozen=True)
class Cost:
    """What generating cost: seconds per generated frame and peak memory, where recorded."""

    seconds_per_frame: float | None
    peak_memory_bytes: int | None
    n_timed: int  # generations with both seconds and frames
    device: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds_per_frame": self.seconds_per_frame,
            "peak_memory_bytes": self.peak_memory_bytes,
            "n_timed": self.n_timed,
            "device": self.device,
        }


@dataclass
class Row:
    """One record: a method with fixed options on one dataset."""

    loaded: LoadedRecord
    cells: dict[str, Cell]
    cost: Cost

    @property
    def record(self) -> RunRecord:
        return self.loaded.record

    @property
    def label(self) -> str:
        return self.loaded.label

    @property
    def dataset(self) -> str:
        return self.record.dataset.id


@dataclass
class ComparisonRow:
    """One record against the baseline of its dataset, per metric."""

    row: Row
    baseline: Row
    results: dict[str, Comparison | None]
    reasons: dict[str, str]  # metric -> why there is no comparison


@dataclass
class Breakdown:
    """One metric by one label (emotion or intensity): row label -> group -> estimate."""

    by: str
    column: Column
    groups: list[Any]
    rows: list[tuple[Row, dict[Any, Estimate]]]
    best: dict[tuple[str, Any], set[str]] = field(default_factory=dict)  # (dataset, group)


@dataclass
class Report:
    """Everything a table shows, computed once from the records."""

    columns: list[Column]
    rows: list[Row]
    comparisons: list[ComparisonRow]
    breakdowns: list[Breakdown]
    baseline: str | None
    n_boot: int
    level: float
    seed: int
    min_clips: int = MIN_CLIPS
    decimals: dict[str, int] = field(default_factory=dict)  # metric -> fixed decimals

    @property
    def has_time(self) -> bool:
        return any(r.cost.seconds_per_frame is not None for r in self.rows)

    @property
    def has_memory(self) -> bool:
        return any(r.cost.peak_memory_bytes is not None for r in self.rows)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r.dataset for r in self.rows))

    def views(self) -> list[str]:
        """The sections this report has content for, in reading order."""
        out = ["main"]
        if self.comparisons:
            out.append("compare")
        out.extend(by for by in BREAKDOWNS if any(b.by == by for b in self.breakdowns))
        return out

    def small_n_warning(self) -> str | None:
        """One line when any row has fewer clips than a CI needs, else None."""
        small = sorted(
            {
                row.cells[c.metric_id].n
                for row in self.rows
                for c in self.columns
                if row.cells[c.metric_id].estimate.too_small
            }
        )
        if not small:
            return None
        counts = ", ".join(str(n) for n in small)
        return (
            f"warning: n too small: some rows have {counts} clip(s), fewer than "
            f"{self.min_clips}; those cells show no CI and no p-value (score at least "
            f"{self.min_clips} clips, or choose the threshold with --min-clips)"
        )

    def column(self, metric_id: str) -> Column:
        for column in self.columns:
            if column.metric_id == metric_id:
                return column
        raise unknown_metric(metric_id, [c.metric_id for c in self.columns])


def unknown_metric(metric_id: str, known: Sequence[str]) -> BenchError:
    """The one-line error for a metric id no record has, with close matches."""
    import difflib

    close = difflib.get_close_matches(metric_id, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return BenchError(
        f"unknown metric id {metric_id!r}{hint}",
        fix=f"metrics in these records: {', '.join(known) or 'none'}",
    )


# ---- numbers -------------------------------------------------------------------------------


SIGNIFICANT = 4  # digits a value keeps by default: 0.5258, 0.05258, 18.73


def auto_decimals(value: float) -> int:
    """Decimals that keep ``SIGNIFICANT`` digits below 10 (at least 4, so columns line up)
    and 2 from 10 up: 0.5258, 0.05258, 0.0001234, 18.73, 1234.57. Never a real small value
    printed as 0.0000."""
    if value == 0 or not math.isfinite(value) or abs(value) >= 10:
        return 2 if value != 0 else 4
    return max(4, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))


def decimals_for(value: float, decimals: int | None = None) -> int:
    """The decimals ``value`` prints with: ``decimals`` when given, unless they would print a
    non-zero value as 0 ("0.00" for 0.001 would be a wrong number, not a rounded one); then,
    as by default, enough for 4 significant digits (``auto_decimals``)."""
    if decimals is not None and (value == 0 or float(f"{value:.{decimals}f}") != 0):
        return decimals
    return auto_decimals(value)


def format_value(value: float, decimals: int | None = None) -> str:
    """``value`` with ``decimals`` fixed decimals, or 4 significant digits where it matters
    (None); see ``decimals_for``."""
    if not math.isfinite(value):
        return str(value)
    value += 0.0  # -0.0 prints as 0
    if abs(value) >= 1e5 or 0 < abs(value) < 1e-6:
        return f"{value:.{SIGNIFICANT - 1}e}"
    return f"{value:.{decimals_for(value, decimals)}f}"


def format_like(value: float, reference: float, decimals: int | None = None) -> str:
    """``value`` with as many decimals as ``reference`` shows, so CI bounds line up with it."""
    if not math.isfinite(reference) or abs(reference) >= 1e5 or 0 < abs(reference) < 1e-6:
        return f"{value:.2g}"
    return f"{value:.{decimals_for(reference, decimals) if reference or decimals else 4}f}"


def interval_text(est: Estimate | None, decimals: int | None = None) -> str:
    """'22.10 [20.30, 25.00]': the value and its CI bounds, so an asymmetric interval reads as
    one; no interval where there is none (too few clips, a distribution metric)."""
    if est is None or est.value is None:
        return ""
    text = format_value(est.value, decimals)
    if est.ci_low is not None and est.ci_high is not None:
        low = format_like(est.ci_low, est.value, decimals)
        text += f" [{low}, {format_like(est.ci_high, est.value, decimals)}]"
    return text


def format_seconds(value: float) -> str:
    """Three significant digits: per-frame times span microseconds to minutes."""
    return f"{value:.3g}"


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def ceil_2g(value: float) -> str:
    """``value`` rounded up to two significant digits: a floor printed as 0.002, not 0.0019."""
    if value <= 0:
        return "0"
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return f"{math.ceil(value / scale - 1e-9) * scale:.12g}"


def format_p(comparison: Comparison) -> str:
    """'p=0.031', or 'p<=0.25' where the test's smallest attainable p-value was hit (an exact
    sign-flip test on 3 clips can say no more than that); 'n too small' without a test."""
    p = comparison.p_value
    if p is None:
        return N_TOO_SMALL
    if comparison.p_at_floor:
        return f"p<={ceil_2g(comparison.p_floor)}"
    return f"p={p:.2g}"


def signed(value: float, reference: float, decimals: int | None = None) -> str:
    text = format_like(abs(value), reference if reference else value, decimals)
    return ("−" if value < 0 else "+") + text


# ---- building ------------------------------------------------------------------------------


def columns_of(records: Iterable[RunRecord]) -> list[Column]:
    """Metric columns in first-seen order; the arrow comes from the first computed result
    (a not-computed placeholder may carry a default direction)."""
    seen: dict[str, bool] = {}
    computed: set[str] = set()
    for record in records:
        for metric_id, result in record.metrics.items():
            if metric_id not in seen or (result.status == "ok" and metric_id not in computed):
                seen[metric_id] = result.higher_is_better
            if result.status == "ok":
                computed.add(metric_id)
    return [Column(m, h) for m, h in seen.items()]


def make_cell(
    result: MetricResult | None, metric_id: str, decimals: int | None = None, **boot: Any
) -> Cell:
    if result is None:
        return Cell(metric_id, "missing", Estimate(value=None), reason=None, decimals=decimals)
    est = estimate(result, **boot)
    return Cell(
        metric_id,
        result.status,
        est,
        n=est.n_clips,
        n_skipped=skipped_clips(result),
        reason=result.reason,
        decimals=decimals,
    )


def select_columns(columns: list[Column], metrics: Sequence[str] | None) -> list[Column]:
    """The columns ``--metrics`` names, in its order; every column when None."""
    if not metrics:
        return columns
    by_id = {c.metric_id: c for c in columns}
    for metric_id in metrics:
        if metric_id not in by_id:
            raise unknown_metric(metric_id, list(by_id))
    return [by_id[m] for m in dict.fromkeys(metrics)]


def parse_decimals(text: str | None) -> dict[str, int] | int | None:
    """``--decimals``: 'N' for every metric, or 'METRIC=N,...' per metric; None: 4
    significant digits."""
    if text is None or not text.strip():
        return None

    def number(value: str) -> int:
        if not value.strip().isdigit() or int(value) > 12:
            raise BenchError(
                f"--decimals {text!r}: {value!r} is not a number of decimals from 0 to 12",
                fix="e.g. --decimals 3 or --decimals fid=1,csim=3",
            )
        return int(value)

    if "=" not in text:
        return number(text)
    out: dict[str, int] = {}
    for part in text.split(","):
        metric_id, sep, value = part.partition("=")
        if not sep or not metric_id.strip():
            raise BenchError(
                f"--decimals {text!r}: {part!r} is not METRIC=N",
                fix="e.g. --decimals 3 or --decimals fid=1,csim=3",
            )
        out[metric_id.strip()] = number(value)
    return out


def _decimals_of(decimals: dict[str, int] | int | None, columns: list[Column]) -> dict[str, int]:
    if decimals is None:
        return {}
    if isinstance(decimals, int):
        return {c.metric_id: decimals for c in columns}
    known = [c.metric_id for c in columns]
    for metric_id in decimals:
        if metric_id not in known:
            raise unknown_metric(metric_id, known)
    return dict(decimals)


def cost_of(record: RunRecord) -> Cost:
    """Seconds per generated frame over the timed generations; the largest peak memory."""
    seconds = frames = timed = 0
    peak: int | None = None
    for gen in record.generations:
        if gen.status == "ok" and gen.seconds is not None and gen.frames:
            seconds += gen.seconds
            frames += gen.frames
            timed += 1
        if gen.peak_memory_bytes is not None:
            peak = max(peak or 0, gen.peak_memory_bytes)
        for key, scale in MEMORY_KEYS.items():
            value = gen.info.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                peak = max(peak or 0, int(value * scale))
    return Cost(
        seconds_per_frame=seconds / frames if frames else None,
        peak_memory_bytes=peak,
        n_timed=timed,
        device=record.provenance.device,
    )


def mark_best(
    rows: list[Row], columns: list[Column], leave_out: Callable[[Row], bool] | None = None
) -> None:
    """Bold the best value per (dataset, metric) when at least two real methods compete; ties
    too. Reference rows (``is_reference``: ground_truth, static_frame) are never bold, nor
    rows ``leave_out`` names (the board's flagged entries)."""
    for column in columns:
        by_dataset: dict[str, list[Cell]] = {}
        for row in rows:
            row.cells[column.metric_id].best = False
            if is_reference(row.record) or (leave_out is not None and leave_out(row)):
                continue
            cell = row.cells[column.metric_id]
            if cell.value is not None and math.isfinite(cell.value):
                by_dataset.setdefault(row.dataset, []).append(cell)
        for cells in by_dataset.values():
            if len(cells) < 2:
                continue
            pick = max if column.higher_is_better else min
            top = pick(c.value for c in cells if c.value is not None)
            for cell in cells:
                cell.best = cell.value == top


def _find_baseline(rows: list[Row], name: str, dataset: str) -> Row | None:
    for row in rows:
        if row.dataset == dataset and name in (row.label, row.record.experiment):
            return row
    for row in rows:
        if row.dataset == dataset and row.record.record_id == name:
            return row
    return None


def compare_rows(
    rows: list[Row], columns: list[Column], baseline: str, **boot: Any
) -> list[ComparisonRow]:
    """Each record against ``baseline`` (experiment, row label or record id) of its dataset."""
    out: list[ComparisonRow] = []
    found = False
    for row in rows:
        base = _find_baseline(rows, baseline, row.dataset)
        if base is None:
            continue
        found = True
        if base is row:
            continue
        results: dict[str, Comparison | None] = {}
        reasons: dict[str, str] = {}
        for column in columns:
            ours = row.record.metrics.get(column.metric_id)
            theirs = base.record.metrics.get(column.metric_id)
            if ours is None or theirs is None or ours.status != "ok" or theirs.status != "ok":
                results[column.metric_id] = None
                reasons[column.metric_id] = "not computed for both"
                continue
            result = paired_comparison(ours, theirs, **boot)
            results[column.metric_id] = result
            if result is None:
                reasons[column.metric_id] = "no shared per-clip values"
        out.append(ComparisonRow(row=row, baseline=base, results=results, reasons=reasons))
    if not found:
        names = sorted({r.label for r in rows})
        raise BenchError(
            f"baseline {baseline!r} matches no record",
            fix=f"pass one of: {', '.join(names)}",
        )
    return out


def breakdown(rows: list[Row], column: Column, by: str, **boot: Any) -> Breakdown | None:
    """``column`` per value of the ``by`` label; None when no clip carries that label."""
    per_row: list[tuple[Row, dict[Any, Estimate]]] = []
    groups: dict[Any, None] = {}
    for row in rows:
        result = row.record.metrics.get(column.metric_id)
        if result is None or result.status != "ok":
            continue
        estimates = group_estimates(result, by, **boot)
        if estimates:
            per_row.append((row, estimates))
            groups.update(dict.fromkeys(estimates))
    if not per_row:
        return None
    result = Breakdown(
        by=by, column=column, groups=sorted(groups, key=label_sort_key), rows=per_row
    )
    pick = max if column.higher_is_better else min
    for group in result.groups:
        by_dataset: dict[str, list[tuple[str, float]]] = {}
        for row, estimates in per_row:
            if is_reference(row.record):
                continue
            value = estimates.get(group)
            if value is not None and value.value is not None:
                by_dataset.setdefault(row.dataset, []).append((row.label, value.value))
        for dataset, values in by_dataset.items():
            if len(values) > 1:
                top = pick(v for _, v in values)
                result.best[(dataset, group)] = {label for label, v in values if v == top}
    return result


def build_report(
    loaded: Sequence[LoadedRecord],
    *,
    baseline: str | None = None,
    by: Sequence[str] = BREAKDOWNS,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    min_clips: int = MIN_CLIPS,
    metrics: Sequence[str] | None = None,
    decimals: dict[str, int] | int | None = None,
) -> Report:
    """All numbers of every table: cells with CIs, best marks, cost, comparisons, breakdowns.

    ``metrics`` picks and orders the columns; ``decimals`` fixes the decimals (one number, or
    per metric id); ``min_clips`` is the fewest clips that get a CI and a p-value.
    """
    if not 0 < level < 1:
        raise BenchError(f"confidence level {level} is not between 0 and 1", fix="e.g. 0.95")
    if n_boot < 100:
        raise BenchError(f"{n_boot} bootstrap resamples are too few", fix="use at least 100")
    if min_clips < 2:
        raise BenchError(
            f"--min-clips {min_clips}: an interval needs at least 2 clips", fix="e.g. 10"
        )
    for name in by:
        if name not in BREAKDOWNS:
            raise BenchError(f"cannot break down by {name!r}", fix=f"use {', '.join(BREAKDOWNS)}")
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "min_clips": min_clips}
    columns = select_columns(columns_of(item.record for item in loaded), metrics)
    places = _decimals_of(decimals, columns)
    ordered = sorted(loaded, key=lambda item: item.record.dataset.id)  # stable: keeps run order
    rows = [
        Row(
            loaded=item,
            cells={
                c.metric_id: make_cell(
                    item.record.metrics.get(c.metric_id),
                    c.metric_id,
                    places.get(c.metric_id),
                    **boot,
                )
                for c in columns
            },
            cost=cost_of(item.record),
        )
        for item in ordered
    ]
    mark_best(rows, columns)
    comparisons = compare_rows(rows, columns, baseline, **boot) if baseline else []
    breakdowns = [
        b for name in by for column in columns if (b := breakdown(rows, column, name, **boot))
    ]
    return Report(
        columns=columns,
        rows=rows,
        comparisons=comparisons,
        breakdowns=breakdowns,
        baseline=baseline,
        n_boot=n_boot,
        level=level,
        seed=seed,
        min_clips=min_clips,
        decimals=places,
    )


# ---- Markdown ------------------------------------------------------------------------------


def md_escape(text: str) -> str:
    """Keep a record's string from breaking the table or turning into markup."""
    out = " ".join(str(text).split()).replace("\\", "\\\\")
    for char in "|*`<>":
        out = out.replace(char, "\\" + char)
    if "](" in out:  # only a bracket followed by a parenthesis makes a link
        out = out.replace("[", "\\[").replace("]", "\\]")
    return out


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


# What each reference method bounds, for the notes under a table. ground_truth's CSIM sits
# below static_frame's by construction, which reads like a bug unless said.
REFERENCE_NOTES = {
    "ground_truth": (
        "ground_truth is each clip's own video: the upper bound of metrics that compare with "
        "the real video or judge realism, lip sync and expression. It is not the top of "
        "identity similarity to the reference image (CSIM): the real face moves, turns and "
        "changes expression away from that one image."
    ),
    "static_frame": (
        "static_frame holds the reference image for the whole clip, audio kept: the lower "
        "bound of motion, lip sync and expression. Its frames are the reference image itself, "
        "so its CSIM is ~1 and above ground_truth's: a frozen face keeps its identity "
        "perfectly and does nothing else."
    ),
}


def reference_notes(report: Report) -> list[str]:
    """One sentence per reference method in the table: what it bounds and how to read it."""
    refs = list(dict.fromkeys(r.record.method.id for r in report.rows if is_reference(r.record)))
    out = []
    for method_id in refs:
        out.append(
            REFERENCE_NOTES.get(
                method_id,
                f"{method_id} is a reference row: it brackets the benchmark, it does not compete.",
            )
        )
    return out


def reading_notes(report: Report, marks: str = "[k]: note k below") -> str:
    """How to read a main-table cell, in the words every format uses."""
    refs = sorted({r.record.method.id for r in report.rows if is_reference(r.record)})
    ref = f" (reference rows {', '.join(refs)} never are)" if refs else ""
    return (
        f"Each cell: value [low, high], the {report.level:.0%} CI by percentile bootstrap over "
        f"clips ({report.n_boot} resamples, seed {report.seed}), not always symmetric; no CI "
        f"with fewer than {report.min_clips} clips ({N_TOO_SMALL}). n: independent clips (a "
        "clip's seeds are averaged, never counted as samples); seed sd: standard deviation of "
        f"the per-seed values; bold: best method per column and dataset{ref}; {marks}."
    )


@dataclass
class NoteBook:
    """Numbered notes under a table: the same text shares one number."""

    numbers: dict[str, int] = field(default_factory=dict)

    def mark(self, text: str) -> int:
        return self.numbers.setdefault(text, len(self.numbers) + 1)


def empty_marks(
    rows: Sequence[Row], columns: Sequence[Column], notes: NoteBook
) -> tuple[dict[str, int], dict[tuple[int, str], int]]:
    """Why cells are empty, said once per column: (header marks, cell marks).

    A column whose empty cells share one reason carries that note's mark in its header and its
    empty cells show only a dash; a column with several reasons marks each empty cell (by row
    index in ``rows``) with the note of its own reason.
    """
    header: dict[str, int] = {}
    cells: dict[tuple[int, str], int] = {}
    for column in columns:
        reasons: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            cell = row.cells[column.metric_id]
            if cell.value is None:
                reasons.setdefault(cell.empty_note(), []).append(index)
        if len(reasons) == 1:
            header[column.metric_id] = notes.mark(f"{column.metric_id}: {next(iter(reasons))}")
            continue
        for text, indices in reasons.items():
            mark = notes.mark(f"{column.metric_id}: {text}")
            cells.update({(index, column.metric_id): mark for index in indices})
    return header, cells


def _skipped_clips_text(record: RunRecord) -> str:
    return "; ".join(f"{clip}: {why}" for clip, why in record.skipped_clips.items())


def md_main(report: Report) -> list[str]:
    notes = NoteBook()
    header_marks, cell_marks = empty_marks(report.rows, report.columns, notes)
    header = ["method", "dataset"]
    for c in report.columns:
        mark = f" [{header_marks[c.metric_id]}]" if c.metric_id in header_marks else ""
        header.append(f"{md_escape(c.metric_id)} {c.arrow}{mark}")
    if report.has_time:
        header.append("s/frame ↓")
    if report.has_memory:
        header.append("peak mem ↓")
    body = []
    for index, row in enumerate(report.rows):
        cells = [md_escape(row.label), md_escape(row.dataset)]
        for column in report.columns:
            cell = row.cells[column.metric_id]
            if cell.value is None:
                mark = cell_marks.get((index, column.metric_id))
                cells.append(f"— [{mark}]" if mark else "—")
                continue
            value = cell.value_text()
            value = f"**{value}**" if cell.best else value
            parts = [cell.n_text()]
            if cell.estimate.seed_std is not None:
                sd = format_like(cell.estimate.seed_std, cell.value, cell.decimals)
                parts.append(f"seed sd {sd}")
            if cell.n_skipped:
                parts.append(f"{cell.n_skipped} skipped [{notes.mark(cell.note_text() or '')}]")
            cells.append(f"{value} ({', '.join(parts)})")
        if report.has_time:
            spf = row.cost.seconds_per_frame
            cells.append(format_seconds(spf) if spf is not None else "—")
        if report.has_memory:
            mem = row.cost.peak_memory_bytes
            cells.append(format_bytes(mem) if mem is not None else "—")
        body.append(cells)
    left_out = []
    for row in report.rows:
        if row.record.skipped_clips:
            mark = notes.mark(_skipped_clips_text(row.record))
            left_out.append(
                f"{md_escape(row.label)} ({md_escape(row.dataset)}): "
                f"{len(row.record.skipped_clips)} [{mark}]"
            )
    lines = _md_table(header, body) + ["", reading_notes(report)]
    refs = reference_notes(report)
    if refs:
        lines += ["", "Reference rows: " + " ".join(md_escape(text) for text in refs)]
    warning = report.small_n_warning()
    if warning:
        lines += ["", md_escape(warning)]
    if left_out:
        lines += ["", "Clips left out by --skip-bad-clips: " + "; ".join(left_out) + "."]
    if notes.numbers:
        lines += [""] + [f"[{n}] {md_escape(text)}  " for text, n in notes.numbers.items()]
        lines[-1] = lines[-1].rstrip()
    return lines


def _comparison_text(
    result: Comparison | None, reason: str | None, reference: float, decimals: int | None
) -> str:
    if result is None:
        return f"— ({reason or 'n/a'})"
    verdict = {True: "better", False: "worse", None: "same"}[result.better]
    diff = signed(result.diff, reference, decimals)
    if result.ci_low is None or result.ci_high is None or result.p_value is None:
        return f"{diff} ({N_TOO_SMALL}, n={result.n_pairs})"
    return (
        f"{diff} [{signed(result.ci_low, reference, decimals)}, "
        f"{signed(result.ci_high, reference, decimals)}] {format_p(result)} "
        f"({verdict}, n={result.n_pairs})"
    )


def compare_title(report: Report) -> str:
    return (
        f"Paired comparison against {report.baseline or ''}: method − baseline per clip "
        f"(a clip's seeds averaged first), its {report.level:.0%} CI by paired bootstrap, "
        "p from a two-sided exact sign-flip test (p<=x: the smallest p this n allows); no CI "
        f"and no p with fewer than {report.min_clips} shared clips"
    )


def md_compare(report: Report) -> list[str]:
    if not report.comparisons:
        return []
    header = ["method", "dataset"] + [
        f"Δ {md_escape(c.metric_id)} {c.arrow}" for c in report.columns
    ]
    body = []
    for comp in report.comparisons:
        cells = [md_escape(comp.row.label), md_escape(comp.row.dataset)]
        for column in report.columns:
            ref = comp.baseline.cells[column.metric_id].value or 1.0
            cells.append(
                _comparison_text(
                    comp.results[column.metric_id],
                    comp.reasons.get(column.metric_id),
                    ref,
                    report.decimals.get(column.metric_id),
                )
            )
        body.append(cells)
    return [f"### {md_escape(compare_title(report))}", "", *_md_table(header, body)]


def _estimate_text(est: Estimate | None, decimals: int | None = None) -> str:
    return interval_text(est, decimals) or "—"


def md_breakdowns(report: Report, by: str) -> list[str]:
    lines: list[str] = []
    for b in (b for b in report.breakdowns if b.by == by):
        header = ["method", "dataset"] + [md_escape(str(g)) for g in b.groups]
        body = []
        for row, estimates in b.rows:
            cells = [md_escape(row.label), md_escape(row.dataset)]
            for group in b.groups:
                est = estimates.get(group)
                text = _estimate_text(est, report.decimals.get(b.column.metric_id))
                if est is not None and row.label in b.best.get((row.dataset, group), set()):
                    text = f"**{text}**"
                if est is not None:
                    text += f" (n={est.n_clips})"
                cells.append(text)
            body.append(cells)
        title = f"### {md_escape(b.column.metric_id)} {b.column.arrow} by {by}"
        lines += [title, "", *_md_table(header, body), ""]
    if lines:
        lines += [
            f"By {by}: value [low, high] ({report.level:.0%} CI over the group's clips); "
            f"n: clips in the group; no CI with fewer than {report.min_clips} ({N_TOO_SMALL}).",
            "",
        ]
    return lines


def to_markdown(report: Report, views: Sequence[str] | None = None) -> str:
    views = list(views or report.views())
    parts: list[str] = []
    for view in views:
        if view == "main":
            parts += md_main(report) + [""]
        elif view == "compare":
            parts += md_compare(report) + [""]
        else:
            parts += md_breakdowns(report, view)
    return "\n".join(parts).rstrip() + "\n"


# ---- CSV -----------------------------------------------------------------------------------


def csv_safe(text: Any) -> Any:
    """Stop a spreadsheet from running a record's string as a formula (CSV injection)."""
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def main_frame(report: Report) -> pd.DataFrame:
    """One row per record; per metric its value, CI, seed sd, n, status and reason."""
    rows = []
    for row in report.rows:
        record = row.record
        out: dict[str, Any] = {
            "method": csv_safe(row.label),
            "method_id": csv_safe(record.method.id),
            "options": csv_safe(json.dumps(record.method.options, sort_keys=True)),
            "dataset": csv_safe(row.dataset),
            "record_id": csv_safe(record.record_id),
            "seeds": " ".join(str(s) for s in record.seeds),
            "clips_left_out": len(record.skipped_clips),  # by --skip-bad-clips
        }
        for column in report.columns:
            cell = row.cells[column.metric_id]
            m = column.metric_id
            out[m] = cell.value
            out[f"{m}_ci_low"] = cell.estimate.ci_low
            out[f"{m}_ci_high"] = cell.estimate.ci_high
            out[f"{m}_seed_std"] = cell.estimate.seed_std
            out[f"{m}_n"] = cell.n  # independent clips
            out[f"{m}_n_seeds"] = cell.estimate.n_seeds
            out[f"{m}_n_skipped"] = cell.n_skipped
            out[f"{m}_status"] = cell.status
            out[f"{m}_reason"] = csv_safe(cell.reason)
            out[f"{m}_higher_is_better"] = column.higher_is_better
        out["seconds_per_frame"] = row.cost.seconds_per_frame
        out["peak_memory_bytes"] = row.cost.peak_memory_bytes
        out["device"] = csv_safe(row.cost.device)
        rows.append(out)
    return pd.DataFrame(rows)


def compare_frame(report: Report) -> pd.DataFrame:
    rows = []
    for comp in report.comparisons:
        for column in report.columns:
            result = comp.results[column.metric_id]
            rows.append(
                {
                    "method": csv_safe(comp.row.label),
                    "dataset": csv_safe(comp.row.dataset),
                    "baseline": csv_safe(comp.baseline.label),
                    "metric": csv_safe(column.metric_id),
                    "higher_is_better": column.higher_is_better,
                    **(
                        result.as_dict()
                        if result
                        else {"reason": comp.reasons.get(column.metric_id)}
                    ),
                }
            )
    return pd.DataFrame(rows)


def breakdown_frame(report: Report, by: str) -> pd.DataFrame:
    rows = []
    for b in (b for b in report.breakdowns if b.by == by):
        for row, estimates in b.rows:
            for group, est in estimates.items():
                rows.append(
                    {
                        "method": csv_safe(row.label),
                        "dataset": csv_safe(row.dataset),
                        "metric": csv_safe(b.column.metric_id),
                        "higher_is_better": b.column.higher_is_better,
                        by: csv_safe(group),
                        **est.as_dict(),
                    }
                )
    return pd.DataFrame(rows)


def to_csv(report: Report, view: str = "main") -> str:
    """One table per CSV file: ``view`` picks which."""
    if view == "main":
        frame = main_frame(report)
    elif view == "compare":
        frame = compare_frame(report)
    else:
        frame = breakdown_frame(report, view)
    buffer = io.StringIO()
    frame.rename(columns=csv_safe).to_csv(buffer, index=False)  # headers are record text too
    return buffer.getvalue()


# ---- LaTeX ---------------------------------------------------------------------------------

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def latex_escape(text: Any) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in " ".join(str(text).split()))


def _latex_arrow(column: Column) -> str:
    return r"$\uparrow$" if column.higher_is_better else r"$\downarrow$"


def _letter(number: int) -> str:
    """Note 1 -> a, 26 -> z, 27 -> aa: footnote marks that stay short."""
    out = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        out = chr(ord("a") + rest) + out
    return out


def _sup(number: int | None) -> str:
    return f"\\textsuperscript{{{_letter(number)}}}" if number else ""


def _value_columns(report: Report, layout: str) -> int:
    """Columns of numbers a layout has: metrics (and cost) for wide, methods for tall."""
    if layout == "wide":
        return len(report.columns) + int(report.has_time) + int(report.has_memory)
    return max((sum(r.dataset == d for r in report.rows) for d in report.datasets), default=0)


def latex_layout(report: Report, layout: str = "auto") -> str:
    """'wide' (methods as rows) or 'tall' (metrics as rows). auto: the one with fewer columns
    of numbers, wide on a tie; many metrics and few methods so come out tall."""
    if layout not in LAYOUTS:
        raise BenchError(f"unknown LaTeX layout {layout!r}", fix=f"use one of {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    tall, wide = _value_columns(report, "tall"), _value_columns(report, "wide")
    return "tall" if tall < wide else "wide"


def _latex_value(cell: Cell, mark: int | None, row_n: int) -> tuple[str, str]:
    """(value line, CI line) of one cell: the CI sits on its own scriptsize line below, which
    halves a column's width against 'value [low, high]' on one line."""
    if cell.value is None:
        return f"--{_sup(mark)}", ""
    text = cell.number_text()
    text = f"\\textbf{{{text}}}" if cell.best else text
    if cell.n != row_n:  # the row's n is given once; a metric that scored fewer clips says so
        text += f"\\,{{\\scriptsize($n$={cell.n})}}"
    ci = cell.ci_text()
    return text, f"{{\\scriptsize {ci}}}" if ci else ""


def _latex_notes(report: Report, notes: NoteBook) -> list[str]:
    """The reading notes and reference rows as comments (a paper writes its own caption), the
    lettered notes as a footnote-sized paragraph."""
    lines = ["% " + latex_escape(reading_notes(report, "a, b, ...: notes below"))]
    lines += ["% " + latex_escape(text) for text in reference_notes(report)]
    warning = report.small_n_warning()
    if warning:
        lines.append("% " + latex_escape(warning))
    if notes.numbers:
        lines.append(
            "\\par{\\footnotesize "
            + "; ".join(
                f"\\textsuperscript{{{_letter(n)}}}{latex_escape(text)}"
                for text, n in notes.numbers.items()
            )
            + "}"
        )
    return lines


def _tabular(spec: str, header: list[str], body: list[str]) -> list[str]:
    return [
        "{\\footnotesize\\setlength{\\tabcolsep}{3pt}",
        "\\begin{tabular}{" + spec + "}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
        *body,
        "\\bottomrule",
        "\\end{tabular}}",
    ]


def _row_n(row: Row, columns: Sequence[Column]) -> int:
    return max((row.cells[c.metric_id].n for c in columns), default=0)


def _uniform_n(rows: Sequence[Row], columns: Sequence[Column]) -> int | None:
    """The one n every valued cell has, or None when they differ."""
    found = {
        cell.n
        for row in rows
        for c in columns
        if (cell := row.cells[c.metric_id]).value is not None
    }
    return found.pop() if len(found) == 1 else None


def latex_wide(report: Report, notes: NoteBook) -> list[str]:
    """Methods as rows, metrics as columns; a dataset is a spanning row when there are more.
    An n column only where rows differ in n (else a comment gives it once)."""
    header_marks, cell_marks = empty_marks(report.rows, report.columns, notes)
    same_n = _uniform_n(report.rows, report.columns)
    header = ["Method"] + ([] if same_n is not None else ["$n$"])
    header += [
        f"{latex_escape(c.metric_id)} {_latex_arrow(c)}{_sup(header_marks.get(c.metric_id))}"
        for c in report.columns
    ]
    if report.has_time:
        header.append(r"s/frame $\downarrow$")
    if report.has_memory:
        header.append(r"Mem. $\downarrow$")
    width = len(header)
    several = len(report.datasets) > 1
    body: list[str] = []
    dataset = None
    for index, row in enumerate(report.rows):
        if several and row.dataset != dataset:
            dataset = row.dataset
            body.append(f"\\multicolumn{{{width}}}{{l}}{{\\emph{{{latex_escape(dataset)}}}}} \\\\")
        n = _row_n(row, report.columns)
        values, cis = [latex_escape(row.label)], [""]
        if same_n is None:
            values.append(str(n))
            cis.append("")
        for column in report.columns:
            cell = row.cells[column.metric_id]
            text, ci = _latex_value(cell, cell_marks.get((index, column.metric_id)), n)
            values.append(text)
            cis.append(ci)
        if report.has_time:
            spf = row.cost.seconds_per_frame
            values.append(format_seconds(spf) if spf is not None else "--")
            cis.append("")
        if report.has_memory:
            mem = row.cost.peak_memory_bytes
            values.append(latex_escape(format_bytes(mem)) if mem is not None else "--")
            cis.append("")
        body.append(" & ".join(values) + " \\\\")
        if any(cis):
            body.append(" & ".join(cis) + " \\\\")
    lines = [] if several else [f"% dataset: {latex_escape(report.datasets[0])}"]
    if same_n is not None:
        lines.append(f"% n = {same_n} clips in every cell")
    labels = "l" + ("" if same_n is not None else "r")
    return lines + _tabular(labels + "r" * (width - len(labels)), header, body)


def latex_tall(report: Report, notes: NoteBook) -> list[str]:
    """Metrics as rows, one column per method: many metrics fit a paper column this way. One
    tabular per dataset."""
    lines: list[str] = []
    for dataset in report.datasets:
        rows = [r for r in report.rows if r.dataset == dataset]
        header_marks, cell_marks = empty_marks(rows, report.columns, notes)
        header = ["Metric"] + [latex_escape(r.label) for r in rows]
        body: list[str] = []
        for column in report.columns:
            name = latex_escape(column.metric_id)
            values = [f"{name} {_latex_arrow(column)}{_sup(header_marks.get(column.metric_id))}"]
            cis = [""]
            for index, row in enumerate(rows):
                cell = row.cells[column.metric_id]
                mark = cell_marks.get((index, column.metric_id))
                text, ci = _latex_value(cell, mark, _row_n(row, report.columns))
                values.append(text)
                cis.append(ci)
            body.append(" & ".join(values) + " \\\\")
            if any(cis):
                body.append(" & ".join(cis) + " \\\\")
        body.append("\\midrule")
        body.append(" & ".join(["$n$ (clips)"] + [str(_row_n(r, report.columns)) for r in rows]))
        body[-1] += " \\\\"
        if report.has_time:
            spf = [r.cost.seconds_per_frame for r in rows]
            cells = [format_seconds(v) if v is not None else "--" for v in spf]
            body.append(" & ".join([r"s/frame $\downarrow$", *cells]) + " \\\\")
        if report.has_memory:
            mem = [r.cost.peak_memory_bytes for r in rows]
            cells = [latex_escape(format_bytes(v)) if v is not None else "--" for v in mem]
            body.append(" & ".join([r"Mem. $\downarrow$", *cells]) + " \\\\")
        lines += [f"% dataset: {latex_escape(dataset)}"]
        lines += _tabular("l" + "r" * len(rows), header, body) + [""]
    return lines[:-1]


def latex_main(report: Report, layout: str = "auto") -> list[str]:
    """The main table for a paper: booktabs rules, footnotesize, the CI on a line below each
    value, no resizebox (scaled text is the wrong size for a paper); ``layout`` picks methods
    or metrics as rows."""
    notes = NoteBook()
    chosen = latex_layout(report, layout)
    if not report.rows:
        return ["% no records"]
    table = latex_wide(report, notes) if chosen == "wide" else latex_tall(report, notes)
    head = ["% requires \\usepackage{booktabs}"]
    columns = _value_columns(report, chosen)
    if columns > COLUMN_FITS:
        head.append(
            f"% {columns} columns of numbers: wider than one paper column (about {COLUMN_FITS} "
            "fit); use table* across both columns, or fewer --metrics"
        )
    return [*head, *table, "", *_latex_notes(report, notes)]


def latex_compare(report: Report) -> list[str]:
    if not report.comparisons:
        return []
    spec = "ll" + "r" * len(report.columns)
    header = ["Method", "Dataset"] + [
        f"$\\Delta$ {latex_escape(c.metric_id)} {_latex_arrow(c)}" for c in report.columns
    ]
    body = []
    for comp in report.comparisons:
        cells = [latex_escape(comp.row.label), latex_escape(comp.row.dataset)]
        for column in report.columns:
            result = comp.results[column.metric_id]
            if result is None:
                cells.append("--")
                continue
            ref = comp.baseline.cells[column.metric_id].value or 1.0
            places = report.decimals.get(column.metric_id)
            diff = signed(result.diff, ref, places).replace("−", "-")
            p_text = latex_escape(format_p(result)).replace("p\\textless{}=", "$p\\leq{}$")
            cells.append(f"{diff} ({p_text})")
        body.append(cells)
    return [
        "% " + latex_escape(compare_title(report).replace("−", "-")),
        "\\begin{tabular}{" + spec + "}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
        *(" & ".join(cells) + " \\\\" for cells in body),
        "\\bottomrule",
        "\\end{tabular}",
    ]


def latex_breakdowns(report: Report, by: str) -> list[str]:
    lines: list[str] = []
    for b in (b for b in report.breakdowns if b.by == by):
        header = ["Method", "Dataset"] + [latex_escape(g) for g in b.groups]
        body = []
        for row, estimates in b.rows:
            cells = [latex_escape(row.label), latex_escape(row.dataset)]
            for group in b.groups:
                est = estimates.get(group)
                text = _estimate_text(est, report.decimals.get(b.column.metric_id))
                text = text.replace("—", "--")
                if est is not None and row.label in b.best.get((row.dataset, group), set()):
                    text = f"\\textbf{{{text}}}"
                cells.append(text)
            body.append(cells)
        lines += [
            f"% {latex_escape(b.column.metric_id)} by {by}",
            "\\begin{tabular}{ll" + "r" * len(b.groups) + "}",
            "\\toprule",
            " & ".join(header) + " \\\\",
            "\\midrule",
            *(" & ".join(cells) + " \\\\" for cells in body),
            "\\bottomrule",
            "\\end{tabular}",
            "",
        ]
    return lines


def to_latex(
    report: Report, views: Sequence[str] | None = None, layout: str = "auto"
) -> str:
    parts: list[str] = []
    for view in views or report.views():
        if view == "main":
            parts += latex_main(report, layout)
        elif view == "compare":
            parts += latex_compare(report)
        else:
            parts += latex_breakdowns(report, view)
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


# ---- JSON ----------------------------------------------------------------------------------


def to_json(report: Report, views: Sequence[str] | None = None) -> dict[str, Any]:
    """The machine-readable table: every number a rendered table shows, and more."""
    views = list(views or report.views())
    out: dict[str, Any] = {
        "format": "auhead-bench/table/v1",
        "settings": {
            "ci": "percentile bootstrap over clips",
            "n_boot": report.n_boot,
            "level": report.level,
            "seed": report.seed,
            "n": "independent clips (a clip's seeds are averaged, never counted as samples)",
            "min_clips": report.min_clips,
            "p_value": "two-sided sign-flip permutation test over clips; p_floor: its smallest",
        },
        "columns": [
            {"metric": c.metric_id, "higher_is_better": c.higher_is_better} for c in report.columns
        ],
    }
    if "main" in views:
        out["rows"] = [
            {
                "label": row.label,
                "experiment": row.record.experiment,
                "record_id": row.record.record_id,
                "method": row.record.method.id,
                "options": row.record.method.options,
                "dataset": row.dataset,
                "seeds": row.record.seeds,
                "reference": is_reference(row.record),
                "skipped_clips": row.record.skipped_clips,
                # relative to the current folder: no absolute path of this machine published
                "source": PathScrubber(Path.cwd()).path(str(row.loaded.path.absolute()))
                if row.loaded.path else None,
                "cost": row.cost.as_dict(),
                "metrics": {m: cell.as_dict() for m, cell in row.cells.items()},
            }
            for row in report.rows
        ]
    if "compare" in views:
        out["baseline"] = report.baseline
        out["comparisons"] = [
            {
                "label": comp.row.label,
                "dataset": comp.row.dataset,
                "baseline": comp.baseline.label,
                "metrics": {
                    m: (r.as_dict() if r else {"reason": comp.reasons.get(m)})
                    for m, r in comp.results.items()
                },
            }
            for comp in report.comparisons
        ]
    breakdowns = [b for b in report.breakdowns if b.by in views]
    if breakdowns:
        out["breakdowns"] = [
            {
                "by": b.by,
                "metric": b.column.metric_id,
                "groups": b.groups,
                "rows": [
                    {
                        "label": row.label,
                        "dataset": row.dataset,
                        "values": {str(g): e.as_dict() for g, e in estimates.items()},
                    }
                    for row, estimates in b.rows
                ],
            }
            for b in breakdowns
        ]
    return out


def render(
    report: Report, fmt: str, views: Sequence[str] | None = None, layout: str = "auto"
) -> str:
    """The report in ``fmt``; CSV holds one table, so it takes exactly one view. ``layout``
    is the LaTeX main table's (``latex_layout``)."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown table format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    available = report.views()
    for view in views or ():
        if view not in VIEWS:
            raise BenchError(f"unknown view {view!r}", fix=f"use one of {', '.join(VIEWS)}")
        if view not in available:
            raise BenchError(_missing_view(view), fix=_missing_view_fix(view))
    if fmt == "csv":
        chosen = list(views or ["main"])
        if len(chosen) != 1:
            raise BenchError(
                "a CSV file holds one table", fix=f"pick one --view ({', '.join(available)})"
            )
        return to_csv(report, chosen[0])
    if fmt == "md":
        return to_markdown(report, views)
    if fmt == "latex":
        return to_latex(report, views, layout)
    return json.dumps(to_json(report, views), indent=2, ensure_ascii=False) + "\n"


def _missing_view(view: str) -> str:
    if view == "compare":
        return "the 'compare' view needs a baseline"
    return f"no clip in these records has a {view!r} label"


def _missing_view_fix(view: str) -> str:
    if view == "compare":
        return "pass --baseline EXPERIMENT"
    return f"use a dataset whose clips carry {view} labels, or another --view"
