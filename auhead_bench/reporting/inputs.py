"""Finding and loading run records from what a user passes: run folders, record folders, files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from auhead_bench.errors import BenchError
from auhead_bench.records import (
    RunRecord,
    dump_record,
    load_record,
    parse_json,
    read_regular_file,
)
from auhead_bench.validation import accept

# Methods that bracket a benchmark instead of competing in it (the built-in reference
# plugins): a table never marks them best. The one list the reports use.
REFERENCE_METHODS = frozenset({"ground_truth", "static_frame"})
MANIFEST = "run.json"  # written by the runner beside records/; it is not a record
NOT_RECORDS = frozenset({MANIFEST, "table.json"})  # the runner's other JSON outputs


def is_reference(record: RunRecord) -> bool:
    """Whether ``record`` is of a reference method (upper or lower bound), not a contender."""
    return record.method.id in REFERENCE_METHODS


@dataclass(frozen=True)
class LoadedRecord:
    """A validated record, the file it came from, and the unique label a table row shows."""

    record: RunRecord
    path: Path | None
    label: str


@dataclass(frozen=True)
class Skipped:
    """A file that is not a readable record, and why (one line, without the path)."""

    path: Path
    reason: str


def skipped_from(path: Path, exc: BenchError) -> Skipped:
    """The reason of ``exc`` without the ``PATH: `` prefix that one_line adds."""
    reason = exc.message + (f" -- fix: {exc.fix}" if exc.fix else "")
    return Skipped(path, reason)


def manifest_order(run_dir: Path, files: list[Path]) -> list[Path]:
    """``files`` in the order the run's ``run.json`` lists them (the runner's plan order, the
    order of the run's own table.md); files it does not list follow, sorted. A manifest that
    cannot be read changes nothing: it is never needed, only used to order."""
    manifest = run_dir / MANIFEST
    try:
        listed = parse_json(read_regular_file(manifest), manifest).get("records", [])
    except (BenchError, AttributeError):
        return files
    if not isinstance(listed, list):
        return files
    rank = {Path(name).name: i for i, name in enumerate(listed) if isinstance(name, str)}
    return sorted(files, key=lambda f: (rank.get(f.name, len(rank)), f.name))


def find_record_files(path: Path) -> list[Path]:
    """Record files under ``path``: a record file, a run folder (records/*.json) or a folder.

    Anything named ``*.json`` is listed, folders and FIFOs too: ``load_record`` refuses what
    is not a regular file without opening it, so the caller can name it with its reason.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        return [path]
    if not path.is_dir():
        raise BenchError(
            "no such file or folder",
            path=path,
            fix="pass a run folder written by `auhead-bench run --out` or a record .json",
        )
    folder = path / "records" if (path / "records").is_dir() else path
    files = sorted(p for p in folder.glob("*.json") if p.name not in NOT_RECORDS)
    files = manifest_order(path, files)
    if not files:
        raise BenchError(
            "no run records (*.json) found",
            path=path,
            fix="pass a run folder written by `auhead-bench run --out` (it holds records/*.json)",
        )
    return files


def _run_name(path: Path | None) -> str:
    """The run folder a record came from, to tell apart rows with the same experiment."""
    if path is None:
        return "?"
    parent = path.parent
    return parent.parent.name if parent.name == "records" else parent.name


def label_records(
    records: Iterable[tuple[RunRecord, Path | None]],
) -> list[LoadedRecord]:
    """Drop exact duplicates; give rows of the same experiment and dataset distinct labels."""
    unique: list[tuple[RunRecord, Path | None]] = []
    seen: set[str] = set()
    for record, path in records:
        digest = json.dumps(dump_record(record), sort_keys=True)
        if digest in seen:
            continue
        seen.add(digest)
        unique.append((record, path))
    counts: dict[tuple[str, str], int] = {}
    for record, _ in unique:
        key = (record.experiment, record.dataset.id)
        counts[key] = counts.get(key, 0) + 1
    out: list[LoadedRecord] = []
    used: set[tuple[str, str]] = set()
    for record, path in unique:
        label = record.experiment
        if counts[(record.experiment, record.dataset.id)] > 1:
            label = f"{record.experiment} ({_run_name(path)})"
        base, i = label, 2
        while (label, record.dataset.id) in used:
            label, i = f"{base} #{i}", i + 1
        used.add((label, record.dataset.id))
        out.append(LoadedRecord(record=record, path=path, label=label))
    return out


def load_runs(
    paths: Iterable[Path], skipped: list[Skipped] | None = None, notes: list[str] | None = None
) -> list[LoadedRecord]:
    """Every record under ``paths`` that passes the validation the leaderboard applies
    (``validation.accept``): within one folder, a second record with the same record id is
    merged into the first when it adds metrics (a line in ``notes``) and refused otherwise;
    the same experiment from two run folders stays two rows, labelled by run.

    Without ``skipped``, a malformed or refused file stops with a one-line error naming it.
    With a list, each file that is not a readable record (not a regular file, not JSON, not
    valid) is appended to it with its reason and left out; if no record at all is left, the
    error names the first bad file.
    """
    folders: dict[Path, list[tuple[Path, RunRecord]]] = {}
    seen: set[Path] = set()
    for path in paths:
        for file in find_record_files(Path(path)):
            if file.resolve() in seen:
                continue  # one file named twice (a run passed twice) is one record
            seen.add(file.resolve())
            try:
                record = load_record(file)
            except BenchError as exc:
                if skipped is None:
                    raise
                skipped.append(skipped_from(file, exc))
                continue
            folders.setdefault(file.parent.resolve(), []).append((file, record))
    loaded: list[tuple[RunRecord, Path | None]] = []
    for batch in folders.values():
        good, refused, merges = accept(batch)
        for file, reason in refused:
            if skipped is None:
                raise BenchError(reason, path=file)
            skipped.append(Skipped(file, reason))
        loaded += good
        if notes is not None:
            notes += merges
    if skipped and not loaded:
        first = skipped[0]
        raise BenchError(
            f"no readable run record ({len(skipped)} file(s) skipped; first: {first.reason})",
            path=first.path,
        )
    return label_records(loaded)


def from_records(records: Iterable[RunRecord]) -> list[LoadedRecord]:
    """Records already in memory (the runner's), labelled the same way."""
    return label_records((r, None) for r in records)
