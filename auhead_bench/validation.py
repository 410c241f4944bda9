"""One validation of run records for every reader: `validate`, `table` and `leaderboard build`
accept and refuse the same files, so `validate` means "the board will take it".

The schema (``records.load_record``) checks types; this checks what it cannot see: provenance
filled in, ids that follow the plugin id grammar, numbers that agree with their own per-clip
values, and two records with one record id (merged when the second adds metrics, else refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

from auhead_bench.records import RunRecord

REL_TOL = 1e-6
# The ids plugins register (methods, metrics, datasets, extractors) and records may name:
# lowercase words joined by "_" (or "." / "-"), starting with a letter. A spreadsheet reads
# none of them as a formula, and each is safe as an anchor or a file name.
PLUGIN_ID = re.compile(r"[a-z][a-z0-9_]{0,99}(?:[.-][a-z0-9_]{1,50}){0,4}")
ID_GRAMMAR = "lowercase letters, digits and '_' (or '.', '-' between words), from a letter"


def id_problem(ident: object) -> str | None:
    """Why ``ident`` cannot be a plugin id, or None."""
    if not isinstance(ident, str) or not PLUGIN_ID.fullmatch(ident):
        return f"{str(ident)[:40]!r} is not a valid id ({ID_GRAMMAR})"
    return None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def record_problems(record: RunRecord) -> list[str]:
    """What the schema cannot see: provenance filled in, numbers that match their per-clip data."""
    problems: list[str] = []
    prov = record.provenance
    for name in ("auhead_bench", "python", "platform", "device"):
        if not str(getattr(prov, name)).strip():
            problems.append(f"provenance.{name} is empty")
    if not prov.packages:
        problems.append("provenance.packages is empty")
    if not record.seeds:
        problems.append("seeds is empty")
    if not record.metrics:
        problems.append("the record has no metrics")
    seeds, clips = set(record.seeds), set(record.clip_ids)
    for key, result in record.metrics.items():
        where = f"metrics.{key[:40]!r}"
        if not PLUGIN_ID.fullmatch(key):  # it becomes a CSV header, an anchor, a file name
            problems.append(f"{where}: {key[:40]!r} is not a metric id ({ID_GRAMMAR})")
            continue
        if result.metric_id != key:
            problems.append(f"{where}.metric_id is {result.metric_id!r}")
        per_seed = [v for v in result.per_seed.values() if v is not None]
        if any(not math.isfinite(v) for v in per_seed):
            problems.append(f"{where}.per_seed has a non-finite value")
            continue
        if result.status == "ok":
            if result.value is None or not math.isfinite(result.value):
                problems.append(f"{where}: status ok without a finite value")
                continue
            if per_seed and not _close(sum(per_seed) / len(per_seed), result.value):
                problems.append(f"{where}.value is not the mean of its per_seed values")
        elif result.value is not None:
            problems.append(f"{where}: status {result.status} with a value")
        for clip in result.per_clip:
            if clip.seed not in seeds or clip.clip_id not in clips:
                problems.append(f"{where}.per_clip names clip {clip.clip_id!r} seed {clip.seed}")
                break
        scored = [c for c in result.per_clip if c.value is not None]
        if not scored:
            continue  # a distribution metric keeps no per-clip values
        if result.status == "ok" and result.n != len(scored):
            problems.append(f"{where}.n is {result.n} but {len(scored)} clips have values")
        for seed, value in result.per_seed.items():
            values = [c.value for c in scored if str(c.seed) == seed and c.value is not None]
            if value is not None and values and not _close(sum(values) / len(values), value):
                problems.append(f"{where}.per_seed[{seed}] is not the mean of its clips")
                break
    return problems


def merge_records(first: RunRecord, second: RunRecord) -> RunRecord | str:
    """One record from two runs of one method on one dataset (same record id) that computed
    different metrics, or why they cannot be one row.

    They merge when the second adds a metric, the seeds and the method and dataset options are
    the same, and every metric both computed has the same protocol and options (its value is
    then the first's). Clips and generations are the union; provenance is the first's.
    """
    added = [m for m in second.metrics if m not in first.metrics]
    if not added:
        return "adds no metric"
    if first.seeds != second.seeds:
        return f"seeds {second.seeds} differ from {first.seeds}"
    for part in ("method", "dataset"):
        if getattr(first, part).options != getattr(second, part).options:
            return f"{part} options differ"
    for metric_id in (m for m in second.metrics if m in first.metrics):
        ours, theirs = first.metrics[metric_id], second.metrics[metric_id]
        if ours.protocol != theirs.protocol or ours.options != theirs.options:
            return f"metric {metric_id!r} was computed under another protocol or options"
    merged = first.model_copy(deep=True)
    merged.clip_ids = list(dict.fromkeys([*first.clip_ids, *second.clip_ids]))
    merged.skipped_clips = {**second.skipped_clips, **first.skipped_clips}
    have = {(g.clip_id, g.seed) for g in first.generations}
    merged.generations += [g for g in second.generations if (g.clip_id, g.seed) not in have]
    merged.metrics = {**first.metrics, **{m: second.metrics[m] for m in added}}
    return merged


def accept(
    items: Iterable[tuple[Path, RunRecord]],
) -> tuple[list[tuple[RunRecord, Path]], list[tuple[Path, str]], list[str]]:
    """Which of ``items`` (name, record) a table or the board shows: (accepted, rejected with
    a one-line reason, notes of merges). A record with problems is rejected; a second record
    with an accepted one's id is merged into it when it adds metrics (``merge_records``),
    else rejected naming the first file."""
    accepted: list[tuple[RunRecord, Path]] = []
    rejected: list[tuple[Path, str]] = []
    notes: list[str] = []
    owners: dict[str, Path] = {}
    index: dict[str, int] = {}  # record id -> its place in accepted
    for shown, record in items:
        problems = record_problems(record)
        owner = owners.get(record.record_id)
        if owner is not None and not problems:
            first = accepted[index[record.record_id]]
            merged = merge_records(first[0], record)
            if isinstance(merged, RunRecord) and not record_problems(merged):
                accepted[index[record.record_id]] = (merged, first[1])
                added = ", ".join(m for m in record.metrics if m not in first[0].metrics)
                notes.append(f"{shown}: metrics {added} merged into the row of {owner}")
                continue
            why = merged if isinstance(merged, str) else "the merged record is inconsistent"
            problems.insert(0, f"duplicate record_id {record.record_id!r} (also in {owner}): {why}")
        elif owner is not None:
            problems.insert(0, f"duplicate record_id {record.record_id!r} (also in {owner})")
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            rejected.append((shown, f"{problems[0]}{more}"))
            continue
        owners[record.record_id] = shown
        index[record.record_id] = len(accepted)
        accepted.append((record, shown))
    return accepted, rejected, notes
