"""The run configuration: defaults, overridden by a YAML file, overridden by CLI options."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auhead_bench.errors import ConfigError


class ComponentConfig(BaseModel):
    """A plugin id with its options; in YAML a bare id string is accepted too."""

    model_config = ConfigDict(extra="forbid")

    id: str
    options: dict[str, Any] = Field(default_factory=dict)


def _components(value: Any) -> Any:
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"id": item} if isinstance(item, str) else item for item in value]
    return value


class RunConfig(BaseModel):
    """What to run. Every field can come from YAML; CLI options override them."""

    model_config = ConfigDict(extra="forbid")

    name: str = "benchmark"
    methods: list[ComponentConfig]
    datasets: list[ComponentConfig]
    metrics: list[ComponentConfig]
    seeds: list[int] = Field(default_factory=lambda: [0])
    device: str = "auto"  # auto: cuda if available, else cpu
    cache_dir: Path | None = None  # default: $AUHEAD_BENCH_CACHE or ~/.cache/auhead-bench
    skip_bad_clips: bool = False  # True: leave out unreadable clips (listed in the record)

    @field_validator("methods", "datasets", "metrics", mode="before")
    @classmethod
    def _component_list(cls, value: Any) -> Any:
        return _components(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value


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


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults < YAML at ``path`` (the built-in demo when None) < ``overrides`` (CLI)."""
    source = Path(path) if path is not None else demo_config_path()
    data = read_yaml(source)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), path=source) from None


def describe_validation_error(exc: ValidationError) -> str:
    """The first pydantic error as 'field.path: message' (+N more)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}"
