"""AU disentanglement guidance (docs/auhead.md): the denoiser evaluations of one step, combined.

With c_H the backbone's own conditions and c_AU the AU condition, the default ("telescoping")
form is

    eps = e(z, 0, 0) + s_H * [e(z, c_H, 0) - e(z, 0, 0)] + s_AU * [e(z, c_H, c_AU) - e(z, c_H, 0)]

three evaluations, run as ONE batched denoiser call (rows in ``FORMS[form]`` order). It is
InstructPix2Pix's two-condition guidance: with s_H = s_AU = 1 it is exactly the fully
conditioned e(z, c_H, c_AU), and with s_AU = 0 the AU condition has no effect at all.

The paper is reported to write the first term as e(z, 0, c_AU) ("as_written", four
evaluations); most likely a slip, kept as a named option.

c_H = 0 is the backbone's own unconditional branch: for MEMO, what its pipeline feeds its
unconditional half (face tokens of a zero embedding, zero audio tokens, the "no emotion"
class, no reference-image attention; past frames and motion memory kept; memo/sampler.py);
for Hallo, face-identity tokens of a zero embedding, zero audio tokens, zero face-locator
features, no reference attention (hallo/unet3d.py).

s_AU defaults to the paper's 3.5. s_H is not reported ([gap]): 3.5 as well, the scale both
backbones the paper builds on (MEMO, Hallo) use for their own conditions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Defined where plugin registration reads them without importing torch (Stage2Options).
from auhead_bench_methods.auhead.declarations import DEFAULT_S_AU as DEFAULT_S_AU
from auhead_bench_methods.auhead.declarations import DEFAULT_S_H as DEFAULT_S_H

# (c_H on, c_AU on) per block of the batched call, in the order each formula uses them.
FORMS: dict[str, tuple[tuple[bool, bool], ...]] = {
    "telescoping": ((False, False), (True, False), (True, True)),
    "as_written": ((False, True), (True, False), (False, False), (True, True)),
}

# denoise(z, h_on, au_on) -> eps, where h_on / au_on are (batch,) float masks (1: condition on).
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def combine_telescoping(e_none: torch.Tensor, e_h: torch.Tensor, e_both: torch.Tensor,
                        s_h: float, s_au: float) -> torch.Tensor:
    return e_none + s_h * (e_h - e_none) + s_au * (e_both - e_h)


def combine(e_au: torch.Tensor, e_h: torch.Tensor, e_none: torch.Tensor, e_both: torch.Tensor,
            s_h: float, s_au: float) -> torch.Tensor:
    """The as-written formula on e(0,AU), e(H,0), e(0,0), e(H,AU)."""
    return e_au + s_h * (e_h - e_none) + s_au * (e_both - e_h)


def row_masks(form: str, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_on, au_on) for ``batch`` samples stacked once per row of ``form``."""
    rows = FORMS[form]
    h_on = torch.tensor([h for h, _ in rows], dtype=like.dtype, device=like.device)
    au_on = torch.tensor([a for _, a in rows], dtype=like.dtype, device=like.device)
    return h_on.repeat_interleave(batch), au_on.repeat_interleave(batch)


def guided_noise(denoise: Denoiser, z: torch.Tensor, s_h: float, s_au: float,
                 form: str = "telescoping") -> torch.Tensor:
    """The guided prediction for latents ``z`` (B, ...), with one call to ``denoise``."""
    if form not in FORMS:
        raise ValueError(f"unknown guidance form {form!r}: {sorted(FORMS)}")
    rows, batch = FORMS[form], z.shape[0]
    h_on, au_on = row_masks(form, batch, z)
    eps = denoise(z.repeat(len(rows), *([1] * (z.ndim - 1))), h_on, au_on).chunk(len(rows))
    if form == "telescoping":
        return combine_telescoping(*eps, s_h, s_au)
    return combine(*eps, s_h, s_au)


def conditional_noise(denoise: Denoiser, z: torch.Tensor) -> torch.Tensor:
    """Guidance off: the fully conditioned prediction e(z, c_H, c_AU), one call."""
    ones = torch.ones(z.shape[0], dtype=z.dtype, device=z.device)
    return denoise(z, ones, ones)
