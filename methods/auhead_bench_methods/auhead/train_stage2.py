"""`auhead-bench train stage2`: train the AU adapter on a frozen backbone.

``--backbone memo`` (default, the paper's main results) is in memo/train.py, ``--backbone
hallo_v1`` in hallo/train.py. What follows is the sd15_au_concat stand-in's training
(``--backbone sd15_au_concat``).

The paper trains only the adapter (AUHEAD.md). Training data: a folder of talking-face
videos (any fps; decoded to 25 fps / 16 kHz), each with its AU labels next to it
(``<stem>.npy`` or ``<stem>.csv``, (T, 24) at 25 fps, read by tokens.load_au_labels). A
sample is one frame t of a clip: the target is that frame, the reference a random frame of
the same clip, the conditions the audio window and AU window around t and the landmark image
of t's AUs (placed on the clip's first frame). The loss is the usual denoising MSE.

Condition dropout makes guidance possible: per sample the AU condition is dropped with
probability ``--au-dropout`` (c_AU = 0) and the backbone's conditions with ``--h-dropout``
(c_H = 0), independently, so all four of e(z, {0, c_H}, {0, c_AU}) are trained.

``--trainable backbone`` trains the portrait backbone itself (UNet and audio encoder; VAE and
wav2vec2 frozen), without adapter, starting from an SD1.5-family model: the backbones the
paper builds on (MEMO, Hallo) have no diffusers-format weights to start from, so a backbone
must be trained once before adapters can be.
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np
import torch

from auhead_bench import media
from auhead_bench.errors import BenchError, one_line
from auhead_bench.metric import NotComputed
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.adapter import AUAdapter, attach, au_windows
from auhead_bench_methods.auhead.au_labels import conditioning_track
from auhead_bench_methods.auhead.backbone import PORTRAIT_FILE, PortraitBackbone, load_sd15
from auhead_bench_methods.auhead.stage2 import landmark_images, save_stage2, to_unit

CLIP_CACHE = 8  # decoded training clips kept in memory


@dataclass
class TrainingClip:
    """One decoded clip at the training resolution, with its features and AU track."""

    frames: np.ndarray  # (T, R, R, 3) uint8
    audio_features: np.ndarray  # (T, W, F)
    aus: np.ndarray | None  # (T, 24)
    au_window: np.ndarray | None  # (T, 5, 24): each frame's AU window
    placement: au_mesh.Placement  # mesh -> pixels of the resized frames


class TrainingData:
    """Clips under a folder, decoded on demand (a few kept in memory)."""

    def __init__(self, root: Path, backbone: PortraitBackbone, need_aus: bool):
        self.root = Path(root)
        self.videos = sorted(p for p in self.root.rglob("*.mp4") if p.is_file())
        if not self.videos:
            raise BenchError("no .mp4 training clips found", path=self.root,
                             fix="pass --data a folder of talking-face videos")
        self.backbone, self.need_aus = backbone, need_aus
        self._cache: OrderedDict[Path, TrainingClip] = OrderedDict()
        if need_aus:
            missing = [p.name for p in self.videos if _labels_for(p) is None]
            if missing:
                raise BenchError(
                    f"{len(missing)} clip(s) have no AU labels, e.g. {missing[0]}", path=self.root,
                    fix="put <stem>.npy or <stem>.csv ((T, 24) at 25 fps) next to each video",
                )

    def clip(self, path: Path) -> TrainingClip:
        if path not in self._cache:
            self._cache[path] = self._load(path)
            if len(self._cache) > CLIP_CACHE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(path)
        return self._cache[path]

    def _load(self, path: Path) -> TrainingClip:
        video = media.decode_video(path)
        size = self.backbone.resolution
        frames = np.stack(
            [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in video.frames]
        )
        count = len(frames)
        features = self.backbone.audio_features(video.audio, count).float().cpu().numpy()
        labels = _labels_for(path)
        # labels are per frame of their own video (MEAD: 30 fps): resampled to 25 fps
        rate = media.probe_video(path).source_fps
        aus = conditioning_track(labels, count, source_fps=rate) if labels is not None else None
        height, width = video.frames.shape[1:3]
        placement, _ = au_mesh.place_on(video.frames[0])
        windows = au_windows(aus) if aus is not None else None
        return TrainingClip(
            frames, features, aus, windows, placement.scaled(size / width, size / height)
        )

    def batch(self, size: int, rng: random.Random) -> dict[str, np.ndarray]:
        """``size`` random samples: target, reference, audio window, AU window, landmarks."""
        targets, references, audio, windows, landmarks = [], [], [], [], []
        for _ in range(size):
            clip = self.clip(rng.choice(self.videos))
            t, r = rng.randrange(len(clip.frames)), rng.randrange(len(clip.frames))
            targets.append(clip.frames[t])
            references.append(clip.frames[r])
            audio.append(clip.audio_features[t])
            if clip.aus is not None:
                windows.append(clip.au_window[t])
                landmarks.append(
                    landmark_images(clip.aus[t : t + 1], clip.placement, len(clip.frames[0]))[0]
                )
        out = {"target": np.stack(targets), "reference": np.stack(references),
               "audio": np.stack(audio)}
        if windows:
            out["au_window"], out["landmarks"] = np.stack(windows), np.stack(landmarks)
        return out


def _labels_for(video: Path) -> Path | None:
    for suffix in (".npy", ".csv"):
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _initial_backbone(init: str | None, trainable: str, options: dict[str, Any]) -> tuple[
    PortraitBackbone, AUAdapter | None
]:
    """The backbone (and adapter, when continuing one) to start from."""
    path = Path(init).expanduser() if init else None
    if path is not None and (path / "backbone" / PORTRAIT_FILE).is_file():
        adapter = AUAdapter.from_pretrained(path / "adapter") if trainable == "adapter" else None
        return PortraitBackbone.load(path / "backbone"), adapter
    if path is not None and (path / PORTRAIT_FILE).is_file():
        return PortraitBackbone.load(path), None
    if trainable == "adapter":
        raise BenchError(
            "adapter training needs a trained portrait backbone", path=init or "--init",
            fix="pass --init a backbone folder (from `train stage2 --trainable backbone`)",
        )
    unet, vae, scheduler = load_sd15(init)
    wav2vec2 = None
    if options["audio_feature"] == "wav2vec2":
        from transformers import Wav2Vec2Model

        wav2vec2 = Wav2Vec2Model.from_pretrained(options["wav2vec2"])
    return PortraitBackbone.from_sd15(
        unet, vae, scheduler, options["resolution"], options["audio_feature"], wav2vec2
    ), None


def train(
    data: Path, out: Path, init: str | None, trainable: str, steps: int, batch_size: int,
    lr: float, au_dropout: float, h_dropout: float, device: str, seed: int,
    save_every: int, **backbone_options: Any,
) -> dict[str, Any]:
    """Run the training loop and save the result to ``out``; returns a summary."""
    from diffusers import DDPMScheduler

    from auhead_bench.provenance import resolve_device

    device = resolve_device(device)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    backbone, adapter = _initial_backbone(init, trainable, backbone_options)
    if trainable == "adapter" and adapter is None:
        adapter = AUAdapter.for_unet(
            backbone.unet, token_dim=int(backbone.unet.config.cross_attention_dim)
        )
    backbone.to(device)
    backbone.requires_grad_(False)
    if adapter is not None:
        adapter.to(device)
        attach(backbone.unet, adapter)
    if trainable == "adapter":
        params = list(adapter.parameters())
        adapter.train()
    else:
        backbone.unet.requires_grad_(True)
        backbone.audio_encoder.requires_grad_(True)
        params = [*backbone.unet.parameters(), *backbone.audio_encoder.parameters()]
        backbone.unet.train()
    for param in params:
        param.requires_grad_(True)
    data_source = TrainingData(data, backbone, need_aus=trainable == "adapter")
    noise_schedule = DDPMScheduler.from_config(backbone.scheduler_config)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    generator = torch.Generator("cpu").manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arguments = {"data": data, "init": init, "trainable": trainable, "steps": steps,
                 "batch_size": batch_size, "lr": lr, "au_dropout": au_dropout,
                 "h_dropout": h_dropout, "device": device, "seed": seed, **backbone_options}
    (out / "train_args.json").write_text(json.dumps(arguments, indent=2, default=str))
    losses = []
    with (out / "train_log.jsonl").open("a") as log:
        for step in range(1, steps + 1):
            batch = data_source.batch(batch_size, rng)
            loss = _step(backbone, adapter, batch, noise_schedule, au_dropout, h_dropout,
                         generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            losses.append(loss.detach().item())
            log.write(json.dumps({"step": step, "loss": losses[-1]}) + "\n")
            log.flush()
            if save_every and step % save_every == 0 and step < steps:
                _save(backbone, adapter, out)
    _save(backbone, adapter, out)
    return {"steps": steps, "final_loss": losses[-1] if losses else None, "out": str(out)}


def _step(
    backbone: PortraitBackbone, adapter: AUAdapter | None, batch: dict[str, np.ndarray],
    noise_schedule: Any, au_dropout: float, h_dropout: float, generator: torch.Generator,
) -> torch.Tensor:
    device, size = backbone.device, len(batch["target"])
    with torch.no_grad():
        latents = backbone.encode_sample(to_unit(batch["target"]).to(device), generator)
        reference = backbone.encode(batch["reference"])
    noise = torch.randn(latents.shape, generator=generator).to(device)
    timesteps = torch.randint(
        0, noise_schedule.config.num_train_timesteps, (size,), generator=generator
    ).to(device)
    noisy = noise_schedule.add_noise(latents, noise, timesteps)
    h_on = (torch.rand(size, generator=generator) >= h_dropout).float().to(device)
    audio = backbone.audio_tokens(torch.from_numpy(batch["audio"]).to(device))
    au_tokens = au_on = None
    if adapter is not None and "au_window" in batch:
        au_on = (torch.rand(size, generator=generator) >= au_dropout).float().to(device)
        au_tokens = adapter.tokens(
            torch.from_numpy(batch["au_window"]).to(device), to_unit(batch["landmarks"]).to(device)
        )
    prediction = backbone.denoise(noisy, timesteps, reference, audio, h_on, au_tokens, au_on)
    if noise_schedule.config.prediction_type == "v_prediction":
        target = noise_schedule.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    return torch.nn.functional.mse_loss(prediction.float(), target.float())


def _save(backbone: PortraitBackbone, adapter: AUAdapter | None, out: Path) -> None:
    if adapter is None:
        backbone.save_pretrained(out)
    else:
        save_stage2(out, backbone, adapter)


@click.command("stage2")
@click.option("--backbone", type=click.Choice(["memo", "hallo_v1", "sd15_au_concat"]),
              default="memo", show_default=True,
              help="memo: the adapter on frozen MEMO (the paper's main results; MEMO's "
              "fine-tuning recipe). hallo_v1: on frozen Hallo v1 (Hallo's stage-2 recipe). Both "
              "take --init a backbone folder, else the pulled memo-*/hallo-* weights. "
              "sd15_au_concat: the small per-frame stand-in.")
@click.option("--face-embedding", type=click.Choice(["arcface", "zeros"]), default="arcface",
              show_default=True, help="memo, hallo_v1: the identity input (zeros: no face).")
@click.option("--emotion", type=click.Choice(["audio", "none"]), default="audio",
              show_default=True, help="memo: the emotion class per window, from the audio "
              "(MEMO's emotion2vec + classifier; needs funasr) or none (sample with the same).")
@click.option("--data", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="Folder of training videos, AU labels <stem>.npy/.csv beside.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output folder: a stage-2 model (adapter) or a portrait backbone.")
@click.option("--init", default=None,
              help="adapter: a backbone or stage-2 model folder. backbone: an SD1.5-family "
              "folder or hub id (default: the pulled sd15-* weights).")
@click.option("--trainable", type=click.Choice(["adapter", "backbone"]), default="adapter",
              show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--lr", type=float, default=None,
              help="Default: 1e-5 (memo, hallo_v1: their fine-tuning), 1e-4 (sd15_au_concat).")
@click.option("--au-dropout", type=click.FloatRange(0, 1), default=None,
              help="Probability of dropping the AU condition (default 0.05: memo per sample, "
              "hallo_v1 per batch as Hallo draws its own conditions; 0.1 per sample for "
              "sd15_au_concat).")
@click.option("--h-dropout", type=click.FloatRange(0, 1), default=None,
              help="Probability of dropping the backbone's conditions; memo drops reference "
              "image and audio per sample (0.05 each, its uncond_img_ratio/uncond_audio_ratio); "
              "hallo_v1 drops, per batch as Hallo, the reference (ReferenceNet skipped, zero "
              "motion frames) and the audio independently (0.05 each; motion frames zeroed at "
              "its start_ratio 0.05); sd15_au_concat: per sample, default 0.1.")
@click.option("--resolution", type=int, default=512, show_default=True,
              help="Backbone resolution (only when initialising from SD1.5).")
@click.option("--audio-feature", type=click.Choice(["wav2vec2", "logmel"]), default="wav2vec2",
              show_default=True, help="Audio features (only when initialising from SD1.5).")
@click.option("--wav2vec2", default="facebook/wav2vec2-base-960h", show_default=True,
              help="wav2vec2 hub id or folder (with --audio-feature wav2vec2).")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-every", type=click.IntRange(min=0), default=1000, show_default=True,
              help="memo, hallo_v1: checkpoint interval; rerunning the command resumes "
              "from it.")
def command(backbone: str, face_embedding: str, emotion: str, **kwargs: Any) -> None:
    """Train AUHead's stage-2 AU adapter (or, with --trainable backbone, the stand-in's
    backbone). Only the adapter trains on memo and hallo_v1."""
    try:
        if backbone in ("memo", "hallo_v1") and kwargs["trainable"] != "adapter":
            raise BenchError("--trainable backbone exists only for sd15_au_concat",
                             fix=f"{backbone} is used as released: train the adapter")
        if backbone == "memo":
            from auhead_bench_methods.auhead.memo.train import train_memo

            h = kwargs["h_dropout"]
            summary = train_memo(
                kwargs["data"], kwargs["out"], kwargs["init"], kwargs["steps"],
                kwargs["batch_size"], kwargs["lr"], kwargs["au_dropout"], h, h,
                kwargs["device"], kwargs["seed"], kwargs["save_every"], face_embedding,
                emotion,
            )
        elif backbone == "hallo_v1":
            from auhead_bench_methods.auhead.hallo.train import train_hallo

            h = kwargs["h_dropout"]
            summary = train_hallo(
                kwargs["data"], kwargs["out"], kwargs["init"], kwargs["steps"],
                kwargs["batch_size"], kwargs["lr"], kwargs["au_dropout"], h, h,
                kwargs["device"], kwargs["seed"], kwargs["save_every"], face_embedding,
            )
        else:
            for key, default in (("lr", 1e-4), ("au_dropout", 0.1), ("h_dropout", 0.1)):
                kwargs[key] = default if kwargs[key] is None else kwargs[key]
            summary = train(**kwargs)
    except NotComputed as exc:  # missing weights: one line naming the pull command
        raise BenchError(one_line(exc)) from None
    click.echo(json.dumps(summary))
