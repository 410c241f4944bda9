"""The board's parts of the site: ranked vs other-protocol records, reported rows with their
deltas, flags, and which cells may be bold.

``leaderboard.build_site`` calls these; they hold no HTML. Every string from a record or a
reported result reaches the page only through the templates' autoescape; the one link built
from a reported result (arXiv) uses its arXiv id, which the schema restricts to digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auhead_bench.reporting.board import Board, Flag, protocol_differences
from auhead_bench.reporting.inputs import LoadedRecord
from auhead_bench.reporting.reported import ReportedResult, same_method
from auhead_bench.reporting.tables import ARROW, Report, Row
from auhead_bench.reporting.tables import mark_best as mark_best_cells


def split_by_protocol(
    accepted: Sequence[LoadedRecord], board: Board | None
) -> tuple[list[LoadedRecord], list[tuple[LoadedRecord, list[str]]]]:
    """Records the board ranks, and the others with every field in which they differ."""
    if board is None:
        return list(accepted), []
    ranked, others = [], []
    for item in accepted:
        differences = protocol_differences(item.record, board)
        if differences:
            others.append((item, differences))
        else:
            ranked.append(item)
    return ranked, others


def mark_best(report: Report, board: Board | None, flags: dict[str, Flag]) -> None:
    """Bold again, leaving out flagged rows, reference rows and (with a board) metrics the
    board does not rank: the best of each (dataset, metric) among at least two contenders."""
    ranked = [c for c in report.columns if board is None or c.metric_id in board.metric_ids]
    for column in report.columns:
        if column not in ranked:
            for row in report.rows:
                row.cells[column.metric_id].best = False
    mark_best_cells(report.rows, ranked, lambda row: row.record.record_id in flags)


def clear_best(report: Report) -> None:
    """An other-protocols table ranks nothing."""
    for row in report.rows:
        for cell in row.cells.values():
            cell.best = False


def columns(
    report: Report, reported: Sequence[ReportedResult], board: Board | None
) -> list[dict[str, Any]]:
    """The table's metric columns: the records' (report order), then metrics only reported
    rows have, in the board's order where it lists them."""
    out = [
        {"id": c.metric_id, "arrow": c.arrow, "higher": c.higher_is_better}
        for c in report.columns
    ]
    have = {c["id"] for c in out}
    extra: dict[str, bool] = {}
    for result in reported:
        for metric_id, metric in result.metrics.items():
            if metric_id not in have:
                extra.setdefault(metric_id, metric.higher_is_better)
    order = board.metric_ids if board is not None else []
    for metric_id in sorted(extra, key=lambda m: (order.index(m) if m in order else len(order))):
        higher = extra[metric_id]
        out.append({"id": metric_id, "arrow": ARROW[higher], "higher": higher})
    return out


def filler_cell(href: str) -> dict[str, Any]:
    """A cell for a column the record does not have (it exists for reported rows only)."""
    return {
        "text": "",
        "ci": "",
        "mark": None,
        "skip_mark": None,
        "detail": "not run",
        "tooltip": "not run",
        "sort": "",
        "best": False,
        "empty": True,
        "href": href,
    }


def _number(value: float) -> str:
    return f"{value:.4g}"


def arxiv_href(result: ReportedResult) -> str:
    return f"https://arxiv.org/abs/{result.citation.arxiv}"


def reported_view(
    result: ReportedResult,
    page: str,
    column_ids: Sequence[str],
    reproduced: Sequence[Row],
) -> dict[str, Any]:
    """A reported row: its numbers under the board's columns, each marked, with the delta
    to the first reproduced record of the same method (reported minus reproduced)."""
    matches = [row for row in reproduced if same_method(result, row.record)]
    cells = []
    for metric_id in column_ids:
        metric = result.metrics.get(metric_id)
        if metric is None:
            cells.append({"empty": True, "text": "", "detail": "not reported", "delta": "",
                          "tooltip": "the paper reports no number for this column",
                          "sort": "", "paper_name": "", "protocol": ""})
            continue
        delta, tooltip = "", (
            f"{metric.paper_name} = {metric.value:g} as reported in "
            f"{result.citation.paper} (arXiv {result.citation.arxiv}, {result.citation.table}); "
            f"protocol {metric.protocol}: {metric.stated}"
        )
        for row in matches:
            cell = row.cells.get(metric_id)
            if cell is None or cell.value is None:
                continue
            diff = metric.value - cell.value
            delta = f"Δ {diff:+.3g} vs reproduced {_number(cell.value)} ({row.label})"
            if metric.protocol != "same":
                delta += ", protocol not verified to match"
            break
        cells.append(
            {
                "empty": False,
                "text": _number(metric.value),
                "detail": f"reported ({metric.paper_name}, {metric.protocol} protocol)",
                "delta": delta,
                "tooltip": tooltip,
                "sort": repr(float(metric.value)),
                "paper_name": metric.paper_name,
                "protocol": metric.protocol,
            }
        )
    return {
        "label": result.label,
        "record_id": result.record_id,
        "method": result.method,
        "options": result.method_options,
        "citation": result.citation,
        "arxiv_href": arxiv_href(result),
        "json_href": f"records/{page}.json",
        "protocol": result.protocol,
        "split": result.split,
        "note": result.note or "",
        "cells": cells,
        "has_match": bool(matches),
    }


def flag_view(record_id: str, flags: dict[str, Flag]) -> dict[str, str] | None:
    flag = flags.get(record_id)
    if flag is None:
        return None
    link = flag.link or ""
    # Only http(s) links pass the schema; anything else never becomes an href.
    return {"reason": flag.reason, "link": link if link.startswith(("https://", "http://")) else ""}


def submission_view(row: Row) -> dict[str, str] | None:
    sub = row.record.submission
    if sub is None or not (sub.generated_by or sub.evaluated_by):
        return None
    return {"generated_by": sub.generated_by or "", "evaluated_by": sub.evaluated_by or ""}
