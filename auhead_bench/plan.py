"""Turns a RunConfig into validated work units before any work starts.

Every id and option is checked up front, so a typo fails in a second, not after an hour.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from auhead_bench.cache import content_key
from auhead_bench.config import (
    DEFAULT_INTERMEDIATE,
    ComponentConfig,
    RunConfig,
    describe_validation_error,
)
from auhead_bench.errors import BenchError, ConfigError
from auhead_bench.features import extractor_order
from auhead_bench.options import Options, is_machine_specific
from auhead_bench.plugins import Registered, Registry

MAX_NAME = 80


@dataclass(frozen=True)
class Component:
    """A registered plugin class with validated options."""

    entry: Registered
    options: Options
    name: str | None = None  # a method's display name (config ``name:``, sweep point named)

    @property
    def id(self) -> str:
        return self.entry.id

    def options_json(self) -> dict[str, Any]:
        return self.options.model_dump(mode="json")


@dataclass(frozen=True)
class WorkUnit:
    """One method (with fixed options) on one dataset over the seeds: one run record."""

    method: Component
    dataset: Component
    seeds: tuple[int, ...]
    intermediate: str = DEFAULT_INTERMEDIATE  # RunConfig.intermediate: the ground truth's encode

    @property
    def experiment(self) -> str:
        return experiment_name(self.method)

    @property
    def deterministic(self) -> bool:
        """The method's output does not depend on the seed: one seed is generated and scored."""
        return self.method.entry.cls.is_deterministic(self.method.options)

    @property
    def record_id(self) -> str:
        """Stable file name: method, dataset and a hash of options, dataset options and seeds.

        Machine-specific options (paths to checkouts, interpreters) are left out; the
        intermediate only when not the default (the ids of earlier runs stay as they were).
        """
        prepared = {}
        if self.intermediate != DEFAULT_INTERMEDIATE:
            prepared["intermediate"] = self.intermediate
        digest = content_key(
            method=self.method.id,
            options=portable_options(self.method.options),
            dataset=self.dataset.id,
            dataset_options=portable_options(self.dataset.options),
            seeds=sorted(self.seeds),
            **prepared,
        )[:10]
        return f"{self.method.id}__{self.dataset.id}__{digest}"


def experiment_name(method: Component) -> str:
    """What tables, plots, the site and progress call a method: its configured ``name``
    (a sweep point's with ``[option=value]`` of its swept options), else
    ``method[opt=value,...]`` of its non-default options, hashed only if that is too long."""
    if method.name:
        return method.name
    return default_name(method.id, non_default_options(method.options))


def default_name(ident: str, changed: dict[str, Any]) -> str:
    if not changed:
        return ident
    name = f"{ident}[{option_list(changed)}]"
    if len(name) > MAX_NAME:
        name = f"{ident}[{content_key(**changed)[:10]}]"
    return name


def option_list(values: dict[str, Any]) -> str:
    return ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in values.items())


def portable_options(options: Options) -> dict[str, Any]:
    """Options without the machine-specific ones: what names an experiment anywhere."""
    values = options.model_dump(mode="json")
    fields = type(options).model_fields
    return {k: v for k, v in values.items() if not is_machine_specific(fields[k])}


def non_default_options(options: Options) -> dict[str, Any]:
    """Portable options whose value differs from the default (required ones always count)."""
    values = options.model_dump(mode="json")
    changed = {}
    for name, field in type(options).model_fields.items():
        if is_machine_specific(field):
            continue
        if field.is_required() or values[name] != _json(
            field.get_default(call_default_factory=True)
        ):
            changed[name] = values[name]
    return dict(sorted(changed.items()))


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):  # nested option models compare by their JSON form
        return value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class Plan:
    units: list[WorkUnit]
    datasets: list[Component]
    metrics: list[Component]
    seeds: list[int]


def _entry(
    registry: Registry, kind: str, ident: str, where: str, source: Path | None
) -> Registered:
    try:
        return registry.get(kind, ident)
    except Exception as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}", path=source) from None


def _component(
    registry: Registry, kind: str, spec: ComponentConfig, where: str, source: Path | None
) -> Component:
    entry = _entry(registry, kind, spec.id, where, source)
    return Component(entry, _options(entry, kind, spec.options, where, source))


