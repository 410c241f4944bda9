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
from collections.abc import Iterable, Sequence
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
    N_BOOT,
    SEED,
    Comparison,
    Estimate,
    estimate,
    group_estimates,
    label_sort_key,
    paired_bootstrap,
)

ARROW = {True: "↑", False: "↓"}
FORMATS = ("md", "csv", "latex", "json")
BREAKDOWNS = ("emotion", "intensity")
VIEWS = ("main", "compare", *BREAKDOWNS)
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
    n: int = 0
    n_skipped: int = 0
    reason: str | None = None  # full reason from the record
    best: bool = False

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
        return interval_text(self.estimate)

    def status_text(self) -> str:
        return {"missing": "not run"}.get(self.status, self.status.replace("_", " "))

    def note_text(self) -> str | None:
        """The whole reason, for a numbered note under a table: why the cell is empty, or
        why clips were skipped."""
        if self.value is None:
            return f"{self.status_text()}: {self.reason}" if self.reason else None
        if self.n_skipped:
            return f"clips skipped: {self.reason or 'no reason given'}"
        return None

    def detail_text(self) -> str:
        """'n=10, seed sd 0.10, 3/50 skipped: no face found' or the reason the cell is empty."""
        if self.value is None:
            what = self.status_text()
            return f"{what}: {self.short_reason}" if self.short_reason else what
        parts = [f"n={self.n}"]
        if self.estimate.seed_std is not None:
            parts.append(f"seed sd {format_like(self.estimate.seed_std, self.value)}")
        if self.n_skipped:
            parts.append(f"{self.n_skipped} skipped: {self.short_reason or 'no reason given'}")
        return ", ".join(parts)

    def tooltip(self) -> str:
        """Plain-text interval description for a leaderboard tooltip."""
        est = self.estimate
        if self.value is None:
            return self.detail_text() if not self.reason else f"{self.status}: {self.reason}"
        lines = [f"value {self.value:.6g} (n={self.n})"]
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


