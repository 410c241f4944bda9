"""`auhead-bench train stage2 --backbone hallo_v1`: train only the AU adapter on frozen Hallo v1.

Hallo's own stage-2 recipe (``configs/train/stage2.yaml``, ``scripts/train_stage2.py``),
applied to the adapter: v-prediction on the zero-SNR schedule with *scaled_linear* betas
(``get_noise_scheduler``: inference keeps ``linear``, training switches to ``scaled_linear``),
min-SNR loss weighting (``snr_gamma`` 5, SNR + 1 for v-prediction) applied as Hallo does, the
batch-mean MSE times the batch-mean weight, ``noise_offset`` 0.05, AdamW (lr 1e-5, betas
0.9/0.999, weight decay 1e-2; Hallo uses bitsandbytes' 8-bit AdamW), gradient norm clipped at
1.0, clips of ``n_sample_frames`` (14 in its config; 16 at inference, used here so train =
sample) with ``n_motion_frames`` 2. Condition dropout, one draw per batch as Hallo's: the
reference (``uncond_img_ratio`` 0.05: the ReferenceNet is not run, so no reference
attention, and every motion module gets 4 all-zero motion frames, as Hallo's blocks do with
an empty bank), the audio (``uncond_audio_ratio`` 0.05: zero audio tokens), the motion frames
(``start_ratio`` 0.05: their pixels zeroed before encoding, a clip's start); the AU condition
(c_AU = 0) with ``--au-dropout`` (0.05, Hallo's rate for its own conditions; also per batch:
the paper gives none [gap]).

A sample: ``n_sample_frames`` consecutive frames of a clip; the reference a random frame of the
clip; motion frames the frames just before the window (the reference repeated at a clip's
start, as inference's first window); masks the union of the clip's face and lip boxes
(Hallo's data_preprocess, conditions.clip_regions); the landmark placement from the clip's
first frame. Training data: a folder of videos with ``<stem>.npy``/``.csv`` AU labels beside.

Resumable: every ``--save-every`` steps the adapter, the optimiser, the step and the random
states go to ``OUT/checkpoint/``; running the same command again continues from there (a kill
loses at most ``--save-every`` steps). bf16 autocast on GPU (the frozen backbone stored in
bf16, the adapter in fp32).
"""

from __future__ import annotations

import json
import random
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
from auhead_bench_methods.auhead.hallo.backbone import HalloBackbone
from auhead_bench_methods.auhead.hallo.conditions import (
    ArcFaceEmbedder,
    audio_windows,
    clip_regions,
    wav2vec2_frames,
)
from auhead_bench_methods.auhead.hallo.sampler import (
    landmark_thickness,
    new_adapter,
    save_model,
    to_unit,
)
from auhead_bench_methods.auhead.hallo.unet3d import (
    EMPTY_BANK_MOTION_FRAMES,
    Conditions,
    RegionMasks,
)

HALLO_DEFAULTS = {"lr": 1e-5, "au_dropout": 0.05, "image_dropout": 0.05, "audio_dropout": 0.05,
                  "start_ratio": 0.05}
NOISE_OFFSET = 0.05
SNR_GAMMA = 5.0
CLIP_CACHE = 8


@dataclass
class Clip:
    frames: np.ndarray  # (T, R, R, 3) uint8
    audio: torch.Tensor  # (T, 5, layers, hidden)
    aus: np.ndarray  # (T, 24)
    landmarks: np.ndarray  # (T, R, R, 3) uint8
    regions: Any  # FaceRegions
    embedding: torch.Tensor  # (1, face_embedding_dim)


