"""The GPU check: what AUHead's backbones and the suite's extractors cost on one CUDA device.

    python bench/gpu_check.py [--out /tmp/gpu_check.json] [--workdir /tmp/auhead-gpu-check]
                              [--backbones hallo_v1,memo] [--no-extractors]

Meant for the day a GPU is lent (one H100 80 GB: at most 8 minutes, about 3 of them building
random weight files on a first run). Without CUDA it stops at once with one line (exit 2).
It prints one JSON object (also written to --out) and a short table.

- Backbones (``BACKBONES`` below: each named by the modules of its package, imported when
  probed; one that does not import, e.g. ``memo`` before it exists, is reported
  ``unavailable`` with the reason): full-size networks with random weights in bf16 at the
  backbone's resolution and clip length (512 px x 16 frames), driven through the stage-2
  model's own ``generate`` with an attached AU adapter. Seconds per denoising step, from runs
  of 1 and 3 steps (the difference halved: encoders, masks and decoding cancel), with the
  3-term guidance as one batched call (3 rows) and with 1 evaluation (``guidance: false``),
  and the peak GPU memory of each. One adapter training step (the backbone's own
  ``loss_for`` on one sample of a synthetic clip, bf16 autocast, gradient checkpointing, as
  ``train stage2`` runs it): its peak GPU memory and time.
- Extractors: frames/s of Inception (pool3), I3D, SyncNet, S3FD, py-feat and the face track,
  each through the feature store on ``cuda`` and on ``cpu`` (cold caches), on demo clips, with
  the random weight files bench_extraction.py builds (the time a network takes does not depend
  on its values; the S3FD file finds no face, so ``syncnet_s3fd`` measures S3FD alone; the face
  track is dlib on the CPU either way).

Random weights: nothing here says anything about quality; only time and memory.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "auhead-gpu-check"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "gpu_check.json"
NO_CUDA_EXIT = 2


@dataclass(frozen=True)
class BackboneProbe:
    """Where a backbone's parts live: ``module:attribute`` under ``package``."""

    package: str
    config: str
    net: str
    backbone: str
    model: str
    adapter: str
    data: str
    loss: str
    rates: str
    scheduler: str  # a function of the config's scheduler dict, or a diffusers class
    denoiser: str  # the net's attribute holding the denoising UNet (the adapter's host)
    data_args: tuple[str, ...] = ("zeros",)
    options: tuple[tuple[str, Any], ...] = ()  # Stage2Options set where the field exists


BACKBONES: dict[str, BackboneProbe] = {
    "hallo_v1": BackboneProbe(
        "auhead_bench_methods.auhead.hallo", "config:HalloConfig", "net:HalloNet",
        "backbone:HalloBackbone", "sampler:HalloStage2Model", "sampler:new_adapter",
        "train:HalloTrainingData", "train:loss_for", "train:HALLO_DEFAULTS",
        "train:training_scheduler", "denoising_unet",
    ),
    "memo": BackboneProbe(
        "auhead_bench_methods.auhead.memo", "config:MemoConfig", "net:MemoNet",
        "backbone:MemoBackbone", "sampler:MemoStage2Model", "sampler:new_adapter",
        "train:MemoTrainingData", "train:loss_for", "train:MEMO_DEFAULTS",
        "diffusers:FlowMatchEulerDiscreteScheduler", "diffusion_net", ("zeros", "none"),
        (("emotion", "none"),),
    ),
}

# extractor id -> (what the table calls it, bench_extraction weight groups)
EXTRACTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "inception_pool3_full": ("Inception", ("inception",)),
    "i3d_logits_16f_full": ("I3D", ("i3d",)),
    "syncnet_wholeframe": ("SyncNet", ("syncnet",)),
    "syncnet_s3fd": ("S3FD", ("syncnet", "s3fd")),
    "pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet": ("py-feat", ("pyfeat",)),
    "face_track": ("face track", ()),
}


def resolve(package: str, ref: str) -> Any:
    module, _, name = ref.partition(":")
    path = module if module == "diffusers" else f"{package}.{module}"
    return getattr(importlib.import_module(path), name)


def guarded(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()``, or what stopped it: one line, and the traceback's last frames."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - a check reports every failure and goes on
        tail = traceback.format_exc().strip().splitlines()[-6:]
        return {"unavailable": f"{type(exc).__name__}: {exc}".splitlines()[0], "trace": tail}


# ---- backbones -----------------------------------------------------------------------------


def sd_vae(resolution: int) -> Any:
    """SD1.5's VAE architecture (sd-vae-ft-mse's config), random."""
    from diffusers import AutoencoderKL

    blocks = 4
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
        norm_num_groups=32, sample_size=resolution,
    )


