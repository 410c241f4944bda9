"""`auhead-bench train stage2 --backbone memo`: train only the AU adapter on frozen MEMO.

MEMO's own fine-tuning recipe (``configs/finetune.yaml``, ``finetune.py``,
``memo/datasets/video_dataset.py``), applied to the adapter:

- flow matching: ``FlowMatchEulerDiscreteScheduler`` (1000 steps, shift 1); per sample a
  timestep from the logit-normal density (mean 0, std 1: ``weighting_scheme: logit_normal``,
  uniform loss weights); noisy = sigma * noise + (1 - sigma) * x0; the network's output v is
  turned into x0 = noisy - sigma * v and compared with x0 (MSE per sample);
  ``robust_training``: samples whose loss exceeds 0.1 are left out of the mean;
- AdamW (lr 1e-5 constant, betas 0.9/0.999, weight decay 1e-2, eps 1e-8), gradient norm
  clipped at 1.0, bf16 on GPU, gradient checkpointing on, batch 1 (MEMO's);
- condition dropout, per sample (MEMO: per batch of one): ``uncond_img_ratio`` 0.05 (the
  reference net sees zero latents, reference and past frames alike), ``uncond_audio_ratio``
  0.05 (audio projection of zero features), ``start_ratio`` 0.05 (past frames zero, as at a
  video's start), the emotion class inside the network (``emo_drop_rate`` 0.05 per norm: the
  diffusion net runs in training mode), and the dataset's own: 5% of windows take the first
  target frame repeated as past frames, 5% repeat the window's edge audio features. The AU
  condition (c_AU = 0) is dropped with ``--au-dropout`` (0.05, MEMO's rate for its own
  conditions: the paper gives none [gap]).
- what trains: MEMO fine-tunes ``motion_modules`` and ``audio_modules``; AUHead freezes the
  whole backbone and trains the adapter only (the paper's stage 2).

A sample (MEMO's dataset): 16 consecutive frames at 30 fps starting at least 16 frames in
(the 16 before are the past frames), a reference frame drawn from the same range, the audio
window of each frame, the window's most frequent emotion class (``--emotion audio``; ``none``:
the "no emotion" class, then sample with ``emotion: none`` too), the AU track resampled to 30
fps and its landmark images. Training data: a folder of videos with ``<stem>.npy``/``.csv``
AU labels beside (per video frame, as ``train stage1`` reads them).

Resumable: every ``--save-every`` steps the adapter, the optimiser, the step and the random
states go to ``OUT/checkpoint/``; running the same command again continues from there.
"""

from __future__ import annotations

import json
import random
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from auhead_bench import media
from auhead_bench.errors import BenchError
from auhead_bench.weights import load_state_dict
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.adapter import SpatialAUAdapter, attach, au_windows
from auhead_bench_methods.auhead.au_labels import conditioning_track
from auhead_bench_methods.auhead.au_space import VIDEO_FPS
from auhead_bench_methods.auhead.memo.audio import (
    Emotion2vecClassifier,
    audio_windows,
    clip_emotion,
    emotion_labels,
    wav2vec2_frames,
)
from auhead_bench_methods.auhead.memo.backbone import MemoBackbone
from auhead_bench_methods.auhead.memo.blocks import MotionMemory
from auhead_bench_methods.auhead.memo.sampler import (
    landmark_thickness,
    new_adapter,
    resample_track,
    save_model,
    to_unit,
)
from auhead_bench_methods.auhead.memo.unet3d import MemoConditions

MEMO_DEFAULTS = {"lr": 1e-5, "au_dropout": 0.05, "image_dropout": 0.05, "audio_dropout": 0.05}
START_RATIO = 0.05  # past frames zeroed
DATASET_DROP = 0.05  # video_dataset.py: past frames = first target frame; edge audio repeated
ROBUST_LIMIT = 0.1
CLIP_CACHE = 8


@dataclass
class Clip:
    frames: np.ndarray  # (T, R, R, 3) uint8 at 30 fps
    audio: torch.Tensor  # (T, layers, hidden) wav2vec2 states per frame
    aus: np.ndarray  # (T, 24) at 30 fps
    landmarks: np.ndarray  # (T, R, R, 3) uint8
    emotions: np.ndarray  # (T,) class per frame
    embedding: torch.Tensor  # (1, face_embedding_dim)


def _labels_for(video: Path) -> Path | None:
    for suffix in (".npy", ".csv"):
        if video.with_suffix(suffix).is_file():
            return video.with_suffix(suffix)
    return None