def format_value(value: float) -> str:
    """Four significant digits where it matters: 0.5258, 18.73, 1234.5."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e5:
        return f"{value:.3e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def format_like(value: float, reference: float) -> str:
    """``value`` with as many decimals as ``reference`` shows, so ± columns line up."""
    if not math.isfinite(reference) or abs(reference) >= 1e5:
        return f"{value:.2g}"
    return f"{value:.4f}" if abs(reference) < 10 else f"{value:.2f}"


def interval_text(est: Estimate | None) -> str:
    """'22.10 [20.30, 25.00]': the value and its CI bounds, so an asymmetric interval reads as
    one; no interval where there is none (one clip, a distribution metric)."""
    if est is None or est.value is None:
        return ""
    text = format_value(est.value)
    if est.ci_low is not None and est.ci_high is not None:
        text += f" [{format_like(est.ci_low, est.value)}, {format_like(est.ci_high, est.value)}]"
    return text


def format_seconds(value: float) -> str:
    """Three significant digits: per-frame times span microseconds to minutes."""
    return f"{value:.3g}"


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def format_p(p: float) -> str:
    return f"p={p:.2g}" if p >= 0.001 else "p<0.001"


def signed(value: float, reference: float) -> str:
    text = format_like(abs(value), reference if reference else value)
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


def make_cell(result: MetricResult | None, metric_id: str, **boot: Any) -> Cell:
    if result is None:
        return Cell(metric_id, "missing", Estimate(value=None), reason=None)
    return Cell(
        metric_id,
        result.status,
        estimate(result, **boot),
        n=result.n,
        n_skipped=result.n_skipped,
        reason=result.reason,
    )


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


def _mark_best(rows: list[Row], columns: list[Column]) -> None:
    """Bold the best value per (dataset, metric) when at least two real methods compete; ties
    too. Reference rows (``is_reference``: ground_truth, static_frame) are never bold."""
    for column in columns:
        by_dataset: dict[str, list[Cell]] = {}
        for row in rows:
            if is_reference(row.record):
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
            result = paired_bootstrap(ours, theirs, **boot)
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
) -> Report:
    """All numbers of every table: cells with CIs, best marks, cost, comparisons, breakdowns."""
    if not 0 < level < 1:
        raise BenchError(f"confidence level {level} is not between 0 and 1", fix="e.g. 0.95")
    if n_boot < 100:
        raise BenchError(f"{n_boot} bootstrap resamples are too few", fix="use at least 100")
    for name in by:
        if name not in BREAKDOWNS:
            raise BenchError(f"cannot break down by {name!r}", fix=f"use {', '.join(BREAKDOWNS)}")
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    columns = columns_of(item.record for item in loaded)
    ordered = sorted(loaded, key=lambda item: item.record.dataset.id)  # stable: keeps run order
    rows = [
        Row(
            loaded=item,
            cells={
                c.metric_id: make_cell(item.record.metrics.get(c.metric_id), c.metric_id, **boot)
                for c in columns
            },
            cost=cost_of(item.record),
        )
        for item in ordered
    ]
    _mark_best(rows, columns)
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


def _notes(report: Report) -> str:
    refs = sorted({r.record.method.id for r in report.rows if is_reference(r.record)})
    ref = f" (reference rows {', '.join(refs)} never are)" if refs else ""
    return (
        f"[low, high]: the {report.level:.0%} CI, percentile bootstrap over clips "
        f"({report.n_boot} resamples, seed {report.seed}), not always symmetric; none with "
        "one clip; seed sd: standard deviation of the per-seed values; n: clips × seeds "
        f"scored; bold: best method per column and dataset{ref}; [k]: note k below."
    )


def _note_mark(notes: dict[str, int], text: str) -> int:
    """The number of the note holding ``text`` (the same reason shares one note)."""
    return notes.setdefault(text, len(notes) + 1)


def _skipped_clips_text(record: RunRecord) -> str:
    return "; ".join(f"{clip}: {why}" for clip, why in record.skipped_clips.items())


def md_main(report: Report) -> list[str]:
    header = ["method", "dataset"] + [f"{md_escape(c.metric_id)} {c.arrow}" for c in report.columns]
    if report.has_time:
        header.append("s/frame ↓")
    if report.has_memory:
        header.append("peak mem ↓")
    body = []
    notes: dict[str, int] = {}  # whole reason -> note number
    for row in report.rows:
        cells = [md_escape(row.label), md_escape(row.dataset)]
        for column in report.columns:
            cell = row.cells[column.metric_id]
            note = cell.note_text()
            mark = f" [{_note_mark(notes, note)}]" if note else ""
            if cell.value is None:
                cells.append(f"— ({cell.status_text()}){mark}")
                continue
            value = cell.value_text()
            value = f"**{value}**" if cell.best else value
            parts = [f"n={cell.n}"]
            if cell.estimate.seed_std is not None:
                parts.append(f"seed sd {format_like(cell.estimate.seed_std, cell.value)}")
            if cell.n_skipped:
                parts.append(f"{cell.n_skipped} skipped{mark}")
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
            mark = _note_mark(notes, _skipped_clips_text(row.record))
            left_out.append(
                f"{md_escape(row.label)} ({md_escape(row.dataset)}): "
                f"{len(row.record.skipped_clips)} [{mark}]"
            )
    lines = _md_table(header, body) + ["", _notes(report)]
    if left_out:
        lines += ["", "Clips left out by --skip-bad-clips: " + "; ".join(left_out) + "."]
    if notes:
        lines += [""] + [f"[{n}] {md_escape(text)}  " for text, n in notes.items()]
        lines[-1] = lines[-1].rstrip()
    return lines


def _comparison_text(result: Comparison | None, reason: str | None, reference: float) -> str:
    if result is None:
        return f"— ({reason or 'n/a'})"
    verdict = {True: "better", False: "worse", None: "same"}[result.better]
    return (
        f"{signed(result.diff, reference)} [{signed(result.ci_low, reference)}, "
        f"{signed(result.ci_high, reference)}] {format_p(result.p_value)} "
        f"({verdict}, n={result.n_pairs})"
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
                    comp.results[column.metric_id], comp.reasons.get(column.metric_id), ref
                )
            )
        body.append(cells)
    title = (
        f"### Paired bootstrap against {md_escape(report.baseline or '')} "
        f"(method − baseline, {report.level:.0%} CI, two-sided p)"
    )
    return [title, "", *_md_table(header, body)]


def _estimate_text(est: Estimate | None) -> str:
    return interval_text(est) or "—"


def md_breakdowns(report: Report, by: str) -> list[str]:
    lines: list[str] = []
    for b in (b for b in report.breakdowns if b.by == by):
        header = ["method", "dataset"] + [md_escape(str(g)) for g in b.groups]
        body = []
        for row, estimates in b.rows:
            cells = [md_escape(row.label), md_escape(row.dataset)]
            for group in b.groups:
                est = estimates.get(group)
                text = _estimate_text(est)
                if est is not None and row.label in b.best.get((row.dataset, group), set()):
                    text = f"**{text}**"
                if est is not None:
                    text += f" (n={est.n_clips})"
                cells.append(text)
            body.append(cells)
        title = f"### {md_escape(b.column.metric_id)} {b.column.arrow} by {by}"
        lines += [title, "", *_md_table(header, body), ""]
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
            out[f"{m}_n"] = cell.n
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


def latex_main(report: Report) -> list[str]:
    extra = int(report.has_time) + int(report.has_memory)
    spec = "ll" + "r" * (len(report.columns) + extra)
    header = ["Method", "Dataset"] + [
        f"{latex_escape(c.metric_id)} {_latex_arrow(c)}" for c in report.columns
    ]
    if report.has_time:
        header.append(r"s/frame $\downarrow$")
    if report.has_memory:
        header.append(r"Peak mem. $\downarrow$")
    notes: dict[str, str] = {}  # reason -> footnote mark
    body = []
    for row in report.rows:
        cells = [latex_escape(row.label), latex_escape(row.dataset)]
        for column in report.columns:
            cell = row.cells[column.metric_id]
            if cell.value is None:
                reason = cell.note_text() or cell.status_text()
                mark = notes.setdefault(reason, chr(ord("a") + len(notes) % 26))
                cells.append(f"--\\textsuperscript{{{mark}}}")
                continue
            text = cell.value_text()
            text = f"\\textbf{{{text}}}" if cell.best else text
            cells.append(f"{text}\\,{{\\scriptsize (n={cell.n})}}")
        if report.has_time:
            spf = row.cost.seconds_per_frame
            cells.append(format_seconds(spf) if spf is not None else "--")
        if report.has_memory:
            mem = row.cost.peak_memory_bytes
            cells.append(latex_escape(format_bytes(mem)) if mem is not None else "--")
        body.append(cells)
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{tabular}{" + spec + "}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
        *(" & ".join(cells) + " \\\\" for cells in body),
        "\\bottomrule",
        "\\end{tabular}",
        "",
        "% " + _notes(report),
    ]
    lines += [f"% {mark}: {latex_escape(reason)}" for reason, mark in notes.items()]
    if notes:
        lines.append(
            "\\par\\footnotesize "
            + "; ".join(
                f"\\textsuperscript{{{mark}}}{latex_escape(reason)}"
                for reason, mark in notes.items()
            )
        )
    return lines


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
            diff = signed(result.diff, ref).replace("−", "-")
            cells.append(f"{diff} ({latex_escape(format_p(result.p_value))})")
        body.append(cells)
    return [
        f"% paired bootstrap against {latex_escape(report.baseline or '')}: method - baseline",
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
                text = _estimate_text(est).replace("—", "--")
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


def to_latex(report: Report, views: Sequence[str] | None = None) -> str:
    parts: list[str] = []
    for view in views or report.views():
        if view == "main":
            parts += latex_main(report)
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


def render(report: Report, fmt: str, views: Sequence[str] | None = None) -> str:
    """The report in ``fmt``; CSV holds one table, so it takes exactly one view."""
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
        return to_latex(report, views)
    return json.dumps(to_json(report, views), indent=2, ensure_ascii=False) + "\n"


def _missing_view(view: str) -> str:
    if view == "compare":
        return "the 'compare' view needs a baseline"
    return f"no clip in these records has a {view!r} label"


def _missing_view_fix(view: str) -> str:
    if view == "compare":
        return "pass --baseline EXPERIMENT"
    return f"use a dataset whose clips carry {view} labels, or another --view"
