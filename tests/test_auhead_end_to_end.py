"""The whole `auhead` method inside the runner: a tiny random Qwen2-Audio for stage 1 (real
classes, loaded through the real code) and a tiny random stage 2 (the sd15_au_concat stand-in
for every prompt mode, guidance on and off; Hallo v1's classes for `auhead` and
`auhead_gt_aus`). Weights are random, so the numbers mean nothing; the pipeline must still run,
parse what it can, and return a valid video and AU track per clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hallo_tiny import tiny_backbone
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
            "model": str(stage2), "backbone": "sd15_au_concat", "steps": 2, "guidance": guidance,
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


def test_auhead_on_hallo_v1_runs_end_to_end(models, tmp_path, video_factory):
    """Both methods on the hallo_v1 backbone, at a tiny config of its classes: 6 frames are
    two windows of 4, the second continuing from the first's motion frames."""
    from auhead_bench_methods.auhead.hallo.sampler import new_adapter, save_model

    stage1, _ = models
    backbone = tiny_backbone()
    adapter = new_adapter(backbone, hidden_dim=16)
    save_model(tmp_path / "hallo-stage2", adapter, backbone)
    video_factory("data/talk.mp4", frames=6, size=40)
    np.save(tmp_path / "talk_aus.npy",
            np.random.default_rng(0).random((6, N_AUS)).astype(np.float32))
    (tmp_path / "labels.csv").write_text(
        "clip_id,emotion,au_labels\ntalk,happy,talk_aus.npy\n")
    common = {"model": str(tmp_path / "hallo-stage2"), "steps": 2, "face_embedding": "zeros",
              "backbone": "hallo_v1"}
    config = RunConfig.model_validate({
        "datasets": [{"id": "folder", "options": {"root": str(tmp_path / "data"),
                                                  "labels": str(tmp_path / "labels.csv")}}],
        "methods": [
            {"id": "auhead", "options": {**common, "stage1": {
                "model": str(stage1), "prompt_mode": "A->AU", "max_new_tokens": 24}}},
            {"id": "auhead_gt_aus", "options": common},
        ],
        "metrics": ["psnr_rgb"],
        "device": "cpu",
        "cache_dir": str(tmp_path / "cache"),
    })
    records = Runner(config, tmp_path / "out").run()
    assert len(records) == 2
    for record in records:
        (generation,) = record.generations
        assert generation.status == "ok", generation.error
        assert generation.info["backbone"] == "hallo_v1" and generation.info["windows"] == 2
        assert record.metrics["psnr_rgb"].status == "ok"
        assert any(k.startswith("stage2/backbone/net.pth") for k in record.provenance.weights)
