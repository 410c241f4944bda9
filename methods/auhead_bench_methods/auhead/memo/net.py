"""MEMO's networks under the names of its hub folders, each loaded from its own file.

The hub ``memoavatar/memo`` keeps one diffusers folder per network: ``reference_net/``,
``diffusion_net/``, ``audio_proj/``, ``image_proj/`` and ``misc/audio_emotion_classifier/``,
each a ``diffusion_pytorch_model.safetensors``. Each loads here with ``strict=True``: every
tensor of the file has its place, and every place its tensor. ``AudioProjModel`` and
``ImageProjModel`` are the same classes as Hallo's (same names, same computation: the
manifest test and tests/data/check_memo_forward.py check them against MEMO's).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from auhead_bench.errors import BenchError
from auhead_bench.weights import load_state_dict
from auhead_bench_methods.auhead.hallo.projections import AudioProjModel, ImageProjModel
from auhead_bench_methods.auhead.memo.config import MemoConfig
from auhead_bench_methods.auhead.memo.reference import MemoReferenceNet
from auhead_bench_methods.auhead.memo.unet3d import DiffusionNet3D

NET_PARTS = ("reference_net", "diffusion_net", "audio_proj", "image_proj")


class AudioEmotionClassifier(nn.Module):
    """MEMO's AudioEmotionClassifierModel: an MLP over emotion2vec's utterance feature ->
    class probabilities (``layers.fc1`` .. ``layers.fcN``)."""

    def __init__(self, cfg: MemoConfig):
        super().__init__()
        width, count = cfg.classifier_channels, cfg.classifier_layers
        layers: list[tuple[str, nn.Module]] = []
        sizes = [cfg.emotion_feature_dim] + [width] * (count - 1) + [cfg.emotion_classes]
        for i in range(count):
            layers.append((f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1])))
            if i < count - 1:
                layers.append((f"relu{i + 1}", nn.ReLU()))
        self.layers = nn.Sequential(OrderedDict(layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.layers(features), dim=-1)


class MemoNet(nn.Module):
    """reference_net, diffusion_net, audio_proj, image_proj (+ the emotion classifier)."""

    def __init__(self, cfg: MemoConfig):
        super().__init__()
        self.cfg = cfg
        self.reference = MemoReferenceNet(cfg)
        self.diffusion_net = DiffusionNet3D(cfg)
        self.audio_proj = AudioProjModel(cfg.audio_window, cfg.audio_blocks, cfg.audio_channels,
                                         cfg.audio_intermediate, cfg.audio_attention_dim,
                                         cfg.audio_tokens)
        self.image_proj = ImageProjModel(cfg.cross_attention_dim, cfg.face_embedding_dim,
                                         cfg.image_tokens)
        self.emotion_classifier = AudioEmotionClassifier(cfg)

    def part(self, name: str) -> nn.Module:
        """The module one hub folder's file fills."""
        modules = {"reference_net": self.reference.unet, "diffusion_net": self.diffusion_net,
                   "audio_proj": self.audio_proj, "image_proj": self.image_proj,
                   "audio_emotion_classifier": self.emotion_classifier}
        return modules[name]

    def load_part(self, name: str, path: Path) -> None:
        """One of MEMO's files into its network, every tensor accounted for."""
        state = load_state_dict(Path(path))
        try:
            self.part(name).load_state_dict(state, strict=True)
        except RuntimeError as exc:
            summary = " ".join(s.strip() for s in str(exc).split("\n")[0:2])[:300]
            raise BenchError(f"not MEMO's {name} layout ({summary})", path=path,
                             fix=f"pull it with `auhead-bench weights pull memo-{name}`"
                             .replace("_", "-")) from None

    @property
    def device(self) -> torch.device:
        return self.image_proj.proj.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.image_proj.proj.weight.dtype
