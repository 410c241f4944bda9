"""From run records to what people read: tables, plots and the static leaderboard.

Everything here reads records only (never the cache or the videos), so any published record
can be re-tabled, re-plotted and re-published by anyone. Bootstrap resampling uses a fixed
seed: the same records always give the same intervals, digit for digit.
"""

from __future__ import annotations

from auhead_bench.reporting.inputs import LoadedRecord, find_record_files, load_runs
from auhead_bench.reporting.stats import (
    Comparison,
    Estimate,
    estimate,
    group_estimates,
    paired_comparison,
)
from auhead_bench.reporting.tables import Report, build_report

__all__ = [
    "Comparison",
    "Estimate",
    "LoadedRecord",
    "Report",
    "build_report",
    "estimate",
    "find_record_files",
    "group_estimates",
    "load_runs",
    "paired_comparison",
]