class MemoTrainingData:
    """Clips under a folder (labels beside each), decoded at 30 fps on demand, a few kept."""

    def __init__(self, root: Path, backbone: MemoBackbone, face_embedding: str, emotion: str):
        self.root = Path(root)
        self.videos = sorted(p for p in self.root.rglob("*.mp4") if p.is_file())
        if not self.videos:
            raise BenchError("no .mp4 training clips found", path=self.root,
                             fix="pass --data a folder of talking-face videos")
        unlabeled = [p.name for p in self.videos if _labels_for(p) is None]
        if unlabeled:
            raise BenchError(f"{len(unlabeled)} clip(s) have no AU labels, e.g. {unlabeled[0]}",
                             path=self.root,
                             fix="put <stem>.npy or <stem>.csv ((T, 24) per frame) by each video")
        self.backbone, self.face_embedding, self.emotion = backbone, face_embedding, emotion
        self._classify: Emotion2vecClassifier | None = None
        self._cache: OrderedDict[Path, Clip] = OrderedDict()

    def clip(self, path: Path) -> Clip:
        if path not in self._cache:
            self._cache[path] = self._load(path)
            if len(self._cache) > CLIP_CACHE:
                self._cache.popitem(last=False)
        return self._cache[path]

    def _emotions(self, audio: np.ndarray, count: int) -> np.ndarray:
        bb = self.backbone
        if self.emotion == "none":
            return np.full(count, bb.cfg.emotion_classes)
        if bb.emotion2vec is None or not bb.has_classifier:
            raise BenchError("--emotion audio needs MEMO's emotion models",
                             fix="`auhead-bench weights pull memo-emotion2vec "
                             "memo-audio-emotion-classifier`, or --emotion none")
        if self._classify is None:
            self._classify = Emotion2vecClassifier(str(bb.emotion2vec), bb.net.emotion_classifier,
                                                   str(bb.device))
        return emotion_labels(audio, count, self._classify)

    def _load(self, path: Path) -> Clip:
        bb = self.backbone
        cfg = bb.cfg
        size = cfg.resolution
        video = media.decode_video(path, fps=cfg.fps)
        count = len(video.frames)
        needed = cfg.n_sample_frames + cfg.n_past_frames + 2 * 2
        if count <= needed:
            raise BenchError(f"clip has {count} frames at {cfg.fps} fps, MEMO's windows need "
                             f"more than {needed}", path=path)
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
                           for f in video.frames])
        height, width = video.frames.shape[1:3]
        placement, landmarks = au_mesh.place_on(video.frames[0])
        on_square = placement.scaled(size / width, size / height)
        count25 = max(1, round(count * VIDEO_FPS / cfg.fps))
        aus25 = conditioning_track(_labels_for(path), count25, source_fps=video.source_fps)
        aus = resample_track(aus25, count, VIDEO_FPS, cfg.fps)
        images = au_mesh.render_track(aus, on_square, size, size, landmark_thickness(size))
        audio = wav2vec2_frames(bb.wav2vec2, video.audio, count, cfg.fps)
        dim = cfg.face_embedding_dim
        if self.face_embedding == "zeros":
            embedding = torch.zeros(1, dim)
        elif bb.face_model is None:
            raise BenchError("no face embedder for --face-embedding arcface",
                             fix="`auhead-bench weights pull memo-face-arcface`, or "
                             "--face-embedding zeros")
        else:
            from auhead_bench_methods.auhead.hallo.conditions import ArcFaceEmbedder

            vector = ArcFaceEmbedder(str(bb.face_model))(video.frames[0], landmarks)
            embedding = torch.from_numpy(vector)[None]
        return Clip(frames, audio, aus, images, self._emotions(video.audio, count), embedding)

    def batch(self, size: int, rng: random.Random) -> list[dict[str, Any]]:
        """``size`` samples as MEMO's VideoDataset draws them."""
        cfg = self.backbone.cfg
        window, past, margin = cfg.n_sample_frames, cfg.n_past_frames, 2
        samples = []
        for _ in range(size):
            clip = self.clip(rng.choice(self.videos))
            last = len(clip.frames) - window - margin - 1
            start = rng.randint(past, last)
            reference = clip.frames[rng.randint(past, last)]
            span = slice(start, start + window)
            previous = clip.frames[start - past : start]
            if rng.random() < DATASET_DROP:
                previous = np.repeat(clip.frames[start][None], past, 0)
            audio = audio_windows(clip.audio)[span].clone()
            if rng.random() < DATASET_DROP:  # the window's first frames see repeated edges
                for i in range(margin):
                    audio[i, : margin - i] = audio[i, margin - i]
            samples.append({
                "target": clip.frames[span],
                "references": np.concatenate([reference[None], previous]),
                "audio": audio, "au_window": au_windows(clip.aus)[span],
                "landmarks": clip.landmarks[span], "embedding": clip.embedding,
                "emotion": clip_emotion(clip.emotions[span]),
            })
        return samples


