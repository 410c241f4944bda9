"""The hallo_v1 backbone as loaded for AUHead: Hallo's ``Net``, its VAE and its wav2vec2.

Two sources: the files of Hallo's HF release in the weights cache (``auhead-bench weights pull
hallo-net hallo-vae hallo-vae-config hallo-wav2vec2 hallo-wav2vec2-config``, plus
``hallo-face-arcface`` for the identity embedding), at Hallo's own config; or a folder
(``hallo.json`` config, ``net.pth``, ``vae/``, ``wav2vec2/``), which is how tests keep tiny
networks of the same classes and how a fine-tuned copy would be stored.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL

from auhead_bench.errors import BenchError
from auhead_bench.weights import file_sha256, locate, locate_all
from auhead_bench_methods.auhead.declarations import hallo_specs
from auhead_bench_methods.auhead.hallo.config import HalloConfig
from auhead_bench_methods.auhead.hallo.net import HalloNet

CONFIG_FILE = "hallo.json"


class HalloBackbone:
    """Net + VAE + wav2vec2 (+ the face embedder's path), frozen."""

    def __init__(self, net: HalloNet, vae: AutoencoderKL, wav2vec2: torch.nn.Module,
                 files: dict[str, str], face_model: Path | None = None):
        self.net, self.vae, self.wav2vec2 = net, vae, wav2vec2
        self.cfg = net.cfg
        self.files = files  # name -> sha256, for provenance
        self.face_model = face_model
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        locator = 2 ** (len(self.cfg.face_locator_channels) - 1)
        if factor != locator:
            raise BenchError(f"the VAE downsamples by {factor}, the face locator by {locator}")
        self.latent_size = self.cfg.resolution // factor
        for module in (net, vae, wav2vec2):
            module.requires_grad_(False)
            module.eval()

    @classmethod
    def load(cls, folder: Path | None = None) -> HalloBackbone:
        return cls.from_folder(folder) if folder is not None else cls.from_registry()

    @classmethod
    def from_registry(cls) -> HalloBackbone:
        """Hallo's released files, located (and their sha256 recorded) through the cache."""
        from transformers import Wav2Vec2Model

        specs = hallo_specs()
        needed = [specs[k] for k in ("net", "vae", "vae_config", "wav2vec2", "wav2vec2_config")]
        paths = locate_all(needed)
        net = HalloNet(HalloConfig.real())
        net.load_net(paths["hallo-net"])
        with tempfile.TemporaryDirectory() as tmp:
            vae_dir, w2v_dir = Path(tmp) / "vae", Path(tmp) / "wav2vec2"
            for folder, config, weights in ((vae_dir, "hallo-vae-config", "hallo-vae"),
                                            (w2v_dir, "hallo-wav2vec2-config", "hallo-wav2vec2")):
                folder.mkdir()
                (folder / "config.json").symlink_to(paths[config])
                (folder / paths[weights].name).symlink_to(paths[weights])
            vae = AutoencoderKL.from_pretrained(vae_dir)
            wav2vec2 = Wav2Vec2Model.from_pretrained(w2v_dir)
        files = {name: file_sha256(path) for name, path in paths.items()}
        try:
            face_model: Path | None = locate(specs["face_embedder"])
        except Exception:  # only needed with face_embedding: arcface; reported there
            face_model = None
        return cls(net, vae, wav2vec2, files, face_model)

    @classmethod
    def from_folder(cls, folder: Path) -> HalloBackbone:
        from transformers import Wav2Vec2Model

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise BenchError(f"not a hallo_v1 backbone folder (no {CONFIG_FILE})", path=folder,
                             fix="omit backbone/ to use Hallo's pulled weights")
        net = HalloNet(HalloConfig.from_json(json.loads((folder / CONFIG_FILE).read_text())))
        net.load_net(folder / "net.pth")
        files = {p.relative_to(folder).as_posix(): file_sha256(p)
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        face = folder / "face_arcface.onnx"
        return cls(net, AutoencoderKL.from_pretrained(folder / "vae"),
                   Wav2Vec2Model.from_pretrained(folder / "wav2vec2"), files,
                   face if face.is_file() else None)

    def save_folder(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(self.cfg.to_json(), indent=2))
        torch.save(self.net.state_dict(), folder / "net.pth")
        self.vae.save_pretrained(folder / "vae")
        self.wav2vec2.save_pretrained(folder / "wav2vec2")

    def to(self, device: str | torch.device, dtype: torch.dtype) -> HalloBackbone:
        for module in (self.net, self.wav2vec2):
            module.to(device, dtype)
        self.vae.to(device)
        if self.vae.dtype != dtype:  # diffusers warns on every dtype cast, even a no-op
            self.vae.to(dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return self.net.device

    @property
    def dtype(self) -> torch.dtype:
        return self.net.dtype

    def encode(self, pixels: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> scaled latents (sampled with a generator, else the mean)."""
        dist = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        latents = dist.sample(generator) if generator is not None else dist.mode()
        return latents * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (N, 4, h, w) -> (N, 3, H, W) in [-1, 1]."""
        pixels = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return pixels.float().clamp(-1, 1)

    def describe(self) -> dict[str, Any]:
        return {"backbone": "hallo_v1", "resolution": self.cfg.resolution,
                "clip_frames": self.cfg.n_sample_frames,
                "motion_frames": self.cfg.n_motion_frames}
