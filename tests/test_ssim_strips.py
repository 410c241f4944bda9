"""SSIM equals torchmetrics' (separable Gaussian), and a large frame scored strip by strip
equals the whole frame's."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from auhead_bench_metrics import pixel


@pytest.mark.parametrize("rows", [1, 7, 37, 120])
def test_strips_give_the_whole_frames_ssim(monkeypatch, rows):
    generator = torch.Generator().manual_seed(rows)
    a = torch.randint(0, 256, (2, 3, 121, 160), generator=generator).float()
    b = (a + 40 * torch.randn(a.shape, generator=generator)).clamp(0, 255)
    whole = structural_similarity_index_measure(a, b, reduction="none", **pixel.SSIM_ARGS)
    monkeypatch.setattr(pixel, "STRIP_PIXELS", 160 * rows)  # strips of `rows` rows
    strips = pixel.ssim_frames(a, b)
    assert torch.allclose(strips, whole, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(1, 3, 11, 11), (3, 3, 37, 53), (2, 3, 256, 256)])
def test_separable_ssim_equals_torchmetrics(shape):
    generator = torch.Generator().manual_seed(shape[2])
    a = torch.randint(0, 256, shape, generator=generator).float()
    b = (a + 25 * torch.randn(a.shape, generator=generator)).clamp(0, 255)
    for x, y in ((a, b), (a, a), (a, torch.zeros_like(a))):
        ours = pixel.ssim_frames(x, y)
        theirs = structural_similarity_index_measure(x, y, reduction="none", **pixel.SSIM_ARGS)
        assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_small_frames_are_scored_in_one_call(monkeypatch):
    calls = []
    real = pixel.ssim_map

    def counting(a, b):
        calls.append(a.shape)
        return real(a, b)

    monkeypatch.setattr(pixel, "ssim_map", counting)
    a = torch.rand(4, 3, 64, 64) * 255
    pixel.ssim_frames(a, a)
    assert calls == [a.shape]
