"""Layering: plugins import only the core ``auhead_bench`` and their own package.

Shared domain code (AU names, emotions, faces) belongs to the core, below every plugin folder:
a plugin importing another folder's package makes one plugin distribution need another and
lets the folders grow import cycles. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "auhead_bench"
PLUGINS = {
    "methods": "auhead_bench_methods",
    "metrics": "auhead_bench_metrics",
    "datasets": "auhead_bench_datasets",
}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def top_package(module: str) -> str:
    return module.split(".", 1)[0]


def violations(files: Iterator[Path], forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path)
        if top_package(module) in forbidden
    ]


def test_the_scan_sees_every_plugin_folder():
    for folder, package in PLUGINS.items():
        assert (ROOT / folder / package / "__init__.py").is_file(), package


def test_plugins_import_no_other_plugin_package():
    found = []
    for folder, package in PLUGINS.items():
        others = set(PLUGINS.values()) - {package}
        found += violations(sorted((ROOT / folder).rglob("*.py")), others)
    assert not found, "plugin imports another plugin folder:\n" + "\n".join(found)


def test_core_imports_no_plugin_package():
    found = violations(sorted((ROOT / CORE).rglob("*.py")), set(PLUGINS.values()))
    assert not found, "core imports a plugin package:\n" + "\n".join(found)


def test_the_scan_catches_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "def f():\n"
        "    from auhead_bench_metrics.face_track import FaceTrack\n"
        "    import auhead_bench_methods.auhead as a\n"
    )
    assert [m for _, m in imported_modules(sample)] == [
        "os", "auhead_bench_metrics.face_track", "auhead_bench_methods.auhead",
    ]  # fmt: skip
