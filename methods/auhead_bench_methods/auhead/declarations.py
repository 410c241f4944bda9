"""What the AUHead plugin declares at registration: stage 2's options and version, the default
guidance scales, and the SD1.5 weight specs.

Every CLI command, Ray worker and test subprocess loads the plugins, so this module imports
neither torch nor diffusers, transformers or peft (those take seconds to import); the models
that need them (backbone.py, adapter.py, stage2.py) load only when a clip is generated or a
training command runs. The names are re-exported where they were first defined (stage2.py,
backbone.py, guidance.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from auhead_bench.options import Options, describe_options, machine_specific

if TYPE_CHECKING:
    from auhead_bench.weights import WeightsSpec

# Guidance scales (guidance.py says why these values).
DEFAULT_S_AU = 3.5
DEFAULT_S_H = 3.5

STAGE2_VERSION = "2"  # bump when sampling changes outputs (2: hallo_v1, telescoping guidance)
DEFAULT_MODEL_NAME = "auhead-stage2"  # folder under the weights cache


class Stage2Options(Options):
    """Sampling options; every one is sweepable."""

    # The backbone the AU adapter is plugged into: Hallo v1 as released (the paper's
    # backbone; weights from `auhead-bench weights pull hallo-*`), or our small per-frame
    # SD1.5 stand-in (sd15_au_concat: CPU-trainable, not the paper's).
    backbone: Literal["hallo_v1", "sd15_au_concat"] = "hallo_v1"
    # A stage-2 model folder (adapter/, and backbone/ unless the backbone comes from the
    # weights cache) or a HF hub id; None: $AUHEAD_BENCH_WEIGHTS/auhead-stage2[-<backbone>].
    model: str | None = machine_specific(None)
    guidance: bool = True  # False: plain conditional prediction, one evaluation per step
    # guidance.py: "telescoping" starts from e(0, 0) (3 evaluations); "as_written" from
    # e(0, c_AU) as the paper is reported to write it (4 evaluations)
    guidance_form: Literal["telescoping", "as_written"] = "telescoping"
    s_au: float = Field(DEFAULT_S_AU, ge=0.0)
    s_h: float = Field(DEFAULT_S_H, ge=0.0)
    steps: int = Field(40, ge=1, le=1000)  # Hallo's 40 DDIM steps
    scheduler: Literal["ddim", "euler", "dpmpp"] = "ddim"
    frames_per_batch: int = Field(4, ge=1, le=256)  # sd15_au_concat only
    shared_noise: bool = True  # sd15_au_concat only (hallo_v1 has motion modules)
    precision: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: fp16 on GPU
    # hallo_v1: the identity embedding (ArcFace, as Hallo) or zeros (Hallo's no-face input)
    face_embedding: Literal["arcface", "zeros"] = "arcface"


# ---- SD1.5-family sources (backbone.py loads them) -------------------------------------------

SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD15_LICENCE = "CreativeML-OpenRAIL-M"


def sd15_specs() -> dict[str, WeightsSpec]:
    """The SD1.5 files a backbone is initialised from, as declared weights (``weights pull``).

    No sha256 is pinned: HF publishes the files' LFS hashes, but none could be read from
    this workplace; the hash of what is pulled is recorded in every run's provenance.
    """
    from auhead_bench.weights import WeightsSpec

    def spec(name: str, path: str, what: str) -> WeightsSpec:
        return WeightsSpec(
            name, Path(path).name, f"hf://{SD15_REPO}/{path}", None, SD15_LICENCE,
            f"Stable Diffusion 1.5 {what}: initialises the AUHead stage-2 portrait backbone",
        )

    return {
        "unet": spec("sd15-unet", "unet/diffusion_pytorch_model.safetensors", "UNet weights"),
        "unet_config": spec("sd15-unet-config", "unet/config.json", "UNet config"),
        "vae": spec("sd15-vae", "vae/diffusion_pytorch_model.safetensors", "VAE weights"),
        "vae_config": spec("sd15-vae-config", "vae/config.json", "VAE config"),
    }


# ---- Hallo v1 (backbone: hallo_v1; hallo/net.py loads them) -----------------------------------

HALLO_REPO = "fudan-generative-ai/hallo"
HALLO_LICENCE = "MIT (Hallo); CreativeML-OpenRAIL-M (SD1.5, sd-vae-ft-mse); Apache-2.0 (wav2vec2)"


def hallo_specs() -> dict[str, WeightsSpec]:
    """The files of Hallo v1's HF release that the hallo_v1 backbone loads (``weights pull``).

    HF shows LFS hashes, but none could be read from this workplace, so none is pinned; the
    sha256 of each pulled file is recorded in every run's provenance.
    """
    from auhead_bench.weights import WeightsSpec

    def spec(name: str, path: str, what: str) -> WeightsSpec:
        return WeightsSpec(name, Path(path).name, f"hf://{HALLO_REPO}/{path}", None,
                           HALLO_LICENCE, f"Hallo v1 {what} (AUHead's hallo_v1 backbone)")

    return {
        "net": spec("hallo-net", "hallo/net.pth",
                    "reference net, denoising UNet with audio and motion modules, face "
                    "locator, image and audio projections"),
        "motion_module": spec("hallo-motion-module", "motion_module/mm_sd_v15_v2.ckpt",
                              "AnimateDiff motion modules Hallo's own training starts "
                              "from (AUHead does not need them: net.pth holds Hallo's "
                              "trained ones)"),
        "vae": spec("hallo-vae", "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
                    "VAE (sd-vae-ft-mse)"),
        "vae_config": spec("hallo-vae-config", "sd-vae-ft-mse/config.json", "VAE config"),
        "wav2vec2": spec("hallo-wav2vec2", "wav2vec/wav2vec2-base-960h/model.safetensors",
                         "wav2vec2-base-960h audio encoder"),
        "wav2vec2_config": spec("hallo-wav2vec2-config", "wav2vec/wav2vec2-base-960h/config.json",
                                "wav2vec2-base-960h config"),
        "face_embedder": spec("hallo-face-arcface", "face_analysis/models/glintr100.onnx",
                              "insightface ArcFace (glintr100) face-identity embedder"),
    }



# ---- what `auhead-bench ls methods` says of each stage-2 option ------------------------------
# (one table, not Field(description=...) on each line: the field lines change with backbones)
STAGE2_DESCRIPTIONS = {
    "backbone": "The portrait backbone the AU adapter is plugged into: hallo_v1 is Hallo v1 as "
    "released (weights: `auhead-bench weights pull hallo-*`); sd15_au_concat is our small "
    "per-frame SD1.5 stand-in (trains on a CPU, not the paper's). docs/auhead.md compares them.",
    "model": "A stage-2 model folder (adapter/, plus backbone/ unless the backbone comes from "
    "the weights cache) or a HF hub id; None: $AUHEAD_BENCH_WEIGHTS/auhead-stage2-<backbone>.",
    "guidance": "AU disentanglement guidance (3 evaluations per step, batched); False: the "
    "plain conditional prediction, one evaluation per step.",
    "guidance_form": "telescoping: e00 + s_H (eH0 - e00) + s_AU (eHA - eH0); as_written: the "
    "paper's formula as reported, starting from e(0, c_AU) (4 evaluations). guidance.py.",
    "s_au": "AU guidance scale s_AU (the paper's 3.5); 0 removes every AU effect.",
    "s_h": "Backbone (audio + reference) guidance scale s_H (not reported; Hallo's 3.5).",
    "steps": "Denoising steps (Hallo's 40 DDIM steps).",
    "scheduler": "Sampler: ddim (Hallo's), euler or dpmpp (diffusers' schedulers).",
    "frames_per_batch": "sd15_au_concat only: frames denoised together per call.",
    "shared_noise": "sd15_au_concat only: one initial noise for all frames (it has no motion "
    "modules; hallo_v1 ignores this).",
    "precision": "Weights and activations dtype; auto: float16 on GPU, float32 on CPU.",
    "face_embedding": "hallo_v1: the identity input, ArcFace as Hallo (needs onnxruntime and "
    "hallo-face-arcface) or zeros (Hallo's own input when it finds no face).",
}
describe_options(Stage2Options, STAGE2_DESCRIPTIONS)
