"""Loads plugins from the ``auhead_bench`` entry-point group and builds the registry.

Built-in plugins are entry points of this distribution, loaded exactly like third-party
ones. Each entry point loads, and each registration hook runs, inside its own try: a broken
plugin is reported (``auhead-bench plugins``) and only breaks the runs that use its ids.
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from auhead_bench import hookspecs
from auhead_bench.dataset import Dataset
from auhead_bench.errors import BenchError, UnknownPluginError, one_line
from auhead_bench.extractor import Extractor
from auhead_bench.method import Method
from auhead_bench.metric import DistributionMetric, Metric, PerClipMetric
from auhead_bench.options import Options

ENTRY_POINT_GROUP = "auhead_bench"
KINDS: dict[str, type] = {
    "method": Method,
    "metric": Metric,
    "dataset": Dataset,
    "extractor": Extractor,
}


@dataclass
class PluginInfo:
    """Where a plugin came from: its entry point, distribution and version, and any error."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "errors": self.errors,
        }


@dataclass
class Registered:
    """A class some plugin registered, with its provenance."""

    kind: str
    cls: type
    plugin: PluginInfo

    @property
    def id(self) -> str:
        return self.cls.id


class Registry:
    """Every registered method, metric, dataset and extractor, by kind and id."""

    def __init__(self, pm: pluggy.PluginManager, plugins: list[PluginInfo]):
        self.pm = pm
        self.plugins = plugins
        self.entries: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        self.conflicts: dict[tuple[str, str], list[PluginInfo]] = {}

    def add(self, kind: str, cls: Any, plugin: PluginInfo) -> None:
        _check_class(kind, cls)
        table = self.entries[kind]
        if cls.id in table:
            owners = self.conflicts.setdefault((kind, cls.id), [table[cls.id].plugin])
            owners.append(plugin)
            message = f"duplicate {kind} id {cls.id!r}: registered by " + " and ".join(
                f"{p.name} ({p.distribution} {p.version})" for p in owners
            )
            for owner in owners:
                if message not in owner.errors:
                    owner.errors.append(message)
            return
        table[cls.id] = Registered(kind, cls, plugin)

    def get(self, kind: str, ident: str) -> Registered:
        """The class registered under ``ident``; a clear error if unknown or ambiguous."""
        if (kind, ident) in self.conflicts:
            owners = ", ".join(p.distribution or p.name for p in self.conflicts[(kind, ident)])
            raise BenchError(
                f"{kind} id {ident!r} is registered by several plugins ({owners})",
                fix="uninstall one of them; `auhead-bench plugins` shows both",
            )
        try:
            return self.entries[kind][ident]
        except KeyError:
            broken = [p for p in self.plugins if p.errors]
            error = UnknownPluginError(kind, ident, self.entries[kind])
            if broken:
                names = ", ".join(p.name for p in broken)
                error.args = (f"{error.args[0]} (plugins that failed to load: {names})",)
            raise error from None

    def ids(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def added_directly(self) -> list[Registered]:
        """Classes registered with ``add`` by the caller, not through an entry point (a
        script's own method, a test's): a Ray worker registers them again on its side."""
        loaded = {id(info) for info in self.plugins}
        return [
            entry
            for table in self.entries.values()
            for entry in table.values()
            if id(entry.plugin) not in loaded
        ]


def _check_class(kind: str, cls: Any) -> None:
    base = KINDS[kind]
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise TypeError(f"register() got {cls!r}, which is not a subclass of {base.__name__}")
    for attr in ("id", "description"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise TypeError(f"{cls.__name__} must set a non-empty string `{attr}`")
    # imported here: validation imports the record models, which `--help` need not load
    from auhead_bench.validation import id_problem

    problem = id_problem(cls.id)  # ids become CSV headers, anchors and file names
    if problem is not None:
        raise TypeError(f"{cls.__name__}.id {problem}")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise TypeError(f"{cls.__name__} does not implement {missing}")
    options = getattr(cls, "Options", Options)
    if not (inspect.isclass(options) and issubclass(options, Options)):
        raise TypeError(f"{cls.__name__}.Options must subclass auhead_bench.Options")
    if kind == "metric":
        if not isinstance(getattr(cls, "higher_is_better", None), bool):
            raise TypeError(f"{cls.__name__} must set `higher_is_better` to True or False")
        if not issubclass(cls, PerClipMetric | DistributionMetric):
            raise TypeError(f"{cls.__name__} must subclass PerClipMetric or DistributionMetric")


def _distribution(ep: md.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def load_plugins() -> Registry:
    """A fresh plugin manager with every entry point of the group loaded, and its registry."""
    pm = pluggy.PluginManager("auhead_bench")
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist, version = _distribution(ep)
        info = PluginInfo(name=ep.name, module=ep.value, distribution=dist, version=version)
        infos.append(info)
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a plugin may fail in any way; isolate it
            info.errors.append(f"failed to load: {type(exc).__name__}: {one_line(exc)}")
    by_name = {info.name: info for info in infos}
    for name, plugin in pm.list_name_plugin():
        if name in by_name:
            by_name[name].hooks = sorted(
                h.name for h in pm.get_hookcallers(plugin) or [] if not h.name.startswith("_")
            )
    registry = Registry(pm, infos)
    for kind in KINDS:
        caller = getattr(pm.hook, f"register_{kind}s")
        for impl in caller.get_hookimpls():
            info = by_name.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "", None, None)
            register: Callable[[Any], None] = _registrar(registry, kind, info)
            try:
                impl.function(register=register)
            except Exception as exc:  # isolate a broken registration hook
                info.errors.append(
                    f"register_{kind}s failed: {type(exc).__name__}: {one_line(exc)}"
                )
    return registry


COMMANDS_HOOK = "register_commands"


def _may_add_commands(ep: md.EntryPoint) -> bool:
    """Whether the entry point's module can implement ``register_commands``: its source names
    the hook (defined there or imported) or star-imports. Read, not imported; an entry point
    naming an object (``module:attr``) or a module whose source cannot be read counts."""
    import importlib.util

    if ep.attr:
        return True
    try:
        spec = importlib.util.find_spec(ep.module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return True
        with open(spec.origin, encoding="utf-8") as f:
            source = f.read()
    except Exception:
        return True
    return COMMANDS_HOOK in source or "import *" in source


def command_entry_points() -> list[md.EntryPoint]:
    """The entry points that may add commands (``_may_add_commands``), by name."""
    return [
        ep for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        if _may_add_commands(ep)
    ]


def commands_fingerprint(eps: list[md.EntryPoint]) -> str:
    """Changes when the command plugins do: their entry points, distributions' versions, and
    the size and mtime of every .py file beside each plugin module (an editable install's
    edits included). Keys the cached command listing that `--help` shows."""
    import hashlib
    import importlib.util
    import json
    from pathlib import Path

    parts: list[Any] = []
    for ep in eps:
        parts.append([ep.name, ep.value, *_distribution(ep)])
        try:
            spec = importlib.util.find_spec(ep.module)
        except Exception:
            spec = None
        if spec is not None and spec.origin:
            for path in sorted(Path(spec.origin).parent.glob("*.py")):
                stat = path.stat()
                parts.append([str(path), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def add_plugin_commands(cli: Any, eps: list[md.EntryPoint] | None = None) -> list[str]:
    """Run every plugin's ``register_commands(cli=cli)``, importing only the entry points that
    may implement it (not the whole registry: the metric plugins import torch and py-feat).
    Each runs in its own try, like registration; returns what failed, one line each."""
    pm = pluggy.PluginManager("auhead_bench")
    pm.add_hookspecs(hookspecs)
    errors = []
    for ep in command_entry_points() if eps is None else eps:
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # reported by `auhead-bench plugins` too
            errors.append(f"plugin {ep.name} failed to load: {type(exc).__name__}: "
                          f"{one_line(exc)}")
    for impl in getattr(pm.hook, COMMANDS_HOOK).get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:
            errors.append(f"plugin {impl.plugin_name} failed to add its commands: "
                          f"{type(exc).__name__}: {one_line(exc)}")
    return errors


def _registrar(registry: Registry, kind: str, info: PluginInfo) -> Callable[[Any], None]:
    def register(cls: Any) -> None:
        registry.add(kind, cls, info)

    return register


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry (entry points are read once per process)."""
    return load_plugins()