class HalloTrainingData:
    """Clips under a folder (labels beside each), decoded on demand, a few kept."""

    def __init__(self, root: Path, backbone: HalloBackbone, face_embedding: str):
        self.root = Path(root)
        self.videos = sorted(p for p in self.root.rglob("*.mp4") if p.is_file())
        if not self.videos:
            raise BenchError("no .mp4 training clips found", path=self.root,
                             fix="pass --data a folder of talking-face videos")
        unlabeled = [p.name for p in self.videos if _labels_for(p) is None]
        if unlabeled:
            raise BenchError(f"{len(unlabeled)} clip(s) have no AU labels, e.g. {unlabeled[0]}",
                             path=self.root,
                             fix="put <stem>.npy or <stem>.csv ((T, 24) at 25 fps) by each video")
        self.backbone, self.face_embedding = backbone, face_embedding
        self._cache: OrderedDict[Path, Clip] = OrderedDict()

    def clip(self, path: Path) -> Clip:
        if path not in self._cache:
            self._cache[path] = self._load(path)
            if len(self._cache) > CLIP_CACHE:
                self._cache.popitem(last=False)
        return self._cache[path]

    def _load(self, path: Path) -> Clip:
        bb = self.backbone
        size = bb.cfg.resolution
        video = media.decode_video(path)
        count = len(video.frames)
        if count < bb.cfg.n_sample_frames:
            raise BenchError(f"clip has {count} frames, fewer than a window "
                             f"({bb.cfg.n_sample_frames})", path=path)
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
                           for f in video.frames])
        height, width = video.frames.shape[1:3]
        placement, landmarks = au_mesh.place_on(video.frames[0])
        on_square = placement.scaled(size / width, size / height)
        # labels are per frame of their own video (MEAD: 30 fps): resampled to 25 fps
        aus = conditioning_track(_labels_for(path), count,
                                 source_fps=media.probe_video(path).source_fps)
        images = au_mesh.render_track(aus, on_square, size, size, landmark_thickness(size))
        audio = audio_windows(wav2vec2_frames(bb.wav2vec2, video.audio, count))
        dim = bb.cfg.face_embedding_dim
        if self.face_embedding == "zeros" or bb.face_model is None:
            if self.face_embedding != "zeros":
                raise BenchError("no face embedder for --face-embedding arcface",
                                 fix="`auhead-bench weights pull hallo-face-arcface`, or "
                                 "--face-embedding zeros")
            embedding = torch.zeros(1, dim)
        else:
            vector = ArcFaceEmbedder(str(bb.face_model))(video.frames[0], landmarks)
            embedding = torch.from_numpy(vector)[None]
        return Clip(frames, audio, aus, images, clip_regions(frames, on_square), embedding)

    def batch(self, size: int, rng: random.Random) -> list[dict[str, Any]]:
        """``size`` samples: window frames, reference + motion frames, audio, AUs, masks."""
        cfg = self.backbone.cfg
        window, motion = cfg.n_sample_frames, cfg.n_motion_frames
        samples = []
        for _ in range(size):
            clip = self.clip(rng.choice(self.videos))
            count = len(clip.frames)
            start = rng.randrange(count - window + 1)
            reference = clip.frames[rng.randrange(count)]
            if start >= motion:
                previous = clip.frames[start - motion : start]
            else:
                previous = np.repeat(reference[None], motion, 0)
            span = slice(start, start + window)
            samples.append({
                "target": clip.frames[span], "references": np.concatenate([reference[None],
                                                                           previous]),
                "audio": clip.audio[span], "au_window": au_windows(clip.aus)[span],
                "landmarks": clip.landmarks[span], "regions": clip.regions,
                "embedding": clip.embedding,
            })
        return samples


def _labels_for(video: Path) -> Path | None:
    for suffix in (".npy", ".csv"):
        if video.with_suffix(suffix).is_file():
            return video.with_suffix(suffix)
    return None


def training_scheduler(config: dict[str, Any]) -> Any:
    """Hallo's ``train_noise_scheduler``: its inference schedule with ``scaled_linear`` betas
    (``get_noise_scheduler`` switches the beta schedule for training only)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config({**config, "beta_schedule": "scaled_linear"})


def min_snr_weights(scheduler: Any, timesteps: torch.Tensor) -> torch.Tensor:
    """Hallo's loss weights: min(SNR, gamma) / SNR, with SNR + 1 under v-prediction."""
    alphas = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    snr = alphas / (1 - alphas).clamp(min=1e-8)
    if scheduler.config.prediction_type == "v_prediction":
        snr = snr + 1
    return torch.minimum(snr, torch.full_like(snr, SNR_GAMMA)) / snr


