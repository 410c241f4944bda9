"""MEMO rebuilt in our code: its parameter layout, loading its files, and its forward.

The manifest (tests/data/memo_manifest.json.gz) was produced by importing MEMO's own classes
from a checkout of github.com/memoavatar/memo (commit a5aee30120d7) under our diffusers 0.42
(MEMO's model code imports and builds unchanged; einops installed beside it, xformers stubbed)
and building them on the meta device with the published diffusion-net config and SD1.5's
UNet config for the reference net, by tests/data/make_memo_manifest.py (its docstring gives
the command and the configs). Ours are built here at the real config on the meta device too,
so comparing every name and shape costs no memory. The forward is compared with MEMO's
classes by tests/data/check_memo_forward.py (README: result).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
from memo_tiny import conditions, tiny_net

from auhead_bench.errors import BenchError
from auhead_bench.weights import local_path, locate
from auhead_bench_methods.auhead.declarations import memo_specs
from auhead_bench_methods.auhead.memo.blocks import MotionMemory
from auhead_bench_methods.auhead.memo.config import MemoConfig
from auhead_bench_methods.auhead.memo.net import MemoNet

MANIFEST = Path(__file__).parent / "data" / "memo_manifest.json.gz"
PARTS = ("reference_net", "diffusion_net", "audio_proj", "image_proj", "audio_emotion_classifier")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_every_network_matches_memos_layout_exactly():
    """Each hub file loads with strict=True only if every name and shape is MEMO's."""
    with gzip.open(MANIFEST, "rt") as f:
        manifest = json.load(f)
    with torch.device("meta"):
        net = MemoNet(MemoConfig.real())
    for part in PARTS:
        ours, theirs = shapes(net.part(part)), manifest[part]
        assert sorted(set(theirs) - set(ours)) == [], part
        assert sorted(set(ours) - set(theirs)) == [], part
        assert {k: v for k, v in ours.items() if theirs[k] != v} == {}, part
    counts = {part: sum(v.numel() for v in net.part(part).state_dict().values())
              for part in ("reference_net", "diffusion_net")}
    # fp32 bytes = the hub's file sizes (3.43 GB, 6.71 GB)
    assert round(counts["reference_net"] * 4 / 1e9, 2) == 3.43
    assert round(counts["diffusion_net"] * 4 / 1e9, 2) == 6.71


def test_files_load_through_the_weights_registry(tmp_path, monkeypatch):
    """Tiny networks of the real classes, saved as MEMO ships them (safetensors, one file
    per hub folder), load strictly from where `auhead-bench weights pull` puts them."""
    from safetensors.torch import save_file

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    specs = memo_specs()
    source = tiny_net(1)
    for part in PARTS:
        path = local_path(specs[part])
        path.parent.mkdir(parents=True)
        state = {k: v.contiguous() for k, v in source.part(part).state_dict().items()}
        save_file(state, str(path))
    net = tiny_net(2)
    for part in PARTS:
        net.load_part(part, locate(specs[part]))
    for part in PARTS:
        for name, tensor in source.part(part).state_dict().items():
            assert torch.equal(net.part(part).state_dict()[name], tensor), (part, name)


def test_a_file_in_another_layout_is_refused(tmp_path):
    state = tiny_net().part("diffusion_net").state_dict()
    state.pop("conv_out.bias")
    torch.save(state, tmp_path / "diffusion.pt")
    with pytest.raises(BenchError, match="not MEMO's diffusion_net layout.*conv_out.bias"):
        tiny_net().load_part("diffusion_net", tmp_path / "diffusion.pt")


@torch.no_grad()
def test_diffusion_net_reads_reference_audio_emotion_and_memory():
    net = tiny_net()
    frames = net.cfg.n_sample_frames
    cond = conditions(net, 1, frames)
    z = torch.randn(1, 4, frames, 16, 16)
    out = net.diffusion_net(z, 500.0, cond)
    assert out.shape == z.shape
    assert cond.memory.mode == "read" and cond.memory.state  # built by the first call
    again = net.diffusion_net(z, 500.0, conditions(net, 1, frames))
    torch.testing.assert_close(out, again)
    for change in ("audio", "emotion", "reference", "past"):
        other = conditions(net, 1, frames, **{change: True})
        assert not torch.allclose(net.diffusion_net(z, 500.0, other), out, atol=1e-5), change
    # h_on = 0 (MEMO's uc rows) ignores the reference image, keeps the past frames
    off_a = conditions(net, 1, frames)
    off_a.h_on = torch.zeros(1)
    off_b = conditions(net, 1, frames, reference=True)
    off_b.h_on = torch.zeros(1)
    torch.testing.assert_close(net.diffusion_net(z, 500.0, off_a),
                               net.diffusion_net(z, 500.0, off_b))


@torch.no_grad()
def test_memory_carries_past_clips():
    """update adds the new past frames to the decayed memory; read leaves it as it is."""
    net = tiny_net()
    frames = net.cfg.n_sample_frames
    z = torch.randn(1, 4, frames, 16, 16)
    first = conditions(net, 1, frames)
    net.diffusion_net(z, 500.0, first)
    stored = {k: v[0].clone() for k, v in first.memory.state.items()}
    net.diffusion_net(z, 500.0, first)  # read: unchanged
    assert all(torch.equal(first.memory.state[k][0], v) for k, v in stored.items())
    later = conditions(net, 1, frames, past=True)
    later.memory = MotionMemory(first.memory.state, "update")
    with_history = net.diffusion_net(z, 500.0, later)
    fresh = conditions(net, 1, frames, past=True)
    assert not torch.allclose(net.diffusion_net(z, 500.0, fresh), with_history, atol=1e-6)


def test_training_drops_the_emotion_class_per_call():
    net = tiny_net()
    norm = net.diffusion_net.mid_block.audio_modules[0].transformer_blocks[0].norm1
    x, emotion = torch.randn(4, 3, norm.norm.normalized_shape[0]), torch.tensor([1, 1, 1, 1])
    norm.class_embedder.dropout = 1.0
    norm.train()
    none = norm(x, torch.full_like(emotion, net.cfg.emotion_classes))
    torch.testing.assert_close(norm(x, emotion), none)
    norm.eval()
    assert not torch.allclose(norm(x, emotion), none)