def _options(
    entry: Registered,
    kind: str,
    values: dict[str, Any],
    where: str,
    source: Path | None,
    swept: dict[str, str] | None = None,
) -> Options:
    """Validated options; ``swept`` maps each option set by a sweep to where it was set."""
    try:
        return entry.cls.Options(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        if swept and name in swept:
            value = json.dumps(values[name], default=str)
            raise ConfigError(
                f"{swept[name]}: bad value {value} for option {name!r} of method "
                f"{entry.id!r}: {first['msg']}",
                path=source,
            ) from None
        known = ", ".join(entry.cls.Options.model_fields) or "none"
        raise ConfigError(
            f"{where}.options.{describe_validation_error(exc)}",
            path=source,
            fix=f"options of {kind} {entry.id!r}: {known}",
        ) from None


def _sweep_points(config: RunConfig, registry: Registry, source: Path | None) -> list[Component]:
    """Every method at every point of its sweep grid, in the listed order.

    A method's own ``sweep`` beats the top-level one, and both beat its fixed ``options``.
    In a grid the first swept option varies slowest (top-level options before the method's).
    """
    entries = [
        _entry(registry, "method", spec.id, f"methods[{i}]", source)
        for i, spec in enumerate(config.methods)
    ]
    for name in config.sweep:
        if not any(name in entry.cls.Options.model_fields for entry in entries):
            listing = "; ".join(
                f"{entry.id}: {', '.join(entry.cls.Options.model_fields) or 'none'}"
                for entry in {e.id: e for e in entries}.values()
            )
            raise ConfigError(
                f"sweep.{name}: no listed method has the option {name!r}",
                path=source,
                fix=f"options of the methods: {listing}",
            )
    components = []
    for i, (spec, entry) in enumerate(zip(config.methods, entries, strict=True)):
        fields = entry.cls.Options.model_fields
        for name in spec.sweep:
            if name not in fields:
                raise ConfigError(
                    f"methods[{i}].sweep.{name}: method {entry.id!r} has no option {name!r}",
                    path=source,
                    fix=f"options of method {entry.id!r}: {', '.join(fields) or 'none'}",
                )
        sweep = {k: v for k, v in config.sweep.items() if k in fields}
        swept = {k: f"sweep.{k}" for k in sweep}
        sweep.update(spec.sweep)
        swept.update({k: f"methods[{i}].sweep.{k}" for k in spec.sweep})
        for point in itertools.product(*sweep.values()):
            chosen = dict(zip(sweep, point, strict=True))
            values = {**spec.options, **chosen}
            options = _options(entry, "method", values, f"methods[{i}]", source, swept)
            components.append(Component(entry, options, _point_name(spec.name, entry.id,
                                                                       options, chosen)))
    return components


def _point_name(
    name: str | None, ident: str, options: Options, chosen: dict[str, Any]
) -> str | None:
    """The display name of one sweep point: ``name[option=value]`` of its swept options for a
    named method; for an unnamed one ``method[...]`` of its non-default options and swept
    options (a swept value equal to the default is named too), shortened to the swept options
    when that would be too long. None: the method's default name."""
    values = options.model_dump(mode="json")
    swept = {k: values[k] for k in chosen}
    if name:
        return f"{name}[{option_list(swept)}]" if swept else name
    if not swept:
        return None
    shown = dict(sorted({**non_default_options(options), **swept}.items()))
    full = f"{ident}[{option_list(shown)}]"
    return full if len(full) <= MAX_NAME else f"{ident}[{option_list(swept)}]"


def _deterministic(method: Component) -> bool:
    return method.entry.cls.is_deterministic(method.options)


def make_plan(config: RunConfig, registry: Registry, source: Path | None = None) -> Plan:
    """Validate ids and options; expand methods x sweep points x datasets.

    Raises ConfigError naming ``source``.
    """
    for field in ("methods", "datasets", "metrics"):
        if not getattr(config, field):
            raise ConfigError(f"{field}: the list is empty", path=source, fix="name at least one")
    if not config.seeds:
        raise ConfigError("seeds: the list is empty", path=source, fix="e.g. seeds: [0]")
    methods = _sweep_points(config, registry, source)
    datasets = [
        _component(registry, "dataset", spec, f"datasets[{i}]", source)
        for i, spec in enumerate(config.datasets)
    ]
    metrics = [
        _component(registry, "metric", spec, f"metrics[{i}]", source)
        for i, spec in enumerate(config.metrics)
    ]
    for kind, items in (("method", methods), ("dataset", datasets), ("metric", metrics)):
        seen: set[tuple[str, str]] = set()
        for item in items:
            key = (item.id, json.dumps(item.options_json(), sort_keys=True))
            if key in seen:
                what = f" ({experiment_name(item)})" if kind == "method" else ""
                raise ConfigError(
                    f"{kind} {item.id!r} is listed twice with the same options{what}",
                    path=source,
                    fix="remove the repeat (a sweep value may equal another after conversion)",
                )
            seen.add(key)
    metric_ids = [m.id for m in metrics]
    if len(set(metric_ids)) != len(metric_ids):
        raise ConfigError(
            "a metric id is listed twice; protocols are told apart by id", path=source
        )
    for metric in metrics:
        needs = (*metric.entry.cls.needs, *metric.entry.cls.reference_needs)
        try:  # unknown extractor ids (did you mean) and cycles, before anything runs
            extractor_order(registry, needs)
        except BenchError as exc:
            raise ConfigError(f"metric {metric.id!r}: {exc.message}", path=source,
                              fix=exc.fix) from None
    seeds = tuple(config.seeds)
    units = [
        WorkUnit(m, d, seeds[:1] if _deterministic(m) else seeds, config.intermediate)
        for d in datasets
        for m in methods
    ]
    names: dict[tuple[str, str], WorkUnit] = {}
    for unit in units:
        other = names.setdefault((unit.experiment, unit.dataset.id), unit)
        if other is not unit:
            raise ConfigError(
                f"two methods on {unit.dataset.id!r} are called {unit.experiment!r}",
                path=source,
                fix="give each a distinct `name:` in its methods entry",
            )
    named: dict[str, WorkUnit] = {}
    for unit in units:
        other = named.setdefault(unit.record_id, unit)
        if other is not unit:
            raise ConfigError(
                f"{other.experiment} and {unit.experiment} on {unit.dataset.id!r} differ only in "
                "machine-specific options, so their records would share one file",
                path=source,
                fix="sweep or vary an option that changes what is computed",
            )
    return Plan(units=units, datasets=datasets, metrics=metrics, seeds=list(config.seeds))