def min_snr_loss(prediction: torch.Tensor, target: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
    """Hallo's reduction: ``F.mse_loss(..., "mean")`` is already a scalar, so its per-sample
    mean is that scalar and the result is the batch-mean MSE times the batch-mean weight."""
    mse = (prediction.float() - target.float()).pow(2).mean()
    return (mse * weights).mean()


@dataclass(frozen=True)
class Dropout:
    """One batch's condition drops (Hallo draws each once per batch)."""

    reference: bool  # ReferenceNet skipped: no reference attention, zero motion frames
    audio: bool
    start: bool  # motion frames' pixels zeroed
    au: bool

    @classmethod
    def draw(cls, rates: dict[str, float], generator: torch.Generator) -> Dropout:
        keys = ("image_dropout", "audio_dropout", "start_ratio", "au_dropout")
        draws = torch.rand(len(keys), generator=generator).tolist()
        return cls(*(d < rates.get(k, HALLO_DEFAULTS[k]) for d, k in zip(draws, keys, strict=True)))


def loss_for(bb: HalloBackbone, adapter: SpatialAUAdapter, samples: list[dict[str, Any]],
             scheduler: Any, rates: dict[str, float], generator: torch.Generator,
             drop: Dropout | None = None) -> torch.Tensor:
    """Hallo's stage-2 objective on one batch, the AU adapter in the loop."""
    net, cfg = bb.net, bb.cfg
    device, dtype = bb.device, bb.dtype
    batch, frames = len(samples), cfg.n_sample_frames
    images_per = 1 + cfg.n_motion_frames
    drop = drop or Dropout.draw(rates, generator)
    with torch.no_grad():
        target = to_unit(np.concatenate([s["target"] for s in samples]))
        latents = bb.encode(target, generator).reshape(batch, frames, -1, bb.latent_size,
                                                       bb.latent_size).transpose(1, 2)
        embedding = torch.cat([s["embedding"] for s in samples]).to(device, dtype)
        tokens = net.imageproj(embedding)
        bank = None
        if not drop.reference:
            references = to_unit(np.concatenate([s["references"] for s in samples]))
            if drop.start:  # Hallo: pixel_values_ref_img[:, 1:] = 0.0
                references = references.reshape(batch, images_per, *references.shape[1:])
                references[:, 1:] = 0.0
                references = references.flatten(0, 1)
            bank = net.writer(bb.encode(references, generator),
                              tokens.repeat_interleave(images_per, 0), images_per)
        audio = net.audioproj(torch.stack([s["audio"] for s in samples]).to(device, dtype))
        if drop.audio:
            audio = torch.zeros_like(audio)
        locator = torch.cat([
            net.face_locator(torch.from_numpy(s["regions"].locator)[None, None]
                             .repeat(1, 3, 1, 1).to(device, dtype)) for s in samples])
        levels = [s["regions"].levels(bb.latent_size, len(cfg.block_out_channels))
                  for s in samples]
        masks = RegionMasks(*([torch.cat([lv[k][d] for lv in levels]).to(device, dtype)
                               for d in range(len(cfg.block_out_channels))] for k in range(3)))
    noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
    noise = noise + NOISE_OFFSET * torch.randn((batch, latents.shape[1], 1, 1, 1),
                                               generator=generator).to(device, dtype)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,),
                              generator=generator).to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    au_on = torch.full((batch,), 0.0 if drop.au else 1.0, device=device, dtype=dtype)
    au_tokens = adapter.tokens(torch.from_numpy(np.concatenate([s["au_window"] for s in samples]))
                               .to(device, dtype))
    landmarks = to_unit(np.concatenate([s["landmarks"] for s in samples])).to(device, dtype)
    au_features = adapter.landmark_features(landmarks)
    au_features = au_features.reshape(batch, frames, *au_features.shape[1:]).transpose(1, 2)
    cond = Conditions(
        image_tokens=tokens,
        audio_tokens=audio,
        masks=masks,
        mask_features=locator[:, :, None] + au_features * au_on.view(-1, 1, 1, 1, 1),
        bank=bank,
        cross_attention_kwargs={"au_tokens": au_tokens,
                                "au_mask": au_on.repeat_interleave(frames)},
        empty_bank_motion_frames=EMPTY_BANK_MOTION_FRAMES if bank is None else 0,
    )
    prediction = net.denoising_unet(noisy, timesteps, cond)
    velocity = scheduler.get_velocity(latents, noise, timesteps)
    return min_snr_loss(prediction, velocity, min_snr_weights(scheduler, timesteps))


