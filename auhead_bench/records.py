"""The run record: one JSON file per method x options x dataset, every seed inside.

A record holds everything needed to recompute its numbers (spec, provenance, protocols,
per-clip values). It has no timestamp, and everything in it is a function of the inputs
and the software except the measured costs of generations (``seconds``, ``device``,
``peak_memory_bytes``, taken when a generation was made and cached): a run killed and
resumed writes the same record as an uninterrupted one, those measurements aside.
``auhead-bench schema`` prints the JSON Schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auhead_bench.errors import BenchError

SCHEMA_VERSION = "1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginRef(_Model):
    """Which plugin provided an object, and its version."""

    entry_point: str
    distribution: str | None
    version: str | None


class ComponentSpec(_Model):
    """A method, dataset or metric as it was used: id, options and provenance."""

    id: str
    options: dict[str, Any] = Field(default_factory=dict)
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    plugin: PluginRef


class ClipValue(_Model):
    """One clip's value for one seed; ``value`` is null when the clip could not be scored."""

    clip_id: str
    seed: int
    value: float | None
    reason: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)  # e.g. frames used
    labels: dict[str, Any] = Field(default_factory=dict)


class MetricResult(_Model):
    """A metric over a record's clips: mean of per-seed values, with n and every clip's value."""

    metric_id: str
    higher_is_better: bool
    status: Literal["ok", "not_computed", "failed"]
    value: float | None = None
    n: int = 0  # clips (x seeds) that contributed
    n_skipped: int = 0  # clips that could not be scored, each with a reason below
    reason: str | None = None  # why not computed / failed
    per_seed: dict[str, float | None] = Field(default_factory=dict)
    per_seed_info: dict[str, dict[str, Any]] = Field(default_factory=dict)  # e.g. N per side
    per_clip: list[ClipValue] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)  # as configured
    protocol: dict[str, Any] = Field(default_factory=dict)
    plugin: PluginRef | None = None


class GenerationResult(_Model):
    """One (clip, seed) generation: its cache key, status and cost."""

    clip_id: str
    seed: int
    status: Literal["ok", "failed"]
    key: str
    content_sha256: str | None = None
    frames: int | None = None
    seconds: float | None = None  # time the generation took when it was first made
    device: str | None = None  # where it was made (the cache may hold work of another machine)
    peak_memory_bytes: int | None = None  # CUDA peak allocated while generating; None on CPU
    error: str | None = None
    flags: list[str] = Field(default_factory=list)
    info: dict[str, Any] = Field(default_factory=dict)


class Provenance(_Model):
    """Where the numbers came from: software, hardware, weights."""

    auhead_bench: str
    git_commit: str | None
    git_dirty: bool | None
    python: str
    platform: str
    device: str
    packages: dict[str, str | None]
    plugins: list[PluginRef]
    weights: dict[str, str] = Field(default_factory=dict)  # file name -> sha256


class RunRecord(_Model):
    """Results of one method (with fixed options) on one dataset, over every seed."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    record_id: str
    experiment: str
    method: ComponentSpec
    dataset: ComponentSpec
    seeds: list[int]
    clip_ids: list[str]
    skipped_clips: dict[str, str] = Field(default_factory=dict)  # clip id -> why (unreadable)
    generations: list[GenerationResult]
    metrics: dict[str, MetricResult]
    extractors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    provenance: Provenance


def without_measurements(record: RunRecord) -> dict[str, Any]:
    """The record minus measured costs: equal for any two runs of the same inputs."""
    data = record.model_dump(mode="json")
    for generation in data["generations"]:
        generation.update(seconds=None, device=None, peak_memory_bytes=None)
    return data


def json_schema() -> dict[str, Any]:
    schema = RunRecord.model_json_schema()
    schema["$id"] = f"https://auhead-bench/schema/run-record/v{SCHEMA_VERSION}.json"
    return schema


def dump_record(record: RunRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def load_record(path: Path) -> RunRecord:
    """Read and validate one record file; a one-line error names the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError("record file not found", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"not valid JSON ({exc})", path=path, fix="re-run to rewrite it") from None
    if not isinstance(data, dict):
        raise BenchError("not a run record (expected a JSON object)", path=path)
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BenchError(
            f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION!r})",
            path=path,
            fix="validate with the auhead-bench version that wrote it",
        )
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BenchError(f"invalid record at {where}: {first['msg']}{more}", path=path) from None
