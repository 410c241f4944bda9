"""The memo backbone as loaded for AUHead: MEMO's networks, its VAE and its wav2vec2.

Two sources: the files of MEMO's HF release in the weights cache (``auhead-bench weights pull
memo-reference-net memo-diffusion-net memo-audio-proj memo-image-proj memo-vae
memo-vae-config memo-wav2vec2 memo-wav2vec2-config``; ``memo-audio-emotion-classifier`` and
``memo-emotion2vec`` for ``emotion: audio``, ``memo-face-arcface`` for the identity
embedding), at MEMO's config; or a folder (``memo.json`` config, ``<part>.safetensors`` per
network, ``vae/``, ``wav2vec2/``), which is how tests keep tiny networks of the same classes
and how a copy would be stored.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL

from auhead_bench.errors import BenchError
from auhead_bench.weights import file_sha256, local_path, locate, locate_all
from auhead_bench_methods.auhead.declarations import memo_specs
from auhead_bench_methods.auhead.memo.config import MemoConfig
from auhead_bench_methods.auhead.memo.net import NET_PARTS, MemoNet

CONFIG_FILE = "memo.json"
CLASSIFIER = "audio_emotion_classifier"


class MemoBackbone:
    """MEMO's networks + VAE + wav2vec2 (+ paths of the face and emotion models), frozen."""

    def __init__(self, net: MemoNet, vae: AutoencoderKL, wav2vec2: torch.nn.Module,
                 files: dict[str, str], face_model: Path | None = None,
                 emotion2vec: Path | None = None, has_classifier: bool = False):
        self.net, self.vae, self.wav2vec2 = net, vae, wav2vec2
        self.cfg = net.cfg
        self.files = files  # name -> sha256, for provenance
        self.face_model, self.emotion2vec = face_model, emotion2vec
        self.has_classifier = has_classifier
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        landmarks = 2 ** (len(self.cfg.landmark_channels) - 1)
        if factor != landmarks:
            raise BenchError(f"the VAE downsamples by {factor}, the landmark encoder by "
                             f"{landmarks}")
        self.latent_size = self.cfg.resolution // factor
        for module in (net, vae, wav2vec2):
            module.requires_grad_(False)
            module.eval()

    @classmethod
    def load(cls, folder: Path | None = None) -> MemoBackbone:
        return cls.from_folder(folder) if folder is not None else cls.from_registry()

    @classmethod
    def from_registry(cls) -> MemoBackbone:
        """MEMO's released files, located (and their sha256 recorded) through the cache."""
        from transformers import Wav2Vec2Model

        specs = memo_specs()
        needed = [specs[k] for k in (*NET_PARTS, "vae", "vae_config", "wav2vec2",
                                     "wav2vec2_config")]
        paths = locate_all(needed)
        net = MemoNet(MemoConfig.real())
        for part in NET_PARTS:
            net.load_part(part, paths[specs[part].name])
        classifier = local_path(specs[CLASSIFIER])
        if classifier.is_file():
            net.load_part(CLASSIFIER, locate(specs[CLASSIFIER]))
            paths[specs[CLASSIFIER].name] = classifier
        with tempfile.TemporaryDirectory() as tmp:
            vae_dir, w2v_dir = Path(tmp) / "vae", Path(tmp) / "wav2vec2"
            for folder, config, weights in ((vae_dir, "memo-vae-config", "memo-vae"),
                                            (w2v_dir, "memo-wav2vec2-config", "memo-wav2vec2")):
                folder.mkdir()
                (folder / "config.json").symlink_to(paths[config])
                (folder / paths[weights].name).symlink_to(paths[weights])
            vae = AutoencoderKL.from_pretrained(vae_dir)
            wav2vec2 = Wav2Vec2Model.from_pretrained(w2v_dir)
        files = {name: file_sha256(path) for name, path in paths.items()}
        face = local_path(specs["face_embedder"])
        emotion = local_path(specs["emotion2vec"])
        return cls(net, vae, wav2vec2, files, face if face.is_file() else None,
                   emotion if emotion.is_dir() else None, classifier.is_file())

    @classmethod
    def from_folder(cls, folder: Path) -> MemoBackbone:
        from transformers import Wav2Vec2Model

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise BenchError(f"not a memo backbone folder (no {CONFIG_FILE})", path=folder,
                             fix="omit backbone/ to use MEMO's pulled weights")
        net = MemoNet(MemoConfig.from_json(json.loads((folder / CONFIG_FILE).read_text())))
        for part in NET_PARTS:
            net.load_part(part, folder / f"{part}.safetensors")
        classifier = folder / f"{CLASSIFIER}.safetensors"
        if classifier.is_file():
            net.load_part(CLASSIFIER, classifier)
        files = {p.relative_to(folder).as_posix(): file_sha256(p)
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        face = folder / "face_arcface.onnx"
        emotion = folder / "emotion2vec"
        return cls(net, AutoencoderKL.from_pretrained(folder / "vae"),
                   Wav2Vec2Model.from_pretrained(folder / "wav2vec2"), files,
                   face if face.is_file() else None, emotion if emotion.is_dir() else None,
                   classifier.is_file())

    def save_folder(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(self.cfg.to_json(), indent=2))
        for part in (*NET_PARTS, CLASSIFIER):
            state = {k: v.detach().contiguous().cpu()
                     for k, v in self.net.part(part).state_dict().items()}
            save_file(state, str(folder / f"{part}.safetensors"))
        self.vae.save_pretrained(folder / "vae")
        self.wav2vec2.save_pretrained(folder / "wav2vec2")

    def to(self, device: str | torch.device, dtype: torch.dtype) -> MemoBackbone:
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
        """(N, 3, H, W) in [-1, 1] -> scaled latents (sampled with a generator, else the mean:
        MEMO's inference encodes references with the mean, its training samples)."""
        dist = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        latents = dist.sample(generator) if generator is not None else dist.mode()
        return latents * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (N, 4, h, w) -> (N, 3, H, W) in [-1, 1], one frame at a time."""
        pixels = [self.vae.decode(latent[None] / self.vae.config.scaling_factor).sample
                  for latent in latents]
        return torch.cat(pixels).float().clamp(-1, 1)

    def describe(self) -> dict[str, Any]:
        return {"backbone": "memo", "resolution": self.cfg.resolution, "fps": self.cfg.fps,
                "clip_frames": self.cfg.n_sample_frames, "past_frames": self.cfg.n_past_frames}