def tiny_parts(cfg: Any) -> tuple[Any, Any]:
    """A 2-level VAE and a 2-layer wav2vec2 for ``--tiny`` (as tests/hallo_tiny.py)."""
    from diffusers import AutoencoderKL
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4,
        sample_size=cfg.resolution)
    wav2vec2 = Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=cfg.audio_channels, num_hidden_layers=cfg.audio_blocks,
        num_attention_heads=2, intermediate_size=16, conv_dim=(8, 8), conv_stride=(5, 4),
        conv_kernel=(10, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        num_feat_extract_layers=2))
    return vae, wav2vec2


def build_backbone(probe: BackboneProbe, device: str, dtype: Any, tiny: bool = False) -> Any:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = resolve(probe.package, probe.config)
    cfg = config.tiny() if tiny else config.real()
    torch.manual_seed(0)
    with torch.device(device):  # random init on the GPU: seconds, not minutes
        net = resolve(probe.package, probe.net)(cfg)
        if tiny:
            vae, wav2vec2 = tiny_parts(cfg)
        else:
            vae = sd_vae(cfg.resolution)
            wav2vec2 = Wav2Vec2Model(Wav2Vec2Config())  # wav2vec2-base's architecture
    backbone = resolve(probe.package, probe.backbone)(net, vae, wav2vec2, {})
    return backbone.to(device, dtype)


def stage2_options(probe: BackboneProbe, name: str, **values: Any) -> Any:
    from auhead_bench_methods.auhead.declarations import Stage2Options

    wanted = {"backbone": name, "face_embedding": "zeros", **dict(probe.options), **values}
    return Stage2Options(**{k: v for k, v in wanted.items() if k in Stage2Options.model_fields})


def clip_frames(cfg: Any) -> int:
    """25 fps AU rows that make exactly one window of the backbone's own clip."""
    fps = getattr(cfg, "fps", 25)
    return int(cfg.n_sample_frames * 25 // fps)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def time_steps(model: Any, probe: BackboneProbe, name: str, guidance: bool) -> dict[str, Any]:
    """s per denoising step (runs of 1 and 3 steps) and the peak memory of the 3-step run."""
    import numpy as np

    cfg = model.backbone.cfg
    rng = np.random.default_rng(0)
    count = clip_frames(cfg)
    reference = rng.integers(0, 255, (cfg.resolution, cfg.resolution, 3), np.uint8)
    audio = (rng.standard_normal(count * 640) * 0.1).astype(np.float32)
    aus = np.zeros((count, 24), np.float32)
    seconds = {}
    for steps in (1, 1, 3):  # the first run warms up kernels and allocator
        options = stage2_options(probe, name, steps=steps, guidance=guidance)
        _sync()
        _reset_peak()
        start = time.perf_counter()
        model.generate(reference, audio, aus, options, seed=0)
        _sync()
        seconds[steps] = time.perf_counter() - start
    return {"s_per_step": (seconds[3] - seconds[1]) / 2, "run_3_steps_s": seconds[3],
            "peak_gib": _peak_gib(), "rows_per_call": 3 if guidance else 1}


def synthetic_clip(folder: Path, resolution: int, frames: int = 40) -> Path:
    """A talking-face-sized clip with audio and (T, 24) AU labels beside it."""
    import numpy as np

    from auhead_bench import media

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clip.mp4"
    if not path.is_file():
        rng = np.random.default_rng(0)
        video = rng.integers(0, 255, (frames, resolution, resolution, 3), np.uint8)
        audio = (rng.standard_normal(frames * 640) * 0.1).astype(np.float32)
        media.write_video(path, video, audio, fps=25)
        np.save(folder / "clip.npy", rng.random((frames, 24)).astype(np.float32))
    return path


def training_step(backbone: Any, adapter: Any, probe: BackboneProbe, workdir: Path) -> dict:
    """One adapter step as ``train stage2`` runs it; its peak memory and time."""
    import random

    import torch

    cfg = backbone.cfg
    adapter.float().train()
    getattr(backbone.net, probe.denoiser).gradient_checkpointing = True  # as training runs
    root = workdir / f"train_{cfg.resolution}"
    synthetic_clip(root, cfg.resolution)
    data = resolve(probe.package, probe.data)(root, backbone, *probe.data_args)
    rng, generator = random.Random(0), torch.Generator("cpu").manual_seed(0)
    samples = data.batch(1, rng)
    make = resolve(probe.package, probe.scheduler)
    scheduler = make.from_config(cfg.scheduler) if inspect.isclass(make) else make(cfg.scheduler)
    loss_for = resolve(probe.package, probe.loss)
    rates = dict(resolve(probe.package, probe.rates))
    extra = {"rng": rng} if "rng" in inspect.signature(loss_for).parameters else {}
    optimiser = torch.optim.AdamW(adapter.parameters(), lr=1e-5)
    _sync()
    _reset_peak()
    start = time.perf_counter()
    on_gpu = backbone.device.type == "cuda"
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=on_gpu):
        loss = loss_for(backbone, adapter, samples, scheduler, rates, generator, **extra)
    loss.backward()
    optimiser.step()
    _sync()
    return {"peak_gib": _peak_gib(),
            "step_s": time.perf_counter() - start, "batch": 1,
            "frames": cfg.n_sample_frames, "loss": float(loss.detach())}


