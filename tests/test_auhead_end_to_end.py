"""The whole `auhead` method inside the runner: a tiny random Qwen2-Audio for stage 1 (real
classes, loaded through the real code) and a tiny random stage 2, every prompt mode, guidance
on and off. Weights are random, so the numbers mean nothing; the pipeline must still run,
parse what it can, and return a valid video and AU track per clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_auhead_stage2 import randomise_outputs, tiny_parts

from auhead_bench.cache import Cache
from auhead_bench.config import RunConfig
from auhead_bench.runner import Runner
from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.stage1 import save_tiny_random_qwen2_audio
from auhead_bench_methods.auhead.stage2 import save_stage2


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("auhead-models")
    stage1 = save_tiny_random_qwen2_audio(root / "stage1")
    backbone, adapter = tiny_parts()
    randomise_outputs(adapter)
    save_stage2(root / "stage2", backbone, adapter)
    return Path(stage1), root / "stage2"


def test_auhead_runs_end_to_end_for_every_prompt_mode(models, tmp_path, video_factory):
    stage1, stage2 = models
    video_factory("data/talk.mp4", frames=5, size=40)
    (tmp_path / "labels.csv").write_text("clip_id,emotion\ntalk,happy\n")

    def auhead(mode: str, guidance: bool = True) -> dict:
        return {"id": "auhead", "options": {
            "model": str(stage2), "steps": 2, "guidance": guidance,
            "stage1": {"model": str(stage1), "prompt_mode": mode, "max_new_tokens": 24},
        }}

    config = RunConfig.model_validate({
        "datasets": [{"id": "folder", "options": {"root": str(tmp_path / "data"),
                                                  "labels": str(tmp_path / "labels.csv")}}],
        "methods": [auhead("A->AU"), auhead("A->E->AU"), auhead("A+E->AU"),
                    auhead("A->E->AU", guidance=False)],
        "metrics": ["psnr_rgb"],
        "device": "cpu",
        "cache_dir": str(tmp_path / "cache"),
    })
    records = Runner(config, tmp_path / "out").run()
    assert len(records) == 4
    cache = Cache(tmp_path / "cache")
    for record in records:
        (generation,) = record.generations
        assert generation.status == "ok", generation.error
        assert record.metrics["psnr_rgb"].status == "ok"
        assert "parse_report" in generation.info  # what the parser could not read is recorded
        track = np.load(cache.path("generations", generation.key) / "arrays.npz")["au_track"]
        assert track.shape == (5, N_AUS) and np.all((track >= 0) & (track <= 1))
    # Guidance changes the frames the same stage-1 output is rendered into.
    with_guidance, without = records[1].generations[0], records[3].generations[0]
    assert with_guidance.content_sha256 != without.content_sha256
