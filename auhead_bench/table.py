"""The tables a run writes beside its records; the work is done in ``auhead_bench.reporting``.

Kept as the runner's and CLI's entry point (``write_tables``, ``markdown``) so they need not
know about the reporting package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from auhead_bench.cache import write_text_atomic
from auhead_bench.records import RunRecord
from auhead_bench.reporting.inputs import from_records
from auhead_bench.reporting.stats import MIN_CLIPS, n_clips
from auhead_bench.reporting.tables import (
    ARROW,
    build_report,
    format_value,
    main_frame,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
)

__all__ = [
    "ARROW", "availability", "format_value", "markdown", "summary", "wide_frame", "write_tables",
]  # fmt: skip


def markdown(records: list[RunRecord]) -> str:
    """The main comparison table (value [CI low, high], n clips, best in bold) for a terminal
    or a README."""
    report = build_report(from_records(records), by=())
    return to_markdown(report, ["main"])


def summary(records: list[RunRecord]) -> str:
    """Metrics as rows, methods as columns: fits a terminal; each reason once, whole, below."""
    columns: dict[str, dict[str, str]] = {}
    notes: dict[str, str] = {}
    several = len({r.dataset.id for r in records}) > 1
    for record in records:
        name = f"{record.experiment} ({record.dataset.id})" if several else record.experiment
        column = columns.setdefault(name, {})
        for metric_id, result in record.metrics.items():
            row = f"{metric_id} {ARROW[result.higher_is_better]}"
            if result.status == "ok" and result.value is not None:
                column[row] = f"{format_value(result.value)} n={n_clips(result)}"
            else:
                column[row] = result.status.replace("_", " ")
                notes.setdefault(row, result.reason or "")  # whole: never cut mid-word
    # Blocks of columns that fit 100 characters, however many methods there are.
    lines = [pd.DataFrame(columns).fillna("").to_string(line_width=100)]
    for row, note in notes.items():
        lines.append(f"  {row.split()[0]}: {note}")
    scored = {
        n_clips(result)
        for record in records
        for result in record.metrics.values()
        if result.status == "ok" and any(v.value is not None for v in result.per_clip)
    }
    small = sorted(n for n in scored if n < MIN_CLIPS)
    if small:
        counts = ", ".join(str(n) for n in small)
        lines.append(
            f"warning: n too small: {counts} clip(s), fewer than {MIN_CLIPS}: the tables show "
            "no CI and no p-value"
        )
    return "\n".join(lines)


PULL = re.compile(r"`auhead-bench weights pull ([^`]+?)`")


def availability(records: list[RunRecord]) -> str:
    """Which metrics gave a number (in any record) and which did not: those that need weights
    with one command that pulls every missing file, then the others with their reason."""
    computed: list[str] = []
    reasons: dict[str, str] = {}
    for record in records:
        for metric_id, result in record.metrics.items():
            if result.status == "ok" and result.value is not None:
                if metric_id not in computed:
                    computed.append(metric_id)
            else:  # not computed, or failed on every clip
                reasons.setdefault(metric_id, result.reason or "")
    missing = {m: r for m, r in reasons.items() if m not in computed}
    weights: dict[str, list[str]] = {}  # metric id -> weight names its command pulls
    for metric_id, reason in missing.items():
        for names in PULL.findall(reason):
            weights.setdefault(metric_id, []).extend(
                n for n in names.split() if not n.startswith("--"))
    lines = [f"computed ({len(computed)}): {', '.join(computed) or 'none'}"]
    if weights:
        names = list(dict.fromkeys(n for ns in weights.values() for n in ns))
        lines.append(f"need weights ({len(weights)}): {', '.join(weights)}")
        lines.append(f"  pull them all: auhead-bench weights pull {' '.join(names)}")
    others = {m: r for m, r in missing.items() if m not in weights}
    if others:
        lines.append(f"not computed for other reasons ({len(others)}):")
        lines += [f"  {m}: {r}" for m, r in others.items()]
    return "\n".join(lines)


def wide_frame(records: list[RunRecord]):  # -> pandas.DataFrame
    """One row per record; per metric its value, CI, seed sd, n, status and reason."""
    return main_frame(build_report(from_records(records), by=()))


def write_tables(records: list[RunRecord], out_dir: Path) -> None:
    """table.md (with per-emotion/intensity breakdowns where clips carry labels), table.csv,
    table.tex and table.json."""
    out_dir = Path(out_dir)
    report = build_report(from_records(records))
    write_text_atomic(out_dir / "table.md", to_markdown(report))
    write_text_atomic(out_dir / "table.csv", to_csv(report, "main"))
    write_text_atomic(out_dir / "table.tex", to_latex(report))
    write_text_atomic(
        out_dir / "table.json", json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
    )
