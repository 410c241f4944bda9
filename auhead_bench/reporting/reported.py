"""Numbers quoted from papers (``kind: reported``): a result kind of their own, never a run.

A reported result has no per-clip values, no provenance and nothing to recompute: it is what
a paper printed, with where (paper, arXiv id, table) and under which protocol the paper says.
It is validated by its own schema (``ReportedResult``), shown on the board beside reproduced
records of the same method, always marked "reported", never bold and never ranked
(``verified`` is ``false`` by construction: the suite did not produce the number).

Each number names the board column it stands beside (``metric_id``) and whether the paper's
protocol is known to be that column's (``protocol: same``) or only what the paper states
(``protocol: paper-stated``, the usual case: papers rarely state crops, detectors or clip
counts). A delta to a reproduced number is shown either way and labelled accordingly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auhead_bench.errors import BenchError
from auhead_bench.records import RunRecord

REPORTED_SCHEMA_VERSION = "1"
KIND = "reported"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Citation(_Model):
    """Where the numbers are printed."""

    paper: str = Field(min_length=1)
    arxiv: str = Field(pattern=r"^\d{4}\.\d{4,5}(v\d+)?$")
    table: str = Field(min_length=1)  # "Table 1", or what the source says when it has no number
    venue: str | None = None
    url: str | None = Field(default=None, pattern=r"^https://")
    # Who quotes it and from what: a reported number is only as good as its transcription.
    quoted_from: str = Field(min_length=1)


class ReportedMetric(_Model):
    """One printed number, under the board column it stands beside."""

    paper_name: str = Field(min_length=1)  # the paper's own column name ("Sync", "M-LMD")
    value: float
    higher_is_better: bool
    protocol: Literal["same", "paper-stated"]
    stated: str = Field(min_length=1)  # what the paper (or the source) says about the protocol


class ReportedResult(_Model):
    """A paper's row for one method on one dataset."""

    kind: Literal["reported"]
    schema_version: Literal["1"] = REPORTED_SCHEMA_VERSION
    record_id: str = Field(min_length=1)
    label: str = Field(min_length=1)  # as the paper names the row, e.g. "AUHead (MEMO)"
    method: str = Field(min_length=1)  # the suite's method id a reproduced record would carry
    # Options a reproduced record must have (a subset match) to be "the same method".
    method_options: dict[str, Any] = Field(default_factory=dict)
    dataset: str = Field(min_length=1)
    split: str = Field(min_length=1)  # the split as the paper states it (or that it does not)
    protocol: str = Field(min_length=1)  # the evaluation protocol as the paper states it
    citation: Citation
    verified: Literal[False]  # required: the file itself says the suite did not verify it
    note: str | None = None
    metrics: dict[str, ReportedMetric] = Field(min_length=1)  # board metric id -> number


def is_reported(data: Any) -> bool:
    """Whether parsed JSON claims to be a reported result (it is then validated as one)."""
    return isinstance(data, dict) and data.get("kind") == KIND


def reported_from_data(data: dict[str, Any], path: Path) -> ReportedResult:
    """Validate parsed JSON as a reported result; one-line BenchError naming the file."""
    version = data.get("schema_version", REPORTED_SCHEMA_VERSION)
    if version != REPORTED_SCHEMA_VERSION:
        raise BenchError(
            f"reported schema_version {version!r} is not supported "
            f"(expected {REPORTED_SCHEMA_VERSION!r})",
            path=path,
        )
    try:
        result = ReportedResult.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BenchError(
            f"invalid reported result at {where}: {first['msg']}{more}", path=path
        ) from None
    for metric_id, metric in result.metrics.items():
        if not math.isfinite(metric.value):  # allow_inf_nan already refuses; belt and braces
            raise BenchError(f"reported metrics.{metric_id}.value is not finite", path=path)
    return result


def json_schema() -> dict[str, Any]:
    schema = ReportedResult.model_json_schema()
    schema["$id"] = f"https://auhead-bench/schema/reported-result/v{REPORTED_SCHEMA_VERSION}.json"
    return schema


def same_method(reported: ReportedResult, record: RunRecord) -> bool:
    """Whether ``record`` reproduces the reported row: same method id and dataset, and every
    option the reported row names set alike in the record."""
    if record.method.id != reported.method or record.dataset.id != reported.dataset:
        return False
    options = record.method.options
    return all(k in options and options[k] == v for k, v in reported.method_options.items())
