"""The run configuration: defaults, overridden by a YAML file, overridden by CLI options."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auhead_bench.errors import ConfigError

Overwrite = Literal["only-missing", "always", "never", "only-cache"]

# What each overwrite policy does; `run --help` and the docs quote these lines.
OVERWRITE_POLICIES: dict[str, str] = {
    "only-missing": "reuse cached generations and make the missing ones (the default)",
    "always": "make every generation again, even if cached; the new one replaces the cache "
    "entry (if it fails, the clip is failed and the old entry is left alone)",
    "never": "never overwrite a record: a unit whose record file is already in OUT/records is "
    "skipped and its record kept as it is, even if the metrics changed (delete the file to "
    "redo the unit); the other units run as with only-missing",
    "only-cache": "make no generation (no method setup or generate): score what is cached; "
    "a missing generation is a failed clip, 'not in the cache (overwrite: only-cache)'",
}


# How the runner encodes prepared clips: the ground truth every method and metric reads, and
# every face crop a dataset makes. `run --help`, the README and the records quote these lines;
# bench/README.md has the measured cost.
INTERMEDIATES: dict[str, str] = {
    "x264_crf18": "H.264 (x264) crf 18 yuv420p + AAC in mp4: small; one lossy encode (the "
    "default, as every earlier version)",
    "lossless": "FFV1 RGB + FLAC in mp4: the decoded frames are exactly the source's decoded "
    "frames (no added loss); 21-27x the disk of x264_crf18 (bench/README.md)",
}
Intermediate = Literal["x264_crf18", "lossless"]
DEFAULT_INTERMEDIATE: Intermediate = "x264_crf18"


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?|mps")
DEVICES_HELP = "auto, cpu, cuda, cuda:N (N a GPU index) or mps"


def check_device(value: str) -> str:
    """``value`` if it names a device the suite can run on, else ValueError saying which do.

    Only the spelling is checked here (no torch import): whether the GPU exists is known when
    the run resolves the device.
    """
    if not DEVICE_PATTERN.fullmatch(value):
        raise ValueError(f"unknown device {value!r}; use {DEVICES_HELP}")
    return value


MAX_METHOD_NAME = 60


class ComponentConfig(BaseModel):
    """A plugin id with its options; in YAML a bare id string is accepted too."""

    model_config = ConfigDict(extra="forbid")

    id: str
    options: dict[str, Any] = Field(default_factory=dict)


def _sweep_lists(value: Any) -> Any:
    """``{opt: 0.5}`` reads as ``{opt: [0.5]}``: a scalar is a sweep of one value."""
    if isinstance(value, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
    return value


def _no_empty_sweep(value: dict[str, list[Any]]) -> dict[str, list[Any]]:
    for name, values in value.items():
        if not values:
            raise ValueError(f"{name}: the list of values is empty")
    return value


class MethodConfig(ComponentConfig):
    """A method; ``sweep`` maps option names to values: one work unit per combination (a grid
    when several options are swept), the other options fixed as in ``options``."""

    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    # What tables, plots, the site and progress call it (the record keeps every option);
    # a sweep point is called ``name[option=value]``.
    name: str | None = Field(default=None, min_length=1, max_length=MAX_METHOD_NAME)

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_before(cls, value: Any) -> Any:
        return _sweep_lists(value)

    @field_validator("sweep")
    @classmethod
    def _sweep_after(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return _no_empty_sweep(value)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or value != value.strip()):
            raise ValueError("a name is one line of printable text without surrounding spaces")
        return value


def _components(value: Any) -> Any:
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"id": item} if isinstance(item, str) else item for item in value]
    return value


class RunConfig(BaseModel):
    """What to run. Every field can come from YAML; CLI options override them.

    Sweeps: the top-level ``sweep`` applies to every method that has the option (others are
    left alone); a method's own ``sweep`` only to it. For one option of one method the value
    comes from, highest first: ``--sweep`` on the command line, the method's ``sweep``, the
    top-level ``sweep``, the method's ``options``, the option's default.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "benchmark"
    methods: list[MethodConfig]
    datasets: list[ComponentConfig]
    metrics: list[ComponentConfig]
    seeds: list[int] = Field(default_factory=lambda: [0])
    sweep: dict[str, list[Any]] = Field(default_factory=dict)  # option -> values, every method
    overwrite: Overwrite = "only-missing"  # see OVERWRITE_POLICIES
    device: str = "auto"  # auto: cuda if available, else cpu
    cache_dir: Path | None = None  # default: $AUHEAD_BENCH_CACHE or ~/.cache/auhead-bench
    skip_bad_clips: bool = False  # True: leave out unreadable clips (listed in the record)
    # How prepared clips (and face crops) are encoded; see INTERMEDIATES. Part of every
    # prepared clip's cache key and, when not the default, of the record ids.
    intermediate: Intermediate = DEFAULT_INTERMEDIATE
    # Where generation and feature work runs: this process, or Ray tasks (see README).
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # ray: join this cluster ("auto", "ray://host:10001")
    clips_per_task: int = Field(default=8, ge=1)  # ray: clips of one dataset per task
    # Frames reach extractors and metrics in chunks of this many (fewer for huge frames);
    # decoded frames beyond frame_buffer_mb per video wait in a temp file. Results do not
    # depend on either; memory does.
    chunk_frames: int = Field(default=32, ge=1)
    frame_buffer_mb: int = Field(default=128, ge=0)

    @field_validator("methods", "datasets", "metrics", mode="before")
    @classmethod
    def _component_list(cls, value: Any) -> Any:
        return _components(value)

    @field_validator("intermediate", mode="before")
    @classmethod
    def _known_intermediate(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in INTERMEDIATES:
            choices = "; ".join(f"{name}: {what}" for name, what in INTERMEDIATES.items())
            raise ValueError(f"unknown intermediate {value!r}; use {choices}")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        return check_device(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        repeated = sorted({s for s in value if value.count(s) > 1})
        if repeated:
            raise ValueError(f"seed {repeated[0]} is listed twice")
        return value

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_before(cls, value: Any) -> Any:
        return _sweep_lists(value)

    @field_validator("sweep")
    @classmethod
    def _sweep_after(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return _no_empty_sweep(value)


def demo_config_path() -> Path:
    return Path(str(resources.files("auhead_bench") / "configs" / "demo.yaml"))


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config ({exc.strerror})", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"bad YAML: {where}{problem}", path=path, fix="fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a YAML mapping (key: value)", path=path)
    return data


def parse_sweep(items: Iterable[str]) -> dict[str, list[Any]]:
    """``--sweep`` values, e.g. ``["s_au=1,2,3.5", "steps=20,40"]``, as a sweep mapping.

    Each value is read as a YAML scalar (``1`` an int, ``3.5`` a float, ``null``, ``true``,
    else text); the method's options then validate and convert it.
    """
    sweep: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        values = [v.strip() for v in text.split(",")]
        if not sep or not name or not all(values):
            raise ConfigError(
                f"--sweep {item!r}: expected OPTION=VALUE[,VALUE...]",
                fix="e.g. --sweep s_au=1,2,3.5",
            )
        if name in sweep:
            raise ConfigError(
                f"--sweep {name}: given twice", fix=f"list all its values in one --sweep {name}=..."
            )
        sweep[name] = [_scalar(v) for v in values]
    return sweep


def _scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults < YAML at ``path`` (the built-in demo when None) < ``overrides`` (CLI).

    A ``sweep`` override extends the YAML's top-level ``sweep`` (same option: replaced) and
    also replaces the methods' own sweeps of its options: the command line has the last word.
    """
    source = Path(path) if path is not None else demo_config_path()
    data = read_yaml(source)
    overrides = dict(overrides or {})
    cli_sweep = overrides.pop("sweep", None) or {}
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    if cli_sweep and isinstance(data.get("sweep") or {}, dict):  # else validation says why
        data["sweep"] = {**(data.get("sweep") or {}), **cli_sweep}
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), path=source) from None
    if cli_sweep:
        methods = [
            m.model_copy(update={"sweep": {k: v for k, v in m.sweep.items() if k not in cli_sweep}})
            for m in config.methods
        ]
        config = config.model_copy(update={"methods": methods})
    return config


def describe_validation_error(exc: ValidationError) -> str:
    """The first pydantic error as 'field.path: message' (+N more)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "value_error":  # our own validators' words, without "Value error, "
        message = str(first.get("ctx", {}).get("error", message))
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}"
