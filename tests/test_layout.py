"""The plugin folders must not shadow HuggingFace `datasets` (transformers looks it up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_from_root(code: str) -> str:
    """Run Python with the repo root first on sys.path, as `python -c` from the root does."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_plugin_folders_are_not_importable_packages_at_the_root():
    for folder in ("datasets", "metrics", "methods"):
        assert (ROOT / folder).is_dir()
        assert not (ROOT / folder / "__init__.py").exists(), folder


def test_import_datasets_from_repo_root_is_huggingface():
    out = run_from_root(
        "import datasets; print(datasets.__file__); print(callable(datasets.load_dataset))"
    )
    location, has_loader = out.splitlines()
    assert not location.startswith(str(ROOT / "datasets")), location
    assert has_loader == "True"


def test_transformers_sees_the_real_datasets_package():
    out = run_from_root(
        "from transformers.utils import import_utils as u; "
        "print(u._is_package_available('datasets', return_version=True)[1])"
    )
    assert out not in ("N/A", "")  # a version: the real distribution, not our folder


def test_plugin_packages_import_under_their_own_names():
    out = run_from_root(
        "import auhead_bench_datasets, auhead_bench_metrics, "
        "auhead_bench_methods as m; print(m.__file__)"
    )
    assert out.startswith(str(ROOT / "methods" / "auhead_bench_methods"))
