"""bench/gpu_check.py without a GPU: one line and exit 2, at once (before any model is built).
Its measuring code was rehearsed on CPU with `--tiny` (bench/README.md); a test cannot afford
that (minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_without_cuda_it_stops_at_once_with_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--out", str(tmp_path / "o.json"),
         "--workdir", str(tmp_path / "w")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no CUDA device" in lines[0]
    assert result.stdout == "" and not (tmp_path / "w").exists()  # nothing built or written


def test_the_table_reports_an_unavailable_backbone_and_extractor():
    sys.path.insert(0, str(REPO / "bench"))
    import gpu_check

    result = {
        "device": "X", "backbones": {
            "hallo_v1": {"guided_batched": {"s_per_step": 0.5, "peak_gib": 30.0},
                         "one_evaluation": {"s_per_step": 0.2, "peak_gib": 20.0},
                         "train_step": {"unavailable": "OOM"}},
            "memo": {"unavailable": "auhead_bench_methods.auhead.memo does not import"}},
        "extractors": {"fps": {"face_track": {"label": "face track", "cpu": {
            "frames_per_s": 30.0}, "cuda": {"unavailable": "no"}}}},
    }
    text = gpu_check.table(result)
    assert "| hallo_v1 | 0.500 | 30.0 | 0.200 | 20.0 | unavailable |" in text
    assert "| memo | unavailable: auhead_bench_methods.auhead.memo" in text
    assert "| face track | unavailable | 30.0 |" in text
    assert set(gpu_check.BACKBONES) == {"hallo_v1", "memo"}