def loss_for(bb: MemoBackbone, adapter: SpatialAUAdapter, samples: list[dict[str, Any]],
             scheduler: Any, rates: dict[str, float], generator: torch.Generator,
             rng: random.Random) -> torch.Tensor:
    """MEMO's fine-tuning objective on one batch, the AU adapter in the loop."""
    net, cfg = bb.net, bb.cfg
    device, dtype = bb.device, bb.dtype
    batch, frames = len(samples), cfg.n_sample_frames
    images = 1 + cfg.n_past_frames

    def draw(rate: float) -> list[bool]:
        return [rng.random() < rate for _ in range(batch)]

    start, no_image, no_audio = draw(START_RATIO), draw(rates["image_dropout"]), \
        draw(rates["audio_dropout"])
    with torch.no_grad():
        target = to_unit(np.concatenate([s["target"] for s in samples]))
        latents = bb.encode(target, generator).reshape(batch, frames, -1, bb.latent_size,
                                                       bb.latent_size).transpose(1, 2)
        references = to_unit(np.concatenate([s["references"] for s in samples]))
        references = references.reshape(batch, images, *references.shape[1:])
        references[torch.tensor(start), 1:] = 0.0  # start_ratio: no past frames yet
        reference_latents = bb.encode(references.flatten(0, 1), generator)
        keep = torch.tensor([not d for d in no_image], dtype=dtype, device=device)
        reference_latents = reference_latents * keep.repeat_interleave(images).view(-1, 1, 1, 1)
        embedding = torch.cat([s["embedding"] for s in samples]).to(device, dtype)
        tokens = net.image_proj(embedding)
        bank = net.reference(reference_latents, tokens.repeat_interleave(images, 0), images)
        features = torch.stack([s["audio"] for s in samples]).to(device, dtype)
        audio_on = torch.tensor([not d for d in no_audio], dtype=dtype, device=device)
        audio = net.audio_proj(features * audio_on.view(-1, 1, 1, 1, 1))
    noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
    u = torch.sigmoid(torch.randn(batch, generator=generator))  # logit-normal (0, 1)
    index = (u * scheduler.config.num_train_timesteps).long().clamp(
        max=len(scheduler.timesteps) - 1)
    timesteps = scheduler.timesteps[index].to(device)
    sigmas = scheduler.sigmas[index].to(device, dtype).view(-1, 1, 1, 1, 1)
    noisy = sigmas * noise + (1.0 - sigmas) * latents
    au_on = (torch.rand(batch, generator=generator) >= rates["au_dropout"]).to(device, dtype)
    au_tokens = adapter.tokens(torch.from_numpy(np.concatenate([s["au_window"] for s in samples]))
                               .to(device, dtype))
    landmarks = to_unit(np.concatenate([s["landmarks"] for s in samples])).to(device, dtype)
    au_features = adapter.landmark_features(landmarks)
    au_features = au_features.reshape(batch, frames, *au_features.shape[1:]).transpose(1, 2)
    cond = MemoConditions(
        image_tokens=tokens, audio_tokens=audio,
        emotion=torch.tensor([s["emotion"] for s in samples], device=device),
        bank=bank, memory=MotionMemory(),
        mask_features=au_features * au_on.view(-1, 1, 1, 1, 1),
        cross_attention_kwargs={"au_tokens": au_tokens,
                                "au_mask": au_on.repeat_interleave(frames)},
    )
    prediction = net.diffusion_net(noisy, timesteps, cond)
    estimate = noisy.float() - sigmas.float() * prediction.float()
    per_sample = (estimate - latents.float()).pow(2).mean(dim=(1, 2, 3, 4))
    valid = per_sample <= ROBUST_LIMIT  # robust_training
    return (per_sample * valid).sum() / valid.sum().clamp(min=1)


def _checkpoint(out: Path, adapter: SpatialAUAdapter, optimiser: torch.optim.Optimizer,
                step: int, rng: random.Random, generator: torch.Generator,
                backbone: MemoBackbone | None) -> None:
    folder = out / "checkpoint"
    folder.mkdir(parents=True, exist_ok=True)
    save_model(out, adapter, None if (out / "backbone").is_dir() else backbone)
    torch.save({"optimiser": optimiser.state_dict(), "generator": generator.get_state()},
               folder / "state.pt")
    version, internal, gauss = rng.getstate()
    tmp = folder / "progress.json.tmp"
    tmp.write_text(json.dumps({"step": step, "rng": [version, list(internal), gauss]}))
    tmp.replace(folder / "progress.json")  # last: a checkpoint counts only once complete


