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

STAGE2_VERSION = "3"  # bump when sampling changes outputs (3: memo backbone, default)
DEFAULT_MODEL_NAME = "auhead-stage2"  # folder under the weights cache


class Stage2Options(Options):
    """Sampling options; every one is sweepable."""

    # The backbone the AU adapter is plugged into: MEMO as released (the paper's main
    # results; weights from `auhead-bench weights pull memo-*`), Hallo v1 as released (the
    # paper's second backbone; `hallo-*`), or our small per-frame SD1.5 stand-in
    # (sd15_au_concat: CPU-trainable, not the paper's).
    backbone: Literal["memo", "hallo_v1", "sd15_au_concat"] = Field(
        "memo", description="memo (the paper's main results), hallo_v1, or the CPU-trainable "
        "sd15_au_concat stand-in")
    # A stage-2 model folder (adapter/, and backbone/ unless the backbone comes from the
    # weights cache) or a HF hub id; None: $AUHEAD_BENCH_WEIGHTS/auhead-stage2[-<backbone>].
    model: str | None = machine_specific(None)
    guidance: bool = True  # False: plain conditional prediction, one evaluation per step
    # guidance.py: "telescoping" starts from e(0, 0) (3 evaluations); "as_written" from
    # e(0, c_AU) as the paper is reported to write it (4 evaluations)
    guidance_form: Literal["telescoping", "as_written"] = "telescoping"
    s_au: float = Field(DEFAULT_S_AU, ge=0.0)
    s_h: float = Field(DEFAULT_S_H, ge=0.0)
    # None: the backbone's own (MEMO 20 flow-matching Euler steps, Hallo 40 DDIM, sd15 40)
    steps: int | None = Field(None, ge=1, le=1000, description="denoising steps; None: the "
                              "backbone's own (memo 20, hallo_v1 40, sd15_au_concat 40)")
    # auto: the backbone's own sampler (memo: flow-matching Euler, the only one it takes;
    # hallo_v1 and sd15_au_concat: DDIM)
    scheduler: Literal["auto", "ddim", "euler", "dpmpp"] = Field(
        "auto", description="auto: the backbone's own (memo: flow-matching Euler, its only "
        "one; hallo_v1, sd15_au_concat: DDIM)")
    frames_per_batch: int = Field(4, ge=1, le=256)  # sd15_au_concat only
    shared_noise: bool = True  # sd15_au_concat only (hallo_v1 has motion modules)
    # auto: on a GPU bf16 for memo (MEMO's), fp16 for the others; fp32 on a CPU
    precision: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    # memo, hallo_v1: the identity embedding (insightface ArcFace, as both do) or zeros
    face_embedding: Literal["arcface", "zeros"] = "arcface"
    # memo: the emotion class its audio modules are conditioned on. audio: MEMO's own
    # (emotion2vec_plus_large features through MEMO's classifier, 1 s segments, the clip
    # window's most frequent class; needs funasr); none: MEMO's "no emotion" class.
    emotion: Literal["audio", "none"] = Field(
        "audio", description="memo: audio (MEMO's emotion2vec + classifier; needs funasr) or "
        "none (MEMO's no-emotion class)")


DEFAULT_STEPS = {"memo": 20, "hallo_v1": 40, "sd15_au_concat": 40}
DEFAULT_SCHEDULER = {"memo": "euler", "hallo_v1": "ddim", "sd15_au_concat": "ddim"}


def sampling_steps(options: Stage2Options, backbone: str) -> int:
    """The steps ``backbone``'s sampler runs (the model's backbone, whatever the option says)."""
    return options.steps if options.steps is not None else DEFAULT_STEPS[backbone]


def sampler_name(options: Stage2Options, backbone: str) -> str:
    if options.scheduler == "auto":
        return DEFAULT_SCHEDULER[backbone]
    return options.scheduler


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



# ---- MEMO (backbone: memo; memo/net.py loads them) ---------------------------------------------

MEMO_REPO = "memoavatar/memo"
MEMO_LICENCE = ("Apache-2.0 (MEMO, wav2vec2); CreativeML-OpenRAIL-M (sd-vae-ft-mse); MIT "
                "(insightface models as MEMO ships them: non-commercial research use)")


