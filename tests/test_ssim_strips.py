"""SSIM of a large frame scored strip by strip equals torchmetrics' SSIM of the whole frame."""

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


def test_small_frames_go_to_torchmetrics_in_one_call(monkeypatch):
    calls = []
    real = structural_similarity_index_measure

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    import torchmetrics.functional.image as image

    monkeypatch.setattr(image, "structural_similarity_index_measure", counting)
    a = torch.rand(4, 3, 64, 64) * 255
    pixel.ssim_frames(a, a)
    assert calls == [a.shape]
