"""Comparison tables from run records: methods x metrics, direction of each metric shown."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from auhead_bench.records import MetricResult, RunRecord

ARROW = {True: "↑", False: "↓"}


def metric_columns(records: list[RunRecord]) -> list[tuple[str, bool]]:
    """(metric id, higher_is_better) in first-seen order."""
    seen: dict[str, bool] = {}
    for record in records:
        for metric_id, result in record.metrics.items():
            seen.setdefault(metric_id, result.higher_is_better)
    return list(seen.items())


def long_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per (record, metric): the machine-readable form."""
    rows = []
    for record in records:
        for metric_id, result in record.metrics.items():
            rows.append(
                {
                    "record_id": record.record_id,
                    "method": record.experiment,
                    "dataset": record.dataset.id,
                    "metric": metric_id,
                    "higher_is_better": result.higher_is_better,
                    "status": result.status,
                    "value": result.value,
                    "n": result.n,
                    "n_skipped": result.n_skipped,
                    "reason": result.reason,
                }
            )
    return pd.DataFrame(rows)


def format_value(value: float) -> str:
    """Four significant digits where it matters: 0.5258, 18.73, 1234.5."""
    if abs(value) >= 1e5:
        return f"{value:.3e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def _cell(result: MetricResult | None) -> str:
    if result is None:
        return ""
    if result.status == "ok" and result.value is not None:
        text = format_value(result.value)
        extra = f", {result.n_skipped} skipped" if result.n_skipped else ""
        return f"{text} (n={result.n}{extra})"
    reason = (result.reason or result.status).split(" -- ")[0]
    return f"— ({result.status.replace('_', ' ')}: {reason[:60]})"


def markdown(records: list[RunRecord]) -> str:
    columns = metric_columns(records)
    header = ["method", "dataset"] + [f"{m} {ARROW[h]}" for m, h in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = _best(records, columns)
    for record in records:
        cells = [record.experiment, record.dataset.id]
        for metric_id, _ in columns:
            text = _cell(record.metrics.get(metric_id))
            if best.get((record.dataset.id, metric_id)) == record.record_id:
                text = f"**{text}**"
            cells.append(text.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _best(records: list[RunRecord], columns: list[tuple[str, bool]]) -> dict:
    """(dataset, metric) -> record id of the best value, when more than one record competes."""
    best: dict[tuple[str, str], tuple[float, str]] = {}
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        for metric_id, higher in columns:
            result = record.metrics.get(metric_id)
            if result is None or result.value is None or not math.isfinite(result.value):
                continue
            key = (record.dataset.id, metric_id)
            counts[key] = counts.get(key, 0) + 1
            score = result.value if higher else -result.value
            if key not in best or score > best[key][0]:
                best[key] = (score, record.record_id)
    return {key: rid for key, (_, rid) in best.items() if counts[key] > 1}


def wide_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per record; for each metric its value and n."""
    rows = []
    for record in records:
        row: dict[str, object] = {"method": record.experiment, "dataset": record.dataset.id}
        for metric_id, _ in metric_columns(records):
            result = record.metrics.get(metric_id)
            row[metric_id] = result.value if result else None
            row[f"{metric_id}_n"] = result.n if result else 0
        rows.append(row)
    return pd.DataFrame(rows)


def write_tables(records: list[RunRecord], out_dir: Path) -> None:
    out_dir = Path(out_dir)
    (out_dir / "table.md").write_text(markdown(records))
    wide_frame(records).to_csv(out_dir / "table.csv", index=False)
