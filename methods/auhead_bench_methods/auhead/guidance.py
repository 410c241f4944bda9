"""AU disentanglement guidance: four denoiser evaluations per step, combined (AUHEAD.md).

With c_H the backbone's own conditions (reference image, audio) and c_AU the AU condition:

    eps = e(z, 0, c_AU) + s_H * [e(z, c_H, 0) - e(z, 0, 0)]
                        + s_AU * [e(z, c_H, c_AU) - e(z, c_H, 0)]

exactly as the paper is reported to write it. (Unlike the usual compositional classifier-free
guidance, which starts from e(z, 0, 0), it starts from e(z, 0, c_AU); with s_H = s_AU = 1 it
is not e(z, c_H, c_AU).) The four evaluations run as ONE batched denoiser call, the batch
stacked in ``ROWS`` order.

s_AU defaults to the paper's 3.5. s_H is not reported ([gap]): we default it to 3.5 as well,
the classifier-free guidance scale both backbones the paper builds on (MEMO, Hallo) use for
their own conditions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Defined where plugin registration reads them without importing torch (Stage2Options).
from auhead_bench_methods.auhead.declarations import DEFAULT_S_AU as DEFAULT_S_AU
from auhead_bench_methods.auhead.declarations import DEFAULT_S_H as DEFAULT_S_H

# (c_H on, c_AU on) per block of the batched call, in the order the formula uses them.
ROWS: tuple[tuple[bool, bool], ...] = ((False, True), (True, False), (False, False), (True, True))

# denoise(z, h_on, au_on) -> eps, where h_on / au_on are (batch,) float masks (1: condition on).
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def combine(
    e_au: torch.Tensor,
    e_h: torch.Tensor,
    e_none: torch.Tensor,
    e_both: torch.Tensor,
    s_h: float,
    s_au: float,
) -> torch.Tensor:
    """The guidance formula on the four predictions e(0,AU), e(H,0), e(0,0), e(H,AU)."""
    return e_au + s_h * (e_h - e_none) + s_au * (e_both - e_h)


def guided_noise(denoise: Denoiser, z: torch.Tensor, s_h: float, s_au: float) -> torch.Tensor:
    """The guided noise prediction for latents ``z`` (B, ...), with one call to ``denoise``."""
    batch = z.shape[0]
    h_on = torch.tensor([h for h, _ in ROWS], dtype=z.dtype, device=z.device)
    au_on = torch.tensor([a for _, a in ROWS], dtype=z.dtype, device=z.device)
    eps = denoise(
        z.repeat(len(ROWS), *([1] * (z.ndim - 1))),
        h_on.repeat_interleave(batch),
        au_on.repeat_interleave(batch),
    )
    e_au, e_h, e_none, e_both = eps.chunk(len(ROWS))
    return combine(e_au, e_h, e_none, e_both, s_h, s_au)


def conditional_noise(denoise: Denoiser, z: torch.Tensor) -> torch.Tensor:
    """Guidance off: the fully conditioned prediction e(z, c_H, c_AU), one call."""
    ones = torch.ones(z.shape[0], dtype=z.dtype, device=z.device)
    return denoise(z, ones, ones)