def probe_backbone(name: str, workdir: Path, tiny: bool = False) -> dict[str, Any]:
    import gc

    import torch

    probe = BACKBONES[name]
    try:  # the package itself: absent means not built (yet)
        importlib.import_module(probe.package)
    except ImportError as exc:
        return {"unavailable": f"{probe.package} does not import: {exc}"}
    device, dtype = ("cpu", torch.float32) if tiny else ("cuda", torch.bfloat16)
    start = time.perf_counter()
    backbone = build_backbone(probe, device, dtype, tiny)
    adapter = resolve(probe.package, probe.adapter)(backbone).to(device, dtype).eval()
    model = resolve(probe.package, probe.model)(backbone, adapter, {})
    cfg = backbone.cfg
    out: dict[str, Any] = {
        "resolution": cfg.resolution, "frames": cfg.n_sample_frames, "dtype": str(dtype),
        "parameters_m": sum(p.numel() for p in backbone.net.parameters()) / 1e6,
        "adapter_parameters_m": sum(p.numel() for p in adapter.parameters()) / 1e6,
        "build_s": time.perf_counter() - start,
    }
    out["guided_batched"] = guarded(partial(time_steps, model, probe, name, True))
    out["one_evaluation"] = guarded(partial(time_steps, model, probe, name, False))
    # the adapter stays attached (the model attached it): training reuses it in fp32
    out["train_step"] = guarded(partial(training_step, backbone, adapter, probe, workdir))
    del model, backbone, adapter
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


# ---- extractors ----------------------------------------------------------------------------


def extractor_weights(workdir: Path, groups: set[str]) -> None:
    """bench_extraction.py's random weight files (+ a full-width random I3D), expected by
    hash in place of the published ones."""
    import dataclasses

    sys.path.insert(0, str(REPO / "bench"))
    import bench_extraction as be

    from auhead_bench_metrics import fid, fvd
    from auhead_bench_metrics import syncnet_features as sf
    from auhead_bench_metrics.pyfeat import PyFeatExpression

    manifest = be.prepare_weights(workdir, groups - {"i3d"})
    if "i3d" in groups:
        from auhead_bench.media import sha256_file

        path = workdir / "weights" / fvd.I3D.name / fvd.I3D.filename
        if not path.is_file():
            sys.path.insert(0, str(REPO / "tests"))
            from test_fvd import save_random_i3d

            path.parent.mkdir(parents=True, exist_ok=True)
            save_random_i3d(path, width=1.0)  # the real network's width
        manifest[fvd.I3D.name] = sha256_file(path)
        fvd.I3D = dataclasses.replace(fvd.I3D, sha256=manifest[fvd.I3D.name])
    fid.INCEPTION = dataclasses.replace(fid.INCEPTION, sha256=manifest.get(fid.INCEPTION.name))
    for name in list(sf.WEIGHTS):
        if name in manifest:
            sf.WEIGHTS[name] = dataclasses.replace(sf.WEIGHTS[name], sha256=manifest[name])
    if all(s.name in manifest for s in PyFeatExpression.specs):
        PyFeatExpression.specs = be._with_hashes(PyFeatExpression.specs, manifest)


