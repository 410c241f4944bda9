"""No package's modules import each other in a cycle, at any level: the core and the plugin
packages (metrics, methods, datasets) alike.

A cycle hidden in function-level imports (the runner and the Ray executor once imported each
other that way) still ties two modules into one: neither can be read, tested or replaced
alone. Every import counts here: module level, inside functions and under TYPE_CHECKING.

``from auhead_bench import Name`` counts as an edge to the submodule the package's
``__init__`` takes ``Name`` from (or to that submodule itself when ``Name`` is one), not to
the package: otherwise every submodule that ``__init__`` re-exports would form a trivial
cycle with it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = "auhead_bench"
PACKAGES = (PACKAGE, "auhead_bench_metrics", "auhead_bench_methods", "auhead_bench_datasets")


def module_files(package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package``."""
    root = Path(importlib.import_module(package).__file__).parent
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def absolute(node: ast.ImportFrom, module: str, modules: dict[str, Path]) -> str:
    """The module an ``ImportFrom`` names, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package(module, modules):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def reexports(package: str, modules: dict[str, Path]) -> dict[str, str]:
    """Names a package's ``__init__`` takes from its submodules: name -> submodule."""
    found = {}
    for node in ast.walk(ast.parse(modules[package].read_text())):
        if isinstance(node, ast.ImportFrom):
            source = absolute(node, package, modules)
            if source in modules and source != package:
                for alias in node.names:
                    found[alias.asname or alias.name] = source
    return found


def import_graph(package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in its file."""
    modules = module_files(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = absolute(node, name, modules)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in modules:
                        targets.append(submodule)
                    elif is_package(source, modules):
                        targets.append(reexports(source, modules).get(alias.name, source))
                    else:
                        targets.append(source)
            for target in targets:
                while target and target not in modules:  # e.g. a.b.function -> a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_has_an_import_cycle(package):
    cycle = find_cycle(import_graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_function_level_and_reexported_imports():
    """The checker itself: it follows imports inside functions and through ``__init__``."""
    graph = import_graph()
    assert "auhead_bench.ray_executor" in graph["auhead_bench.runner"]  # inside a function
    assert "auhead_bench.metric" in graph[PACKAGE]
    assert PACKAGE not in graph["auhead_bench.metric"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_metric_parity_checks_never_import_their_metric():
    """One pattern for every metric's parity checks: the metric module registers them and the
    checks import only what the metric is built from (lse.py and lse_parity.py once imported
    each other, a cycle hidden in a hook and a function)."""
    graph = import_graph("auhead_bench_metrics")
    assert "auhead_bench_metrics.lse_parity" in graph["auhead_bench_metrics.lse"]
    assert "auhead_bench_metrics.lse" not in graph["auhead_bench_metrics.lse_parity"]
    for module, targets in graph.items():
        if module.endswith("_parity"):
            metric = module.removesuffix("_parity")
            assert metric not in targets, f"{module} imports {metric}"
