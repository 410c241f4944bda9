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

from auhead_bench.options import Options, machine_specific

if TYPE_CHECKING:
    from auhead_bench.weights import WeightsSpec

# Guidance scales (guidance.py says why these values).
DEFAULT_S_AU = 3.5
DEFAULT_S_H = 3.5

STAGE2_VERSION = "1"  # bump when sampling changes outputs
DEFAULT_MODEL_NAME = "auhead-stage2"  # folder under the weights cache


class Stage2Options(Options):
    """Sampling options; every one is sweepable."""

    # A stage-2 model folder (backbone/ + adapter/) or a HF hub id; None: the weights cache.
    model: str | None = machine_specific(None)
    guidance: bool = True  # False: plain conditional prediction, one evaluation per step
    s_au: float = Field(DEFAULT_S_AU, ge=0.0)
    s_h: float = Field(DEFAULT_S_H, ge=0.0)
    steps: int = Field(40, ge=1, le=1000)  # Hallo's 40 DDIM steps
    scheduler: Literal["ddim", "euler", "dpmpp"] = "ddim"
    frames_per_batch: int = Field(4, ge=1, le=256)
    shared_noise: bool = True
    precision: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: fp16 on GPU


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
