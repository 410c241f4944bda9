"""Kill -9 a run at several points, start it again: same records as a run never killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auhead_bench.records import load_record, without_measurements

# A run in its own process, with a slow method so that a kill lands mid-work.
SCRIPT = """
import sys, time
from pathlib import Path
from auhead_bench import Generation, Method
from auhead_bench.config import RunConfig
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.runner import Runner

class SlowCopy(Method):
    id = "slow_copy"
    description = "copies the ground truth, slowly"
    def generate(self, clip, options, seed, out_path):
        time.sleep(0.4)
        out_path.write_bytes(clip.video.read_bytes())
        return Generation()

root, cache, out = map(Path, sys.argv[1:4])
registry = load_plugins()
registry.add("method", SlowCopy, PluginInfo("tests", "tests", "tests", "0"))
config = RunConfig.model_validate({
    "datasets": [{"id": "folder", "options": {"root": str(root)}}],
    "methods": ["slow_copy", "static_frame"],
    "metrics": ["psnr_rgb", "ssim_gauss11_rgb"],
    "seeds": [0, 1],
    "cache_dir": str(cache),
})
Runner(config, out, registry=registry).run()
"""


# Records carry the git commit; commits made while the test runs must not change it.
ENV = {**os.environ, "GIT_DIR": "/nonexistent-repo"}


@pytest.fixture
def setup(video_factory, tmp_path):
    for index in range(3):
        video_factory(f"data/clip{index}.mp4", seed=index)
    script = tmp_path / "run_slow.py"
    script.write_text(SCRIPT)
    return tmp_path / "data", script


def records(out: Path) -> dict[str, dict]:
    """Records by file name, without measured seconds (no two runs share those)."""
    return {p.name: without_measurements(load_record(p)) for p in (out / "records").glob("*.json")}


def run(script: Path, root: Path, cache: Path, out: Path) -> None:
    subprocess.run(
        [sys.executable, str(script), str(root), str(cache), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
        env=ENV,
    )


def run_and_kill(script: Path, root: Path, cache: Path, out: Path, kind: str, count: int) -> None:
    """Start the run; SIGKILL it as soon as ``count`` cache entries of ``kind`` exist."""
    process = subprocess.Popen(
        [sys.executable, str(script), str(root), str(cache), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if len(list((cache / kind).glob("*/*"))) >= count:
                os.kill(process.pid, signal.SIGKILL)
                break
            if process.poll() is not None:
                pytest.fail(f"the run ended before {count} {kind} entries existed")
            time.sleep(0.02)
        else:
            pytest.fail("timed out waiting for the kill point")
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


def test_killed_runs_resume_to_identical_records(setup, tmp_path):
    root, script = setup
    reference_out = tmp_path / "reference"
    run(script, root, tmp_path / "cache-ref", reference_out)
    reference = records(reference_out)
    assert len(reference) == 2

    cache, out = tmp_path / "cache", tmp_path / "out"
    # Kill mid-generation, then mid-scoring, then resume to the end.
    for kind, count in (("generations", 2), ("scores", 3)):
        run_and_kill(script, root, cache, out, kind, count)
    finished = {p: p.stat().st_mtime_ns for p in (cache / "generations").glob("*/*")}
    assert len(finished) >= 2
    run(script, root, cache, out)

    assert records(out) == reference
    # Finished generations were reused, not redone.
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
