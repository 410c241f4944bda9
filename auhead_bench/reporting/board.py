"""What the board ranks (``leaderboard/board.yaml``) and the flags it shows (``flags.yaml``).

Two numbers under one metric id are comparable only when they were computed the same way:
same dataset split, same metric options, same preparation of the ground truth. The board
names all of these in one file; a record that differs in any of them is kept on the site in
an "other protocols" table and never ranked beside the others, and ``protocol_differences``
says exactly which field differs and how.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auhead_bench.errors import BenchError
from auhead_bench.records import RunRecord

REPO_ROOT = Path(__file__).resolve().parents[2]
ANY_OF = "any_of"  # a split value the board accepts in several spellings


def default_board_path() -> Path:
    return REPO_ROOT / "leaderboard" / "board.yaml"


def default_flags_path() -> Path:
    return REPO_ROOT / "leaderboard" / "flags.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BoardDataset(_Model):
    """A dataset the board ranks and the split it ranks: dataset option -> value the record
    must hold (``{any_of: [...]}`` for values that select the same clips)."""

    id: str
    split: dict[str, Any] = Field(default_factory=dict)


class BoardMetric(_Model):
    """A metric the board ranks: its options as the record must hold them (every option of
    the metric: an option the board does not name is a difference), and the protocol
    version (``protocol.version`` in the record; None: any)."""

    id: str
    options: dict[str, Any] = Field(default_factory=dict)
    version: str | None = None


class Board(_Model):
    """The whole protocol of the board."""

    name: str
    datasets: list[BoardDataset] = Field(min_length=1)
    metrics: list[BoardMetric] = Field(min_length=1)
    # record.preparation key -> value: the intermediate (encode of the ground truth) and the
    # dataset's framing/crop.
    preparation: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metrics")
    @classmethod
    def _unique(cls, metrics: list[BoardMetric]) -> list[BoardMetric]:
        ids = [m.id for m in metrics]
        if len(ids) != len(set(ids)):
            raise ValueError("a metric id is listed twice")
        return metrics

    @property
    def metric_ids(self) -> list[str]:
        return [m.id for m in self.metrics]

    def dataset(self, dataset_id: str) -> BoardDataset | None:
        return next((d for d in self.datasets if d.id == dataset_id), None)

    def metric(self, metric_id: str) -> BoardMetric | None:
        return next((m for m in self.metrics if m.id == metric_id), None)


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise BenchError(f"{what} not found", path=path) from None
    except OSError as exc:
        raise BenchError(f"cannot read {what} ({exc.strerror})", path=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BenchError(f"{what} is not valid YAML ({' '.join(str(exc).split())})",
                         path=path) from None


def load_board(path: Path | None = None) -> Board:
    """Read and validate a board file; a one-line BenchError names the file and the field."""
    path = Path(path) if path is not None else default_board_path()
    data = _read_yaml(path, "board file")
    try:
        return Board.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise BenchError(f"invalid board file at {where}: {first['msg']}", path=path,
                         fix="see leaderboard/README.md, 'board.yaml'") from None


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _normal(value: Any) -> Any:
    """Lists compared as sets of values (a split's identities in any order)."""
    if isinstance(value, list):
        return sorted(_show(v) for v in value)
    return value


def _accepts(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict) and set(expected) == {ANY_OF}:
        return any(_accepts(option, actual) for option in expected[ANY_OF])
    return _normal(expected) == _normal(actual)


_MISSING = object()


def _differs(where: str, expected: Any, actual: Any) -> str | None:
    if actual is _MISSING:
        return f"{where} is missing (the board ranks {_expected_text(expected)})"
    if _accepts(expected, actual):
        return None
    return f"{where} is {_show(actual)} (the board ranks {_expected_text(expected)})"


def _expected_text(expected: Any) -> str:
    if isinstance(expected, dict) and set(expected) == {ANY_OF}:
        return " or ".join(_show(v) for v in expected[ANY_OF])
    return _show(expected)


def protocol_differences(record: RunRecord, board: Board) -> list[str]:
    """Every field in which ``record`` differs from what the board ranks, one line each
    (empty: the record is ranked)."""
    found: list[str] = []
    dataset = board.dataset(record.dataset.id)
    if dataset is None:
        known = ", ".join(d.id for d in board.datasets)
        return [f"dataset.id is {record.dataset.id!r}: not a dataset the board ranks ({known})"]
    for key, expected in dataset.split.items():
        actual = record.dataset.options.get(key, _MISSING)
        if (line := _differs(f"dataset.options.{key}", expected, actual)) is not None:
            found.append(line)
    for key, expected in board.preparation.items():
        actual = record.preparation.get(key, _MISSING)
        if (line := _differs(f"preparation.{key}", expected, actual)) is not None:
            found.append(line)
    for metric_id, result in record.metrics.items():
        metric = board.metric(metric_id)
        if metric is None:
            continue  # shown, never bold: the board has no protocol for it
        for key in sorted(set(metric.options) | set(result.options)):
            where = f"metrics.{metric_id}.options.{key}"
            if key not in metric.options:
                found.append(
                    f"{where} is {_show(result.options[key])} (not an option the board names)"
                )
                continue
            actual = result.options.get(key, _MISSING)
            if (line := _differs(where, metric.options[key], actual)) is not None:
                found.append(line)
        if metric.version is not None:
            actual = result.protocol.get("version", _MISSING)
            if (line := _differs(f"metrics.{metric_id}.protocol.version", metric.version,
                                 actual)) is not None:
                found.append(line)
    return found


# ---- flags ---------------------------------------------------------------------------------


class Flag(_Model):
    """Why an entry is flagged, and where that is discussed."""

    reason: str = Field(min_length=1, max_length=500)
    link: str | None = Field(default=None, pattern=r"^https?://", max_length=500)


def load_flags(path: Path | None) -> dict[str, Flag]:
    """``flags.yaml``: record id -> {reason, link}. A missing default file is no flags."""
    if path is None:
        path = default_flags_path()
        if not path.is_file():
            return {}
    data = _read_yaml(Path(path), "flags file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BenchError("flags file is not a mapping of record id -> {reason, link}", path=path)
    flags = {}
    for record_id, value in data.items():
        try:
            flags[str(record_id)] = Flag.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise BenchError(f"invalid flag for {str(record_id)[:80]!r} at {where}: "
                             f"{first['msg']}", path=path) from None
    return flags