def memo_specs() -> dict[str, WeightsSpec]:
    """The files of MEMO's HF release (and the VAE and wav2vec2 its inference.yaml names)
    that the memo backbone loads (``weights pull``). No sha256 could be read here; the hash of
    each pulled file is recorded in every run's provenance."""
    from auhead_bench.weights import WeightsSpec

    def spec(name: str, source: str, what: str, licence: str = MEMO_LICENCE) -> WeightsSpec:
        return WeightsSpec(name, Path(source).name, f"hf://{source}", None, licence,
                           f"MEMO {what} (AUHead's memo backbone)")

    def memo(name: str, folder: str, what: str) -> WeightsSpec:
        return spec(name, f"{MEMO_REPO}/{folder}/diffusion_pytorch_model.safetensors", what)

    return {
        "reference_net": memo("memo-reference-net", "reference_net",
                              "reference net (SD1.5 UNet without its head)"),
        "diffusion_net": memo("memo-diffusion-net", "diffusion_net",
                              "diffusion net (UNet3D with audio, emotion and memory motion "
                              "modules)"),
        "audio_proj": memo("memo-audio-proj", "audio_proj", "audio projection"),
        "image_proj": memo("memo-image-proj", "image_proj", "face-embedding projection"),
        "audio_emotion_classifier": memo("memo-audio-emotion-classifier",
                                         "misc/audio_emotion_classifier",
                                         "audio emotion classifier over emotion2vec features"),
        "vae": spec("memo-vae", "stabilityai/sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
                    "VAE (sd-vae-ft-mse)", "MIT (sd-vae-ft-mse)"),
        "vae_config": spec("memo-vae-config", "stabilityai/sd-vae-ft-mse/config.json",
                           "VAE config", "MIT (sd-vae-ft-mse)"),
        "wav2vec2": spec("memo-wav2vec2", "facebook/wav2vec2-base-960h/model.safetensors",
                         "wav2vec2-base-960h audio encoder", "Apache-2.0"),
        "wav2vec2_config": spec("memo-wav2vec2-config", "facebook/wav2vec2-base-960h/config.json",
                                "wav2vec2-base-960h config", "Apache-2.0"),
        "face_embedder": spec("memo-face-arcface",
                              f"{MEMO_REPO}/misc/face_analysis/models/glintr100.onnx",
                              "insightface ArcFace (glintr100) face-identity embedder"),
        "emotion2vec": WeightsSpec(
            "memo-emotion2vec", "snapshot", "hf://emotion2vec/emotion2vec_plus_large", None,
            "emotion2vec model licence (see its model card)",
            "emotion2vec_plus_large (iic/emotion2vec_plus_large on ModelScope), MEMO's audio "
            "emotion features, read through funasr (HF snapshot folder)", snapshot=True),
    }


# ---- what `auhead-bench ls methods` says of each stage-2 option ------------------------------
# (one table, not Field(description=...) on each line: the field lines change with backbones)
STAGE2_DESCRIPTIONS = {
    "model": "A stage-2 model folder (adapter/, plus backbone/ unless the backbone comes from "
    "the weights cache) or a HF hub id; None: $AUHEAD_BENCH_WEIGHTS/auhead-stage2-<backbone>.",
    "guidance": "AU disentanglement guidance (3 evaluations per step, batched); False: the "
    "plain conditional prediction, one evaluation per step.",
    "guidance_form": "telescoping: e00 + s_H (eH0 - e00) + s_AU (eHA - eH0); as_written: the "
    "paper's formula as reported, starting from e(0, c_AU) (4 evaluations). guidance.py.",
    "s_au": "AU guidance scale s_AU (the paper's 3.5); 0 removes every AU effect.",
    "s_h": "Backbone (audio + reference) guidance scale s_H (not reported; Hallo's 3.5).",
    "frames_per_batch": "sd15_au_concat only: frames denoised together per call.",
    "shared_noise": "sd15_au_concat only: one initial noise for all frames (it has no motion "
    "modules; hallo_v1 ignores this).",
    "precision": "Weights and activations dtype; auto: float16 on GPU, float32 on CPU.",
    "face_embedding": "hallo_v1: the identity input, ArcFace as Hallo (needs onnxruntime and "
    "hallo-face-arcface) or zeros (Hallo's own input when it finds no face).",
}
describe_options(Stage2Options, STAGE2_DESCRIPTIONS)