def _adapter_file(out: Path) -> Path:
    folder = out / "adapter"
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise BenchError("checkpoint without adapter weights", path=folder,
                     fix="delete OUT/checkpoint to start over")


def train_memo(data: Path, out: Path, init: str | None, steps: int, batch_size: int,
               lr: float | None, au_dropout: float | None, image_dropout: float | None,
               audio_dropout: float | None, device: str, seed: int, save_every: int,
               face_embedding: str = "arcface", emotion: str = "audio",
               progress: bool = True) -> dict[str, Any]:
    """Train (or resume training) the AU adapter on MEMO; returns a summary."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from auhead_bench.provenance import resolve_device

    device = resolve_device(device)
    out = Path(out)
    given = {"lr": lr, "au_dropout": au_dropout, "image_dropout": image_dropout,
             "audio_dropout": audio_dropout}
    rates = {k: MEMO_DEFAULTS[k] if v is None else v for k, v in given.items()}
    local = Path(init).expanduser() if init else None
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    backbone = MemoBackbone.load(local).to(device, dtype)
    backbone.net.diffusion_net.train()  # MEMO's model.train(): its emotion dropout is on
    torch.manual_seed(seed)
    adapter = new_adapter(backbone).to(device)
    adapter.train()
    attach(backbone.net.diffusion_net, adapter)
    backbone.net.diffusion_net.gradient_checkpointing = True  # as MEMO trains
    optimiser = torch.optim.AdamW(adapter.parameters(), lr=rates["lr"], betas=(0.9, 0.999),
                                  weight_decay=1e-2, eps=1e-8)
    rng, generator = random.Random(seed), torch.Generator("cpu").manual_seed(seed)
    start = 0
    progress_file = out / "checkpoint" / "progress.json"
    if progress_file.is_file():
        state = json.loads(progress_file.read_text())
        adapter.load_state_dict(load_state_dict(_adapter_file(out)))
        saved = torch.load(out / "checkpoint" / "state.pt", map_location="cpu",
                           weights_only=True)
        optimiser.load_state_dict(saved["optimiser"])
        generator.set_state(saved["generator"])
        version, internal, gauss = state["rng"]
        rng.setstate((version, tuple(internal), gauss))
        start = int(state["step"])
    out.mkdir(parents=True, exist_ok=True)
    arguments = {"data": str(data), "init": init, "steps": steps, "batch_size": batch_size,
                 **rates, "device": device, "seed": seed, "backbone": "memo",
                 "face_embedding": face_embedding, "emotion": emotion, "resumed_from": start}
    (out / "train_args.json").write_text(json.dumps(arguments, indent=2))
    source = MemoTrainingData(data, backbone, face_embedding, emotion)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(backbone.cfg.scheduler)
    keep_backbone = backbone if local is not None else None
    losses: list[float] = []
    left_out = 0
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar, \
            (out / "train_log.jsonl").open("a") as log:
        task = bar.add_task("train stage2 (memo)", total=steps, completed=start)
        for step in range(start + 1, steps + 1):
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                enabled=device.startswith("cuda")):
                loss = loss_for(backbone, adapter, source.batch(batch_size, rng), scheduler,
                                rates, generator, rng)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(adapter.parameters(), 1.0)
            optimiser.step()
            losses.append(float(loss.detach()))
            # robust_training left out every sample (all above ROBUST_LIMIT): nothing learnt
            left_out += losses[-1] == 0.0
            log.write(json.dumps({"step": step, "loss": losses[-1]}) + "\n")
            log.flush()
            bar.update(task, advance=1, description=f"loss {losses[-1]:.4f}")
            if save_every and step % save_every == 0:
                _checkpoint(out, adapter, optimiser, step, rng, generator, keep_backbone)
    _checkpoint(out, adapter, optimiser, steps, rng, generator, keep_backbone)
    if left_out:
        log_line = (f"warning: at {left_out} of {steps - start} steps robust training (MEMO's) "
                    f"left out every sample, whose loss was above {ROBUST_LIMIT}: those steps "
                    "learnt nothing (expected only with untrained or mismatched weights)")
        print(log_line, file=sys.stderr)
    return {"steps": steps, "resumed_from": start, "steps_all_left_out": left_out,
            "final_loss": losses[-1] if losses else None, "out": str(out)}
