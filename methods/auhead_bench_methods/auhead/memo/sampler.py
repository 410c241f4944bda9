"""AUHead stage 2 on MEMO: the AU adapter attached to the frozen backbone, sampling long clips
as MEMO's ``inference.py`` and ``VideoPipeline`` do.

MEMO renders at 30 fps: the AU track (25 fps) is resampled linearly in time to 30 fps, the
video generated at 30 fps, and frames picked back at 25 fps (nearest in time), one per AU row.
A clip is generated in windows of ``n_sample_frames`` (16). The reference net sees the
reference image and ``n_past_frames`` (16) past frames: for the first window the reference
repeated, then the last 16 frames generated; the motion modules' memory is built from the
first window's past frames, then at the first step of every later window decayed and
extended with the new ones (MEMO's ``is_new_audio`` / ``update_past_memory``), and read at
every other step. Audio, emotion and AUs are padded to whole windows and the video is cut
back. Each window: flow-matching Euler (``FlowMatchEulerDiscreteScheduler`` at its defaults,
the network predicting the velocity noise - x0), 20 steps, AU disentanglement guidance
(guidance.py) with one batched call per step; its c_H = 0 rows are MEMO's unconditional
rows: face tokens of a zero embedding (also for the reference net's pass), zero audio tokens,
the "no emotion" class, no reference-image attention; the past frames and the memory stay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from auhead_bench.errors import BenchError
from auhead_bench.weights import WeightsMissing, file_sha256
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.adapter import SpatialAUAdapter, attach, au_windows
from auhead_bench_methods.auhead.au_space import VIDEO_FPS
from auhead_bench_methods.auhead.declarations import (
    STAGE2_VERSION,
    Stage2Options,
    memo_specs,
    sampler_name,
    sampling_steps,
)
from auhead_bench_methods.auhead.guidance import FORMS, conditional_noise, guided_noise
from auhead_bench_methods.auhead.hallo.reference import ReferenceBank
from auhead_bench_methods.auhead.memo.audio import (
    Emotion2vecClassifier,
    audio_windows,
    clip_emotion,
    emotion_labels,
    wav2vec2_frames,
)
from auhead_bench_methods.auhead.memo.backbone import MemoBackbone
from auhead_bench_methods.auhead.memo.blocks import MotionMemory
from auhead_bench_methods.auhead.memo.unet3d import MemoConditions

MODEL_FILE = "auhead_stage2.json"
BACKBONE = "memo"


def to_unit(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    return ((pixels.float() + 1) * 127.5).round().clamp(0, 255).permute(0, 2, 3, 1).to(
        torch.uint8).cpu().numpy()


def landmark_thickness(resolution: int) -> int:
    return max(1, round(resolution / 256))


def resample_track(track: np.ndarray, count: int, source_fps: float,
                   target_fps: float) -> np.ndarray:
    """(T, D) rows at ``source_fps`` -> (count, D) at ``target_fps``, linear in time."""
    track = np.asarray(track, np.float32)
    times = np.arange(count) / target_fps * source_fps
    grid = np.arange(len(track))
    return np.stack([np.interp(times, grid, track[:, d]) for d in range(track.shape[1])],
                    axis=1).astype(np.float32)


def frames_at(fps_out: float, fps_in: float, count: int, available: int) -> np.ndarray:
    """Indices of the ``fps_in`` frames nearest in time to ``count`` frames at ``fps_out``."""
    index = np.rint(np.arange(count) * fps_in / fps_out).astype(np.int64)
    return np.clip(index, 0, available - 1)


def new_adapter(backbone: MemoBackbone, **kwargs: Any) -> SpatialAUAdapter:
    cfg = backbone.cfg
    defaults = {"token_dim": cfg.cross_attention_dim, "landmark_channels": cfg.landmark_channels}
    return SpatialAUAdapter.for_unet(backbone.net.diffusion_net, cfg.block_out_channels[0],
                                     **{**defaults, **kwargs})


def save_model(folder: Path, adapter: SpatialAUAdapter, backbone: MemoBackbone | None) -> None:
    """A stage-2 model folder: adapter/ (+ backbone/ when it does not come from the cache)."""
    folder = Path(folder)
    adapter.save_pretrained(folder / "adapter")
    if backbone is not None:
        backbone.save_folder(folder / "backbone")
    meta = {"stage2_version": STAGE2_VERSION, "backbone": BACKBONE}
    (folder / MODEL_FILE).write_text(json.dumps(meta, indent=2))


def row_bank(on: ReferenceBank, off: ReferenceBank | None, rows: list[bool]) -> ReferenceBank:
    """The reference features for stacked rows: each row its pass (conditional or not)."""
    features = {}
    for name, tensor in on.features.items():
        parts = [tensor if row or off is None else off.features[name] for row in rows]
        features[name] = torch.cat(parts)
    return ReferenceBank(features, on.images_per_sample)


def resolve_dtype(precision: str, device: str) -> torch.dtype:
    """auto: bf16 on a GPU (MEMO's ``weight_dtype``), fp32 on a CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, precision)


class MemoStage2Model:
    """The frozen MEMO backbone with the trained AU adapter attached."""

    def __init__(self, backbone: MemoBackbone, adapter: SpatialAUAdapter, files: dict[str, str]):
        self.backbone, self.adapter, self.files = backbone, adapter, files
        self.attachment = attach(backbone.net.diffusion_net, adapter)
        self._classify: Emotion2vecClassifier | None = None  # loaded on first use

    @classmethod
    def load(cls, folder: Path, device: str, precision: str = "auto") -> MemoStage2Model:
        folder = Path(folder)
        meta = json.loads((folder / MODEL_FILE).read_text()) if (folder / MODEL_FILE).is_file() \
            else {}
        if meta.get("backbone", BACKBONE) != BACKBONE:
            raise BenchError(f"this stage-2 model was trained on {meta['backbone']!r}",
                             path=folder, fix="set the method's backbone option to match")
        if not (folder / "adapter").is_dir():
            pulls = " ".join(spec.name for spec in memo_specs().values())
            raise WeightsMissing(
                f"weights missing: no AUHead adapter for memo at {folder} (the authors "
                f"released none); run `auhead-bench weights pull {pulls}`, then "
                f"`auhead-bench train stage2 --backbone memo --data CLIPS --out {folder}`")
        dtype = resolve_dtype(precision, device)
        local = folder / "backbone"
        backbone = MemoBackbone.load(local if local.is_dir() else None).to(device, dtype)
        adapter = SpatialAUAdapter.from_pretrained(folder / "adapter", torch_dtype=dtype)
        adapter.to(device).eval()
        files = {f"backbone/{k}": v for k, v in backbone.files.items()}
        files.update({p.relative_to(folder).as_posix(): file_sha256(p)
                      for p in sorted((folder / "adapter").rglob("*")) if p.is_file()})
        return cls(backbone, adapter, files)

    def face_embedding(self, image: np.ndarray, landmarks: np.ndarray | None,
                       options: Stage2Options) -> torch.Tensor:
        dim = self.backbone.cfg.face_embedding_dim
        if options.face_embedding == "zeros":
            return torch.zeros(1, dim)
        if self.backbone.face_model is None:
            raise WeightsMissing("weights missing: run `auhead-bench weights pull "
                                 "memo-face-arcface` (MEMO's identity embedder), or set "
                                 "face_embedding: zeros")
        from auhead_bench_methods.auhead.hallo.conditions import ArcFaceEmbedder

        embedder = ArcFaceEmbedder(str(self.backbone.face_model))
        return torch.from_numpy(embedder(image, landmarks))[None]

    def emotions(self, audio: np.ndarray, total: int, options: Stage2Options) -> np.ndarray:
        """One emotion class per window (MEMO's classes; the last index is "no emotion")."""
        cfg = self.backbone.cfg
        windows = total // cfg.n_sample_frames
        if options.emotion == "none":
            return np.full(windows, cfg.emotion_classes)
        bb = self.backbone
        if bb.emotion2vec is None or not bb.has_classifier:
            raise WeightsMissing("weights missing: run `auhead-bench weights pull memo-emotion2vec "
                                 "memo-audio-emotion-classifier` (MEMO's audio emotion), or set "
                                 "emotion: none")
        if self._classify is None:
            self._classify = Emotion2vecClassifier(str(bb.emotion2vec),
                                                   bb.net.emotion_classifier, str(bb.device))
        labels = emotion_labels(audio, total, self._classify)
        return np.array([clip_emotion(labels[w * cfg.n_sample_frames:(w + 1) *
                                             cfg.n_sample_frames]) for w in range(windows)])

    @torch.no_grad()
    def generate(self, reference: np.ndarray, audio: np.ndarray, aus: np.ndarray,
                 options: Stage2Options, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """(T, H, W, 3) uint8 frames at the reference's size, one per AU row (25 fps)."""
        bb, adapter = self.backbone, self.adapter
        cfg, net, device, dtype = bb.cfg, bb.net, bb.device, bb.dtype
        size, clip, past_count = cfg.resolution, cfg.n_sample_frames, cfg.n_past_frames
        count = len(aus)
        count_memo = int(np.ceil(count * cfg.fps / VIDEO_FPS))
        aus_memo = resample_track(aus, count_memo, VIDEO_FPS, cfg.fps)
        height, width = reference.shape[:2]
        square = cv2.resize(reference, (size, size), interpolation=cv2.INTER_AREA)
        placement, landmarks = au_mesh.place_on(reference)
        on_square = placement.scaled(size / width, size / height)
        windows = -(-count_memo // clip)
        total = windows * clip
        padded_aus = np.concatenate([aus_memo, np.repeat(aus_memo[-1:], total - count_memo, 0)])
        audio_emb = audio_windows(wav2vec2_frames(bb.wav2vec2, audio, total, cfg.fps))
        emotions = self.emotions(audio, total, options)
        au_window = torch.from_numpy(au_windows(padded_aus)).to(device, dtype)
        landmark_pixels = to_unit(au_mesh.render_track(
            padded_aus, on_square, size, size, landmark_thickness(size)))
        embedding = self.face_embedding(reference, landmarks, options).to(device, dtype)
        tokens_on = net.image_proj(embedding)
        tokens_off = net.image_proj(torch.zeros_like(embedding))  # MEMO's unconditional face
        rows = [h for h, _ in FORMS[options.guidance_form]] if options.guidance else [True]
        memory = MotionMemory()
        reference_pixels = to_unit(square[None])
        past = reference_pixels.repeat(past_count, 1, 1, 1)
        generator = torch.Generator("cpu").manual_seed(seed)
        out = []
        for w in range(windows):
            span = slice(w * clip, (w + 1) * clip)
            images = len(past) + 1
            latents_in = bb.encode(torch.cat([reference_pixels, past]))
            bank_on = net.reference(latents_in, tokens_on.repeat(images, 1, 1), images)
            bank_off = (net.reference(latents_in, tokens_off.repeat(images, 1, 1), images)
                        if not all(rows) else None)
            memory.mode = "reset" if w == 0 else "update"
            parts = {
                "bank": row_bank(bank_on, bank_off, rows), "memory": memory,
                "audio": net.audio_proj(audio_emb[span][None].to(device, dtype)),
                "emotion": int(emotions[w]),
                "au_tokens": adapter.tokens(au_window[span]),
                "au_features": adapter.landmark_features(landmark_pixels[span].to(device, dtype)),
                "on": tokens_on, "off": tokens_off,
            }
            latents = self._sample(parts, clip, options, generator)
            pixels = bb.decode(latents[0].transpose(0, 1))
            out.append(to_uint8(pixels))
            past = pixels[-past_count:].cpu()
        video_memo = np.concatenate(out)[:count_memo]
        video = video_memo[frames_at(VIDEO_FPS, cfg.fps, count, count_memo)]
        if (height, width) != (size, size):
            video = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC)
                              for f in video])
        info = {"placement": placement.source, "resolution": size, "windows": windows,
                "emotion": [int(e) for e in emotions], **bb.describe()}
        return video, info

    def _sample(self, parts: dict[str, Any], frames: int, options: Stage2Options,
                generator: torch.Generator) -> torch.Tensor:
        """One window's latents (1, 4, F, h, w), denoised with the chosen guidance."""
        import diffusers

        bb = self.backbone
        net, device, dtype, cfg = bb.net, bb.device, bb.dtype, bb.cfg
        if sampler_name(options, BACKBONE) != "euler":
            raise BenchError(f"the memo backbone samples with flow-matching Euler, not "
                             f"{options.scheduler!r}", fix="set scheduler: auto (or euler)")
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(cfg.scheduler)
        scheduler.set_timesteps(sampling_steps(options, BACKBONE), device=device)
        shape = (1, cfg.latent_channels, frames, bb.latent_size, bb.latent_size)
        latents = torch.randn(shape, generator=generator).to(device, dtype)
        au_features = parts["au_features"].transpose(0, 1)[None]  # (1, C0, F, h, w)
        emotion = torch.tensor([parts["emotion"]], device=device)
        null = torch.full_like(emotion, cfg.emotion_classes)

        def denoise(zs: torch.Tensor, h_on: torch.Tensor, au_on: torch.Tensor,
                    t: torch.Tensor) -> torch.Tensor:
            rows = len(zs)
            on = h_on > 0
            cond = MemoConditions(
                image_tokens=torch.where(on.view(-1, 1, 1), parts["on"], parts["off"]),
                audio_tokens=parts["audio"].repeat(rows, 1, 1, 1) * h_on.view(-1, 1, 1, 1),
                emotion=torch.where(on, emotion.expand(rows), null.expand(rows)),
                bank=parts["bank"], memory=parts["memory"], h_on=h_on,
                mask_features=au_features * au_on.view(-1, 1, 1, 1, 1),
                cross_attention_kwargs={"au_tokens": parts["au_tokens"].repeat(rows, 1, 1),
                                        "au_mask": au_on.repeat_interleave(frames)},
            )
            return net.diffusion_net(zs, t, cond)

        for t in scheduler.timesteps:
            def at_t(zs: torch.Tensor, h: torch.Tensor, a: torch.Tensor,
                     step: torch.Tensor = t) -> torch.Tensor:
                return denoise(zs, h, a, step)

            if options.guidance:
                velocity = guided_noise(at_t, latents, options.s_h, options.s_au,
                                        options.guidance_form)
            else:
                velocity = conditional_noise(at_t, latents)
            latents = scheduler.step(velocity, t, latents).prev_sample
        return latents
