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
import math
import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auhead_bench.errors import BenchError

SCHEMA_VERSION = "1"


class _Model(BaseModel):
    # NaN and Infinity are refused in every float field: a table would print "nan ± 0.74".
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    # How the ground truth was prepared: the intermediate's encode (lossless or not, codecs),
    # rates, and the dataset's framing ("native" or "face_crop" with its size); empty in
    # records written before it existed (x264 crf 18, framing as the dataset's options say).
    preparation: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int]
    # The method's output does not depend on the seed: it was generated and scored for the
    # first configured seed only, and its n counts clips, never clip x seed.
    deterministic: bool = False
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


MAX_DEPTH = 64  # a real record nests under 10 deep; deeper is hostile (RecursionError)


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file; a one-line BenchError otherwise.

    A FIFO, a device or a folder named ``*.json`` is refused before it is opened (opening a
    FIFO blocks until a writer comes), and the open itself does not block, in case the path
    was swapped between the check and the open.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise BenchError("record file not found", path=path) from None
    except OSError as exc:
        raise BenchError(f"cannot read ({exc.strerror})", path=path) from None
    if not stat.S_ISREG(mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(mode)
            else "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device or socket"
        )
        raise BenchError(f"not a regular file ({kind}): not read", path=path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise BenchError(f"cannot read ({exc.strerror})", path=path) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise BenchError("not a regular file: not read", path=path)
        return handle.read()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a record may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise ValueError(f"{text[:20]} is out of a float's range")
    return value


def _depth(data: Any) -> int:
    """How deep ``data`` nests, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_json(raw: bytes, path: Path) -> Any:
    """Strict JSON: no NaN/Infinity literals, no numbers past Python's digit limit, no nesting
    deeper than ``MAX_DEPTH``; each problem is a one-line BenchError naming the file."""
    fix = "re-run to rewrite it"
    try:
        data = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"not valid JSON ({exc})", path=path, fix=fix) from None
    except RecursionError:
        raise BenchError(
            f"not a run record (JSON nested deeper than {MAX_DEPTH} levels)", path=path
        ) from None
    except ValueError as exc:  # NaN/Infinity, or an integer past sys.get_int_max_str_digits()
        text = str(exc).split(";")[0]
        raise BenchError(f"not valid JSON for a record ({text})", path=path, fix=fix) from None
    if _depth(data) > MAX_DEPTH:
        raise BenchError(
            f"not a run record (JSON nested deeper than {MAX_DEPTH} levels)", path=path
        )
    return data


def load_record(path: Path) -> RunRecord:
    """Read and validate one record file; a one-line error names the file and the problem.

    Only regular files are read; NaN, Infinity, huge integers and absurd nesting are refused.
    """
    path = Path(path)
    data = parse_json(read_regular_file(path), path)
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
