"""Size limits on what a leaderboard reads, and the one reader of a results file.

One record holding a 50 MB string once made a 550 MB site (the string is written into the
record's page, its JSON copy and the downloads). The board now refuses, with the reason:

- a file over ``MAX_RECORD_BYTES`` (checked before it is read);
- any string (a value or a key) over ``MAX_STRING_CHARS`` characters;
- more than ``MAX_ITEMS`` JSON values in one file.

A real record is far inside them: a MEAD test split (about 2,800 clips) x 20 metrics x 3
seeds of per-clip values is about 30 MB, and the longest string a run writes is an error
message a few hundred characters long.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from auhead_bench.errors import BenchError
from auhead_bench.records import RunRecord, parse_json, read_regular_file, record_from_data
from auhead_bench.reporting.reported import ReportedResult, is_reported, reported_from_data

MAX_RECORD_BYTES = 48 * 2**20  # 48 MiB per results file
MAX_STRING_CHARS = 10_000  # per string, keys included
MAX_ITEMS = 5_000_000  # JSON values per file (a 48 MiB file of tiny values stays under it)

FIX = "shorten it (long logs belong in the run folder, not in the record)"


def _where(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "(root)"


_LONG_RUN = re.compile(rb'[^"]{%d}' % (MAX_STRING_CHARS + 1))


def _cannot_be_too_big(raw: bytes) -> bool:
    """True when the bytes alone prove every limit is kept (most records): with no escaped
    quote in the file, a string's encoding lies between two quote bytes and is at least as
    long as the string, so no quote-free run over the limit means no string over it; every
    JSON value takes at least one byte, so a file under MAX_ITEMS bytes has fewer values."""
    return len(raw) < MAX_ITEMS and b'\\"' not in raw and _LONG_RUN.search(raw) is None


def _too_big(data: Any) -> bool:
    """Whether ``data`` breaks a limit: one fast pass that tracks no paths."""
    stack, items = [data], 0
    while stack:
        item = stack.pop()
        items += 1
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                return True
        elif isinstance(item, dict):
            if any(len(key) > MAX_STRING_CHARS for key in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return items > MAX_ITEMS


def size_problem(data: Any) -> str | None:
    """The first limit ``data`` breaks, as a reason naming where; None when it keeps them."""
    if not _too_big(data):
        return None
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    items = 0
    while stack:
        item, where = stack.pop()
        items += 1
        if isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                return (
                    f"string at {_where(where)} is {len(item):,} characters "
                    f"(limit {MAX_STRING_CHARS:,})"
                )
        elif isinstance(item, dict):
            for key, value in item.items():
                if len(key) > MAX_STRING_CHARS:
                    return (
                        f"a key under {_where(where)} is {len(key):,} characters "
                        f"(limit {MAX_STRING_CHARS:,})"
                    )
                stack.append((value, [*where, key[:40]]))
        elif isinstance(item, list):
            stack.extend((value, [*where, i]) for i, value in enumerate(item))
    return f"more than {MAX_ITEMS:,} JSON values (limit {MAX_ITEMS:,})"


def load_entry(path: Path) -> RunRecord | ReportedResult:
    """Read one results file within the limits: a run record, or a reported result
    (``kind: reported``). A one-line BenchError names the file and the reason otherwise."""
    path = Path(path)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # read_regular_file says what is wrong with it
    if size > MAX_RECORD_BYTES:
        raise BenchError(
            f"file is {size / 2**20:.1f} MiB (limit {MAX_RECORD_BYTES // 2**20} MiB)",
            path=path,
            fix=FIX,
        )
    raw = read_regular_file(path)
    if len(raw) > MAX_RECORD_BYTES:  # grew between the stat and the read
        raise BenchError(
            f"file is over {MAX_RECORD_BYTES // 2**20} MiB", path=path, fix=FIX
        )
    data = parse_json(raw, path)
    problem = None if _cannot_be_too_big(raw) else size_problem(data)
    if problem:
        raise BenchError(problem, path=path, fix=FIX)
    if is_reported(data):
        return reported_from_data(data, path)
    return record_from_data(data, path)