def probe_extractors(workdir: Path, clips: int, devices: tuple[str, ...] = ("cuda", "cpu")
                     ) -> dict[str, Any]:
    import os

    sys.path.insert(0, str(REPO / "bench"))
    import bench_extraction as be

    from auhead_bench.cache import Cache
    from auhead_bench.features import FeatureStore
    from auhead_bench.plugins import get_registry

    groups = {g for _, gs in EXTRACTORS.values() for g in gs}
    os.environ["AUHEAD_BENCH_WEIGHTS"] = str(workdir / "weights")
    extractor_weights(workdir, groups)  # py-feat's hub calls are answered from this cache
    videos = be.prepare_clips(workdir, clips)
    frames = sum(c["frames"] for c in videos)
    out: dict[str, Any] = {"clips": len(videos), "frames": frames, "fps": {}}
    for device in devices:
        store = FeatureStore(get_registry(), Cache(Path(tempfile.mkdtemp(dir=workdir))), device)
        for ident, (label, _) in EXTRACTORS.items():
            row = out["fps"].setdefault(ident, {"label": label})
            row[device] = guarded(lambda s=store, i=ident: _extract_fps(s, i, videos, frames))
    return out


def _extract_fps(store: Any, ident: str, videos: list[dict], frames: int) -> dict[str, Any]:
    """Frames/s of one extractor over the clips: models loaded first, decode not counted."""
    extractor = store.extractor(ident, ready=True)
    store.spec(ident)
    seconds = 0.0
    real = extractor.extract

    def timed(video: Any) -> Any:
        nonlocal seconds
        start = time.perf_counter()
        try:
            return real(video)
        finally:
            seconds += time.perf_counter() - start

    extractor.extract = timed
    try:
        for clip in videos:
            _, errors = store.view(Path(clip["path"]), clip["sha256"], [ident])
            store.release()
            if errors and errors[ident].transient:
                raise RuntimeError(errors[ident].message)
    finally:
        extractor.extract = real
    return {"frames_per_s": frames / seconds if seconds else None, "seconds": seconds}


# ---- the report ----------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    def cell(value: Any, key: str, fmt: str) -> str:
        if not isinstance(value, dict) or "unavailable" in value:
            return "unavailable"
        return format(value[key], fmt) if value.get(key) is not None else "-"

    lines = [f"device: {result['device']}", "",
             "| backbone | s/step guided (3 rows, 1 call) | peak GiB | s/step 1 eval | peak GiB"
             " | train step peak GiB |", "|---|---|---|---|---|---|"]
    for name, row in result["backbones"].items():
        if "unavailable" in row:
            lines.append(f"| {name} | unavailable: {row['unavailable'][:60]} | | | | |")
            continue
        guided, single = row["guided_batched"], row["one_evaluation"]
        lines.append(f"| {name} | {cell(guided, 's_per_step', '.3f')} | "
                     f"{cell(guided, 'peak_gib', '.1f')} | {cell(single, 's_per_step', '.3f')} | "
                     f"{cell(single, 'peak_gib', '.1f')} | "
                     f"{cell(row['train_step'], 'peak_gib', '.1f')} |")
    extractors = result.get("extractors")
    if isinstance(extractors, dict) and "fps" in extractors:
        lines += ["", "| extractor | frames/s cuda | frames/s cpu |", "|---|---|---|"]
        for row in extractors["fps"].values():
            lines.append(f"| {row['label']} | {cell(row.get('cuda'), 'frames_per_s', '.1f')} | "
                         f"{cell(row.get('cpu'), 'frames_per_s', '.1f')} |")
    elif extractors is not None:
        lines.append(f"extractors: unavailable: {extractors.get('unavailable')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--clips", type=int, default=1, help="demo clips (50 frames each) for "
                        "the extractors")
    parser.add_argument("--no-extractors", action="store_true")
    parser.add_argument("--tiny", action="store_true",
                        help="a CPU rehearsal of the backbone part at the tests' tiny configs")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.tiny:
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it on "
              "a machine with an NVIDIA GPU", file=sys.stderr)
        return NO_CUDA_EXIT
    for path in (REPO, REPO / "methods", REPO / "metrics", REPO / "datasets"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    args.workdir.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    result: dict[str, Any] = {
        "device": "cpu (--tiny)" if args.tiny else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda, "backbones": {},
    }
    for name in [n.strip() for n in args.backbones.split(",") if n.strip()]:
        if name not in BACKBONES:
            result["backbones"][name] = {"unavailable": f"not in BACKBONES ({list(BACKBONES)})"}
            continue
        print(f"gpu_check: backbone {name}", file=sys.stderr, flush=True)
        result["backbones"][name] = guarded(partial(probe_backbone, name, args.workdir,
                                                    args.tiny))
    if not args.no_extractors:
        print("gpu_check: extractors", file=sys.stderr, flush=True)
        devices = ("cpu",) if args.tiny else ("cuda", "cpu")
        result["extractors"] = guarded(partial(probe_extractors, args.workdir, args.clips,
                                               devices))
    result["total_s"] = time.perf_counter() - begin
    text = json.dumps(result, default=str)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
