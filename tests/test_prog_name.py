"""`--help` names the program as users type it, however the process was started (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        ([], "Usage: auhead-bench [OPTIONS] COMMAND"),
        # `run` restarts itself as `python -m auhead_bench.cli` (auhead_bench.malloc)
        (["run"], "Usage: auhead-bench run [OPTIONS]"),
        (["table"], "Usage: auhead-bench table [OPTIONS] RUN_DIRS..."),
        (["leaderboard", "build"], "Usage: auhead-bench leaderboard build [OPTIONS]"),
    ],
)
def test_help_shows_auhead_bench_not_python_m(args, usage):
    result = subprocess.run(
        [sys.executable, "-m", "auhead_bench.cli", *args, "--help"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(usage), result.stdout[:200]
    assert "python -m" not in result.stdout and "auhead_bench.cli" not in result.stdout
