"""Hallo v1 rebuilt in our code: its parameter layout, loading its files, and its forward.

The manifest (tests/data/hallo_v1_manifest.json.gz) was produced by importing Hallo's own
classes from a checkout of fudan-generative-vision/hallo (commit 8fd7c572a3d4) and building
them on the meta device with its configs, by tests/data/make_hallo_manifest.py (its
docstring gives the command). Ours are built here at the real config on the meta device too,
so comparing every name and shape costs no memory.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from auhead_bench.errors import BenchError
from auhead_bench.weights import local_path, locate
from auhead_bench_methods.auhead.declarations import hallo_specs
from auhead_bench_methods.auhead.hallo.config import HalloConfig
from auhead_bench_methods.auhead.hallo.net import HalloNet
from auhead_bench_methods.auhead.hallo.unet3d import Conditions, RegionMasks

MANIFEST = Path(__file__).parent / "data" / "hallo_v1_manifest.json.gz"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def manifest() -> dict:
    with gzip.open(MANIFEST, "rt") as f:
        return json.load(f)


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_net_matches_hallos_layout_exactly():
    """net.pth loads with strict=True only if every name and shape is Hallo's."""
    with torch.device("meta"):
        net = HalloNet(HalloConfig.real())
    ours, theirs = shapes(net), manifest()["net.pth"]
    assert sorted(set(theirs) - set(ours)) == []
    assert sorted(set(ours) - set(theirs)) == []
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}
    assert len(ours) == 2656  # the count Hallo's classes give: nothing was filtered away


def test_motion_modules_match_animatediff_v2_layout():
    with torch.device("meta"):
        net = HalloNet(HalloConfig.real())
    ours = {k: v for k, v in shapes(net.denoising_unet).items() if ".motion_modules." in k}
    assert ours == manifest()["mm_sd_v15_v2.ckpt"]
    assert ours["mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0."
                "attention_blocks.0.pos_encoder.pe"] == [1, 32, 1280]


def tiny_net(seed: int = 0) -> HalloNet:
    torch.manual_seed(seed)
    net = HalloNet(HalloConfig.tiny())
    with torch.no_grad():  # trained weights are not zero: wake the zero-initialised layers
        for name, p in net.named_parameters():
            if "zero_conv" in name or "proj_out" in name or "conv_out" in name:
                p.normal_(0, 0.2)
    return net.eval()


def test_files_load_through_the_weights_registry(tmp_path, monkeypatch):
    """Tiny networks of the real classes, saved as Hallo ships them (a torch state dict),
    load strictly from where `auhead-bench weights pull` puts them."""
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path))
    specs = hallo_specs()
    source = tiny_net(1)
    for key, state in (
        ("net", source.state_dict()),
        ("motion_module", {k: v for k, v in source.denoising_unet.state_dict().items()
                           if ".motion_modules." in k}),
    ):
        path = local_path(specs[key])
        path.parent.mkdir(parents=True)
        torch.save(state, path)
    net = tiny_net(2)
    net.load_net(locate(specs["net"]))
    for name, tensor in source.state_dict().items():
        assert torch.equal(net.state_dict()[name], tensor), name
    fresh = tiny_net(3)
    fresh.load_motion_modules(locate(specs["motion_module"]))
    motion = [k for k in source.denoising_unet.state_dict() if ".motion_modules." in k]
    assert all(torch.equal(fresh.denoising_unet.state_dict()[k],
                           source.denoising_unet.state_dict()[k]) for k in motion)


def test_a_file_in_another_layout_is_refused(tmp_path):
    state = tiny_net().state_dict()
    state.pop("audioproj.norm.weight")
    torch.save(state, tmp_path / "net.pth")
    with pytest.raises(BenchError, match="not Hallo's net.pth layout.*audioproj.norm.weight"):
        tiny_net().load_net(tmp_path / "net.pth")
    torch.save({"down_blocks.0.resnets.0.conv1.weight": torch.zeros(1)}, tmp_path / "mm.ckpt")
    with pytest.raises(BenchError, match="motion module"):
        tiny_net().load_motion_modules(tmp_path / "mm.ckpt")


def conditions(net: HalloNet, batch: int, frames: int, seed: int = 0) -> Conditions:
    cfg = net.cfg
    g = torch.Generator().manual_seed(seed)
    latent = 16  # the tiny config's 32 px over a factor-2 VAE
    levels = [torch.ones(batch, (latent // 2**d) ** 2) for d in range(len(cfg.block_out_channels))]
    audio = torch.randn(batch, frames, cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                        generator=g)
    return Conditions(
        image_tokens=net.imageproj(torch.randn(batch, cfg.face_embedding_dim, generator=g)),
        audio_tokens=net.audioproj(audio),
        masks=RegionMasks(levels, levels, levels),
    )


@torch.no_grad()
def test_denoiser_reads_reference_and_motion_frames():
    net = tiny_net()
    frames, motion = 3, net.cfg.n_motion_frames
    cond = conditions(net, 1, frames)
    z = torch.randn(1, 4, frames, 16, 16)
    plain = net.denoising_unet(z, 500, cond)
    assert plain.shape == z.shape
    refs = torch.randn(1 + motion, 4, 16, 16)
    cond.bank = net.writer(refs, cond.image_tokens.repeat(1 + motion, 1, 1), 1 + motion)
    read = net.denoising_unet(z, 500, cond)
    assert not torch.allclose(read, plain, atol=1e-5)  # the reference is attended to
    # h_on = 0 (Hallo's unconditional rows) drops the reference image, keeps motion frames
    other = refs.clone()
    other[0] = torch.randn(4, 16, 16)
    cond.h_on = torch.zeros(1)
    off_a = net.denoising_unet(z, 500, cond)
    cond.bank = net.writer(other, cond.image_tokens.repeat(1 + motion, 1, 1), 1 + motion)
    off_b = net.denoising_unet(z, 500, cond)
    torch.testing.assert_close(off_a, off_b)
    cond.h_on = torch.ones(1)
    assert not torch.allclose(net.denoising_unet(z, 500, cond), off_b, atol=1e-5)
