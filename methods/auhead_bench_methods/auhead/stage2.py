"""Stage 2 of AUHead on the sd15_au_concat stand-in backbone (backbone.py): a small per-frame
SD1.5 model of our own, CPU-trainable, not the paper's. The paper's setting, the adapter on
Hallo v1, is hallo/sampler.py.

A stage-2 model is a folder: ``backbone/`` (a portrait backbone, backbone.py) and
``adapter/`` (the AU adapter, adapter.py), as ``auhead-bench train stage2`` writes it. The
authors released no weights; the default location is ``$AUHEAD_BENCH_WEIGHTS/auhead-stage2``
and a missing model is reported with the commands that build one.

Sampling, per 25 fps frame (no temporal module): the reference image is resized to the
backbone's square resolution (and the frames back to the reference's size at the end); each
frame's conditions are the reference latent, the audio tokens of its 5-frame window, and the
AU tokens of its 5-frame AU window plus its landmark image (au_mesh.py, placed on the
reference's face). Frames are denoised in batches of ``frames_per_batch``; with
``shared_noise`` every frame starts from the same noise (per seed), which keeps the identity
and background steady without a temporal module. Each step uses AU disentanglement guidance
(guidance.py) with one batched denoiser call, or the plain conditional prediction when
``guidance`` is off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from auhead_bench.errors import BenchError
from auhead_bench.weights import WeightsMissing, file_sha256, weights_root
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.adapter import AUAdapter, attach, au_windows
from auhead_bench_methods.auhead.backbone import PortraitBackbone

# Options and version are read at plugin registration, which must not import diffusers.
from auhead_bench_methods.auhead.declarations import (
    DEFAULT_MODEL_NAME,
    STAGE2_VERSION,
    Stage2Options,
    sampler_name,
    sampling_steps,
    sd15_specs,
)
from auhead_bench_methods.auhead.guidance import FORMS, conditional_noise, guided_noise

BACKBONE = "sd15_au_concat"
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "dpmpp": "DPMSolverMultistepScheduler",
}


def default_model_path() -> Path:
    return weights_root() / DEFAULT_MODEL_NAME


def landmark_thickness(resolution: int) -> int:
    """Line width of the landmark image: 1 px at 256 px, 2 at 512 (train = inference)."""
    return max(1, round(resolution / 256))


def landmark_images(aus: np.ndarray, placement: au_mesh.Placement, resolution: int) -> np.ndarray:
    """(T, 24) AUs -> (T, resolution, resolution, 3) uint8 landmark images."""
    return au_mesh.render_track(
        aus, placement, resolution, resolution, landmark_thickness(resolution)
    )


def to_unit(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def missing_model_message(path: Path) -> str:
    pulls = " ".join(spec.name for spec in sd15_specs().values())
    return (
        f"weights missing: no AUHead stage-2 model at {path} (the authors released none); "
        f"build one: run `auhead-bench weights pull {pulls}`, then "
        "`auhead-bench train stage2 --backbone sd15_au_concat --trainable backbone --data CLIPS "
        "--out BACKBONE` and `auhead-bench train stage2 --backbone sd15_au_concat --init "
        f"BACKBONE --data CLIPS --out {path}`"
    )


def resolve_model(model: str | None) -> Path:
    """The local folder of a stage-2 model (hub ids are fetched into the HF cache)."""
    if model is None:
        path = default_model_path()
        if not (path / "adapter").is_dir():
            raise WeightsMissing(missing_model_message(path))
        return path
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "adapter").is_dir() or not (path / "backbone").is_dir():
            raise BenchError(
                "not a stage-2 model folder (needs backbone/ and adapter/)", path=path,
                fix="point options.model at the --out folder of `auhead-bench train stage2`",
            )
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model))
    except Exception as exc:  # offline, unknown repo, auth: one message
        raise WeightsMissing(
            f"weights missing: cannot fetch stage-2 model {model!r} from the HF hub "
            f"({type(exc).__name__}); download it into a folder and pass that folder"
        ) from None


def save_stage2(folder: Path, backbone: PortraitBackbone, adapter: AUAdapter) -> None:
    """Write a stage-2 model folder: backbone/ and adapter/."""
    folder = Path(folder)
    backbone.save_pretrained(folder / "backbone")
    adapter.save_pretrained(folder / "adapter")
    (folder / "auhead_stage2.json").write_text(
        json.dumps({"stage2_version": STAGE2_VERSION}, indent=2)
    )


def resolve_dtype(precision: str, device: str) -> torch.dtype:
    if precision == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return getattr(torch, precision)


def make_scheduler(name: str, config: dict[str, Any]) -> Any:
    import diffusers

    return getattr(diffusers, SCHEDULERS[name]).from_config(config)


@dataclass
class Stage2Model:
    """A loaded backbone with its adapter attached."""

    backbone: PortraitBackbone
    adapter: AUAdapter
    files: dict[str, str]  # relative file name -> sha256, for provenance

    def __post_init__(self) -> None:
        self.attachment = attach(self.backbone.unet, self.adapter)

    @classmethod
    def load(cls, model: str | None, device: str, precision: str = "auto") -> Stage2Model:
        folder = resolve_model(model)
        dtype = resolve_dtype(precision, device)
        backbone = PortraitBackbone.load(folder / "backbone")
        backbone.to(device, dtype).eval()
        # torch_dtype here, not .to(dtype): diffusers warns on the latter for every model.
        adapter = AUAdapter.from_pretrained(folder / "adapter", torch_dtype=dtype)
        adapter.to(device).eval()
        files = {
            str(p.relative_to(folder)): file_sha256(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".safetensors", ".json", ".bin")
        }
        return cls(backbone, adapter, files)

    def save_pretrained(self, folder: Path) -> None:
        save_stage2(folder, self.backbone, self.adapter)

    @torch.no_grad()
    def generate(
        self,
        reference: np.ndarray,
        audio: np.ndarray,
        aus: np.ndarray,
        options: Stage2Options,
        seed: int,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """(T, H, W, 3) uint8 frames at the reference's size, one per AU row, and notes."""
        backbone, adapter = self.backbone, self.adapter
        device, dtype, size = backbone.device, backbone.dtype, backbone.resolution
        frames = len(aus)
        height, width = reference.shape[:2]
        square = cv2.resize(reference, (size, size), interpolation=cv2.INTER_AREA)
        placement, _ = au_mesh.place_on(reference)
        on_square = placement.scaled(size / width, size / height)
        reference_latent = backbone.encode(square[None])
        audio_tokens = backbone.audio_tokens(backbone.audio_features(audio, frames))
        windows = torch.from_numpy(au_windows(aus)).to(device, dtype)
        generator = torch.Generator("cpu").manual_seed(seed)
        shape = (backbone.unet.config.out_channels, backbone.latent_size, backbone.latent_size)
        if options.shared_noise:
            noise = torch.randn((1, *shape), generator=generator).repeat(frames, 1, 1, 1)
        else:
            noise = torch.randn((frames, *shape), generator=generator)
        out = []
        for start in range(0, frames, options.frames_per_batch):
            chunk = slice(start, min(frames, start + options.frames_per_batch))
            landmarks = landmark_images(aus[chunk], on_square, size)
            au_tokens = adapter.tokens(windows[chunk], to_unit(landmarks).to(device, dtype))
            latents = self._sample(
                noise[chunk].to(device, dtype), reference_latent, audio_tokens[chunk],
                au_tokens, options,
            )
            out.append(backbone.decode(latents))
        video = np.concatenate(out)
        if (height, width) != (size, size):
            video = np.stack(
                [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in video]
            )
        info = {"placement": placement.source, "resolution": size}
        return video, info

    def _sample(
        self,
        noise: torch.Tensor,
        reference_latent: torch.Tensor,
        audio_tokens: torch.Tensor,
        au_tokens: torch.Tensor,
        options: Stage2Options,
    ) -> torch.Tensor:
        """Denoise one batch of frames from ``noise`` with the chosen scheduler and guidance."""
        name, steps = sampler_name(options, BACKBONE), sampling_steps(options, BACKBONE)
        scheduler = make_scheduler(name, self.backbone.scheduler_config)
        scheduler.set_timesteps(steps, device=noise.device)
        latents = noise * scheduler.init_noise_sigma
        batch = len(noise)
        copies = len(FORMS[options.guidance_form]) if options.guidance else 1
        reference = reference_latent.expand(batch * copies, -1, -1, -1)
        audio = audio_tokens.repeat(copies, 1, 1)
        au = au_tokens.repeat(copies, 1, 1)
        for timestep in scheduler.timesteps:
            z = scheduler.scale_model_input(latents, timestep)

            def denoise(zs: torch.Tensor, h_on: torch.Tensor, au_on: torch.Tensor,
                        t: torch.Tensor = timestep) -> torch.Tensor:
                return self.backbone.denoise(zs, t, reference, audio, h_on, au, au_on)

            if options.guidance:
                eps = guided_noise(denoise, z, options.s_h, options.s_au,
                                   options.guidance_form)
            else:
                eps = conditional_noise(denoise, z)
            latents = scheduler.step(eps, timestep, latents).prev_sample
        return latents
