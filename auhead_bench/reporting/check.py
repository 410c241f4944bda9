"""``leaderboard check``: what CI runs on a pull request that adds results.

Each submitted file goes through what ``build`` does (size limits, schema, recomputation of
every number from its per-clip values, duplicate ids against the board) and then the
protocol check against ``board.yaml``. The outcome per file is one of: joins the ranked
board, goes to "other protocols" (every differing field named), or rejected (one line with
the reason). The Markdown it writes is the pull-request comment: the rows each record would
join, its rank per metric and the deltas to the closest entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from auhead_bench.errors import BenchError, one_line
from auhead_bench.records import RunRecord
from auhead_bench.reporting.board import Board, protocol_differences
from auhead_bench.reporting.inputs import NOT_RECORDS, is_reference
from auhead_bench.reporting.leaderboard import (
    ReportedEntry,
    collect,
    merge_records,
    record_problems,
)
from auhead_bench.reporting.limits import load_entry
from auhead_bench.reporting.reported import ReportedResult, same_method
from auhead_bench.reporting.tables import ARROW, md_escape


@dataclass
class Checked:
    """One submitted file and what the board makes of it."""

    path: Path
    record: RunRecord | ReportedResult | None = None
    rejected: str | None = None
    differences: list[str] = field(default_factory=list)
    merges_into: str | None = None  # the board row it adds metrics to

    @property
    def ranked(self) -> bool:
        return isinstance(self.record, RunRecord) and not self.rejected and not self.differences


@dataclass
class CheckResult:
    checked: list[Checked]
    board_records: list[RunRecord]  # the ranked board without the submitted files
    board_reported: list[ReportedResult]
    board_rejected: int
    flagged: frozenset[str] = frozenset()  # record ids in flags.yaml: not ranked against

    @property
    def rejected(self) -> list[Checked]:
        return [c for c in self.checked if c.rejected]

    @property
    def other(self) -> list[Checked]:
        return [c for c in self.checked if not c.rejected and c.differences]


def _files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*.json") if p.name not in NOT_RECORDS)
        else:
            out.append(path)
    return out


def _reason(exc: BenchError, path: Path) -> str:
    reason = one_line(exc)
    prefix = f"{path}: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def check_paths(
    paths: Sequence[Path],
    *,
    results: Path | None,
    board: Board | None,
    flagged: frozenset[str] = frozenset(),
) -> CheckResult:
    """Check every file under ``paths`` against ``board`` and the records in ``results``
    (the submitted files themselves left out of the board, as in a pull request that adds
    them under ``results``)."""
    files = _files(paths)
    submitted = {p.resolve() for p in files if p.exists()}
    board_records: list[RunRecord] = []
    board_reported: list[ReportedResult] = []
    board_rejected = 0
    if results is not None:
        reported: list[ReportedEntry] = []
        accepted, rejected = collect(results, None, reported, skip=submitted)
        board_rejected = len(rejected)
        for item in accepted:
            if board is None or not protocol_differences(item.record, board):
                board_records.append(item.record)
        board_reported = [e.result for e in reported]
    by_id = {r.record_id: r for r in board_records}
    reported_ids = {r.record_id for r in board_reported}
    seen: dict[str, Path] = {}
    checked: list[Checked] = []
    for path in files:
        item = Checked(path)
        checked.append(item)
        if path.suffix != ".json":
            item.rejected = "not a results file (*.json)"
            continue
        try:
            entry = load_entry(path)
        except BenchError as exc:
            item.rejected = _reason(exc, path)
            continue
        item.record = entry
        if entry.record_id in seen:
            first = seen[entry.record_id]
            item.rejected = f"duplicate record_id {entry.record_id!r} (also in {first})"
            continue
        seen[entry.record_id] = path
        if isinstance(entry, ReportedResult):
            if entry.record_id in reported_ids or entry.record_id in by_id:
                item.rejected = f"duplicate record_id {entry.record_id!r} (already on the board)"
            elif board is not None:
                if board.dataset(entry.dataset) is None:
                    item.differences.append(
                        f"dataset {entry.dataset!r} is not a dataset the board ranks"
                    )
                item.differences += [
                    f"metrics.{metric_id}: not a metric the board ranks (use the board's "
                    "closest metric id with protocol: paper-stated)"
                    for metric_id in entry.metrics
                    if board.metric(metric_id) is None
                ]
            continue
        problems = record_problems(entry)
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            item.rejected = f"{problems[0]}{more}"
            continue
        if entry.record_id in reported_ids:
            item.rejected = f"duplicate record_id {entry.record_id!r} (a reported result's)"
            continue
        if board is not None:
            item.differences = protocol_differences(entry, board)
        existing = by_id.get(entry.record_id)
        if existing is not None and not item.differences:
            merged = merge_records(existing, entry)
            if isinstance(merged, str):
                item.rejected = (
                    f"duplicate record_id {entry.record_id!r} (already on the board): {merged}"
                )
            else:
                item.merges_into = entry.record_id
    return CheckResult(checked, board_records, board_reported, board_rejected, flagged)


# ---- the pull-request comment --------------------------------------------------------------


def _num(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _value(record: RunRecord, metric_id: str) -> float | None:
    result = record.metrics.get(metric_id)
    if result is None or result.status != "ok" or result.value is None:
        return None
    return result.value


def _label(record: RunRecord) -> str:
    return record.experiment


def _rank_line(
    record: RunRecord, metric_id: str, higher: bool, others: list[RunRecord]
) -> tuple[str, str, str]:
    """(rank, closest above, closest below) of ``record`` among ``others`` on one metric."""
    mine = _value(record, metric_id)
    if mine is None:
        return "—", "", ""
    scored = [(r, v) for r in others if not is_reference(r) and (v := _value(r, metric_id))
              is not None]
    sign = -1.0 if higher else 1.0
    better = [(r, v) for r, v in scored if sign * v < sign * mine]
    worse = [(r, v) for r, v in scored if sign * v > sign * mine]
    rank = f"{len(better) + 1} of {len(scored) + 1}"
    above = min(better, key=lambda rv: abs(rv[1] - mine), default=None)
    below = min(worse, key=lambda rv: abs(rv[1] - mine), default=None)

    def show(pair: tuple[RunRecord, float] | None) -> str:
        if pair is None:
            return ""
        other, value = pair
        return f"{md_escape(_label(other))} {_num(value)} (Δ {mine - value:+.3g})"

    return rank, show(above), show(below)


def markdown(result: CheckResult, board: Board | None) -> str:
    """The comparison a pull request gets as a comment."""
    ranked = [c for c in result.checked if c.ranked]
    reported = [c for c in result.checked if isinstance(c.record, ReportedResult)
                and not c.rejected and not c.differences]
    lines = ["## auhead-bench leaderboard check", ""]
    lines.append(
        f"{len(result.checked)} file(s) checked: {len(ranked)} would join the ranked board, "
        f"{len(reported)} reported result(s), {len(result.other)} under another protocol, "
        f"{len(result.rejected)} rejected."
        + (f" Board: `{md_escape(board.name)}` (leaderboard/board.yaml)." if board else "")
    )
    if ranked:
        lines += ["", "Rank among the board's ranked, unflagged entries of the same dataset; "
                  "closest better/worse: the nearest of them on either side; Δ: this record's "
                  "value minus theirs (reported: minus the paper's number for the same method)."]
    for item in ranked:
        record = item.record
        assert isinstance(record, RunRecord)
        dataset = record.dataset.id
        peers = [r for r in result.board_records if r.dataset.id == dataset
                 and r.record_id != record.record_id and r.record_id not in result.flagged]
        metric_ids = board.metric_ids if board is not None else list(record.metrics)
        metric_ids = [m for m in metric_ids if m in record.metrics]
        lines += ["", f"### `{md_escape(record.record_id)}`: {md_escape(record.method.id)} on "
                  f"{md_escape(dataset)}" + (" (adds metrics to its row)"
                                             if item.merges_into else "")]
        lines += ["", f"File `{md_escape(str(item.path))}`; {len(record.clip_ids)} clips, seeds "
                  f"{', '.join(str(s) for s in record.seeds)}."]
        sub = record.submission
        if sub is not None and (sub.generated_by or sub.evaluated_by):
            lines.append(f"Generated by {md_escape(sub.generated_by or 'not stated')}, "
                         f"evaluated by {md_escape(sub.evaluated_by or 'not stated')}.")
        lines += ["", "| metric | value | rank | closest better | closest worse | reported |",
                  "|---|---|---|---|---|---|"]
        for metric_id in metric_ids:
            res = record.metrics[metric_id]
            rank, above, below = _rank_line(record, metric_id, res.higher_is_better, peers)
            quoted = []
            for rep in result.board_reported:
                metric = rep.metrics.get(metric_id)
                value = _value(record, metric_id)
                if metric is not None and value is not None and same_method(rep, record):
                    quoted.append(f"{_num(metric.value)} in arXiv {rep.citation.arxiv} "
                                  f"(Δ reproduced − reported {value - metric.value:+.3g}, "
                                  f"{metric.protocol} protocol)")
            value_text = _num(_value(record, metric_id)) if res.status == "ok" else (
                f"{res.status.replace('_', ' ')}")
            lines.append(
                f"| {md_escape(metric_id)} {ARROW[res.higher_is_better]} | {value_text} | "
                f"{rank} | {above} | {below} | {md_escape('; '.join(quoted))} |"
            )
        lines += ["", f"<details><summary>The {md_escape(dataset)} rows it would join "
                  f"({len(peers)} on the board)</summary>", ""]
        lines += _rows_table([record, *peers], metric_ids, record.record_id)
        lines += ["", "</details>"]
    for item in reported:
        rep = item.record
        assert isinstance(rep, ReportedResult)
        lines += ["", f"### Reported: {md_escape(rep.label)} on {md_escape(rep.dataset)}", "",
                  f"From {md_escape(rep.citation.paper)} (arXiv {rep.citation.arxiv}, "
                  f"{md_escape(rep.citation.table)}); shown marked \"reported\", never ranked.",
                  "", "| metric | paper's name | value | protocol |", "|---|---|---|---|"]
        for metric_id, metric in rep.metrics.items():
            lines.append(f"| {md_escape(metric_id)} | {md_escape(metric.paper_name)} | "
                         f"{_num(metric.value)} | {metric.protocol}: {md_escape(metric.stated)} |")
    if result.other:
        lines += ["", "### Other protocols (shown in their own table, never ranked)", ""]
        for item in result.other:
            lines.append(f"- `{md_escape(str(item.path))}`:")
            lines += [f"  - {md_escape(d)}" for d in item.differences]
    if result.rejected:
        lines += ["", "### Rejected", ""]
        lines += [f"- `{md_escape(str(c.path))}`: {md_escape(c.rejected or '')}"
                  for c in result.rejected]
    return "\n".join(lines) + "\n"


def _rows_table(records: list[RunRecord], metric_ids: list[str], new_id: str) -> list[str]:
    header = ["method", *[f"{m} {ARROW[records[0].metrics[m].higher_is_better]}"
                          for m in metric_ids]]
    rows = []
    first = metric_ids[0] if metric_ids else None
    if first is not None:
        higher = records[0].metrics[first].higher_is_better
        records = sorted(
            records,
            key=lambda r: (_value(r, first) is None,
                           -(_value(r, first) or 0.0) if higher else (_value(r, first) or 0.0)),
        )
    for record in records:
        name = md_escape(_label(record))
        name = f"**{name} (new)**" if record.record_id == new_id else name
        rows.append([name, *[_num(_value(record, m)) for m in metric_ids]])
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines
