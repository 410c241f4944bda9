"""The plugin system: hooks documented, built-ins loaded like third-party plugins, errors clear."""

from __future__ import annotations

import inspect
from pathlib import Path

import pluggy
import pytest

from auhead_bench import Clip, Generation, Method, Options, hookspecs
from auhead_bench.errors import BenchError, UnknownPluginError
from auhead_bench.plugins import PluginInfo, Registry, get_registry, load_plugins

README = Path(__file__).resolve().parents[1] / "README.md"


def hook_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "auhead_bench_spec")
    ]


def test_every_hook_has_a_docstring_and_is_in_the_readme():
    names = hook_names()
    assert {
        "register_methods",
        "register_metrics",
        "register_datasets",
        "register_extractors",
        "register_commands",
        "run_started",
        "clip_generated",
        "metric_computed",
        "run_finished",
    } <= set(names)
    readme = README.read_text()
    for name in names:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"`{name}" in readme, f"hook {name} is not documented in README.md"


def test_builtins_come_from_entry_points_of_this_distribution():
    registry = load_plugins()
    for kind, ident in [
        ("method", "ground_truth"),
        ("method", "static_frame"),
        ("metric", "psnr_rgb"),
        ("metric", "ssim_gauss11_rgb"),
        ("dataset", "demo"),
        ("dataset", "folder"),
    ]:
        entry = registry.get(kind, ident)
        assert entry.plugin.distribution == "auhead-bench"
        assert entry.plugin.version
    broken = {p.name: p.errors for p in registry.plugins if p.errors}
    assert not broken, broken


def test_unknown_id_suggests_close_matches():
    with pytest.raises(UnknownPluginError) as info:
        get_registry().get("method", "static_fram")
    assert "did you mean 'static_frame'" in str(info.value)
    assert "auhead-bench ls methods" in str(info.value)


class _Dummy(Method):
    id = "dummy"
    description = "test"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        return Generation()


def _registry() -> Registry:
    return Registry(pluggy.PluginManager("auhead_bench"), [])


def test_duplicate_ids_are_an_error_naming_both_plugins():
    registry = _registry()
    first = PluginInfo("one", "one", "dist-one", "1.0")
    second = PluginInfo("two", "two", "dist-two", "2.0")
    registry.add("method", _Dummy, first)
    registry.add("method", _Dummy, second)
    with pytest.raises(BenchError) as info:
        registry.get("method", "dummy")
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value)
    assert first.errors and second.errors  # `auhead-bench plugins` shows the conflict


@pytest.mark.parametrize(
    "bad", [object, type("NoId", (Method,), {"description": "x", "generate": lambda *a: None})]
)
def test_malformed_registrations_are_rejected(bad):
    with pytest.raises(TypeError):
        _registry().add("method", bad, PluginInfo("p", "p", None, None))


def test_options_forbid_unknown_fields():
    class MyOptions(Options):
        scale: float = 1.0

    with pytest.raises(Exception, match="extra"):
        MyOptions(scael=2.0)
