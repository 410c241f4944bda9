"""bench/ scripts import only what `pip install -e '.[bench]'` installs (bench_extraction.py
imported imageio_ffmpeg, which nothing declared)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"auhead_bench", "auhead_bench_methods", "auhead_bench_metrics", "auhead_bench_datasets"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_module_bench_imports_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for r in project["optional-dependencies"].get("bench", [])}
    own = {p.stem for p in (ROOT / "bench").glob("*.py")} | {
        p.stem for p in (ROOT / "tests").glob("*.py")
    }
    by_module = md.packages_distributions()
    missing = {}
    for script in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in own or top in LOCAL:
                    continue
                dists = {d.lower().replace("_", "-") for d in by_module.get(top, [])}
                dists = dists or {top.lower().replace("_", "-")}  # not installed here
                if not dists & declared:
                    missing.setdefault(top, []).append(script.name)
    assert not missing, f"bench/ imports undeclared packages (add them to [bench]): {missing}"
