"""One rule for tests that need what the README's test command does not install.

`pip install -e '.[test]'` is the contract: a test needing more (InsightFace, the ffmpeg
binary, Chromium) skips with the reason and the install command where it is missing. Under
CI (CI=true) nothing skips: `.ci/run` installs all of them, so a missing one is a failure
there instead of a silent skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

IN_CI = bool(os.environ.get("CI"))


def _missing_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.split(".")[0]) is None
    except (ImportError, ValueError):
        return True


def needs_module(name: str, install: str) -> pytest.MarkDecorator:
    """Skip (outside CI) when ``name`` cannot be imported; ``install`` says how to get it."""
    return pytest.mark.skipif(
        _missing_module(name) and not IN_CI,
        reason=f"the optional package {name} is not installed ({install})",
    )


def needs_binary(name: str, install: str) -> pytest.MarkDecorator:
    """Skip (outside CI) when the program ``name`` is not on PATH."""
    return pytest.mark.skipif(
        shutil.which(name) is None and not IN_CI,
        reason=f"the program {name} is not on PATH ({install})",
    )


def needs_file(path: Path, install: str) -> pytest.MarkDecorator:
    """Skip (outside CI) when ``path`` does not exist."""
    return pytest.mark.skipif(
        not Path(path).exists() and not IN_CI,
        reason=f"{path} is absent ({install})",
    )


def import_or_skip(name: str, install: str) -> ModuleType:
    """``import name`` inside a test, skipping (outside CI) with the reason when missing."""
    if _missing_module(name) and not IN_CI:
        pytest.skip(f"the optional package {name} is not installed ({install})")
    return importlib.import_module(name)


INSIGHTFACE = "pip install --no-deps insightface==2.1"
FFMPEG = "apt-get install ffmpeg"
CHROMIUM = "apt-get update && apt-get install -y chromium"
PLAYWRIGHT = "pip install playwright"
PDFLATEX = "apt-get install --no-install-recommends texlive-latex-base texlive-latex-recommended"