def _checkpoint(out: Path, adapter: SpatialAUAdapter, optimiser: torch.optim.Optimizer,
                step: int, rng: random.Random, generator: torch.Generator,
                backbone: HalloBackbone | None) -> None:
    folder = out / "checkpoint"
    folder.mkdir(parents=True, exist_ok=True)
    save_model(out, adapter, None if (out / "backbone").is_dir() else backbone)
    torch.save({"optimiser": optimiser.state_dict(), "generator": generator.get_state()},
               folder / "state.pt")
    version, internal, gauss = rng.getstate()
    state = {"step": step, "rng": [version, list(internal), gauss]}
    tmp = folder / "progress.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(folder / "progress.json")  # last: a checkpoint counts only once complete


def train_hallo(data: Path, out: Path, init: str | None, steps: int, batch_size: int,
                lr: float | None, au_dropout: float | None, image_dropout: float | None,
                audio_dropout: float | None, device: str, seed: int, save_every: int,
                face_embedding: str = "arcface", progress: bool = True,
                start_ratio: float | None = None) -> dict[str, Any]:
    """Train (or resume training) the AU adapter; returns a summary."""
    from auhead_bench.provenance import resolve_device

    device = resolve_device(device)
    out = Path(out)
    given = {"lr": lr, "au_dropout": au_dropout, "image_dropout": image_dropout,
             "audio_dropout": audio_dropout, "start_ratio": start_ratio}
    rates = {k: HALLO_DEFAULTS[k] if v is None else v for k, v in given.items()}
    local = Path(init).expanduser() if init else None
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    backbone = HalloBackbone.load(local).to(device, dtype)
    torch.manual_seed(seed)
    adapter = new_adapter(backbone).to(device)
    adapter.train()
    attach(backbone.net.denoising_unet, adapter)
    backbone.net.denoising_unet.gradient_checkpointing = True  # as Hallo trains
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
                 **rates, "device": device, "seed": seed, "backbone": "hallo_v1",
                 "face_embedding": face_embedding, "resumed_from": start}
    (out / "train_args.json").write_text(json.dumps(arguments, indent=2))
    source = HalloTrainingData(data, backbone, face_embedding)
    scheduler = training_scheduler(backbone.cfg.scheduler)
    keep_backbone = backbone if local is not None else None
    losses: list[float] = []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar, \
            (out / "train_log.jsonl").open("a") as log:
        task = bar.add_task("train stage2 (hallo_v1)", total=steps, completed=start)
        for step in range(start + 1, steps + 1):
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                enabled=device.startswith("cuda")):
                loss = loss_for(backbone, adapter, source.batch(batch_size, rng), scheduler,
                                rates, generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(adapter.parameters(), 1.0)
            optimiser.step()
            losses.append(float(loss.detach()))
            log.write(json.dumps({"step": step, "loss": losses[-1]}) + "\n")
            log.flush()
            bar.update(task, advance=1, description=f"loss {losses[-1]:.4f}")
            if save_every and step % save_every == 0:
                _checkpoint(out, adapter, optimiser, step, rng, generator, keep_backbone)
    _checkpoint(out, adapter, optimiser, steps, rng, generator, keep_backbone)
    return {"steps": steps, "resumed_from": start,
            "final_loss": losses[-1] if losses else None, "out": str(out)}


def _adapter_file(out: Path) -> Path:
    folder = out / "adapter"
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise BenchError("checkpoint without adapter weights", path=folder,
                     fix="delete OUT/checkpoint to start over")
