"""The sd15_au_concat stand-in backbone: a small per-frame SD1.5 portrait model of our own.

Not the paper's: AUHead plugs its adapter into MEMO or Hallo v1; those backbones are memo/
(``memo``, the default) and hallo/ (``hallo_v1``). This one stays as a variant that trains on
a CPU from any SD1.5-family model (docs/auhead.md):

- denoiser: a diffusers ``UNet2DConditionModel`` whose input is the noisy latent concatenated
  with the reference image's latent (reference conditioning by channel concatenation, as in
  InstructPix2Pix; Hallo's ReferenceNet is a heavier alternative we do not build);
- audio: per video frame, the audio features of a 5-frame window (t-2 .. t+2) become the
  UNet's cross-attention tokens through ``AudioEncoder``. Features are either a log-mel
  spectrogram (80 bands, 10 ms hop; computed with transformers' audio utilities, nothing to
  download) or wav2vec2 hidden states (the real-weights path, as Hallo and MEMO use);
- ``AutoencoderKL`` for latents; frames are generated one per 25 fps video frame, with no
  temporal module (the sampler shares one initial noise across frames for steadiness).

Null backbone condition (c_H = 0, for guidance and condition dropout): the reference latent
and the audio tokens are zeroed.

On disk a backbone is a folder: ``unet/``, ``vae/``, ``audio_encoder/`` (diffusers
``save_pretrained`` layouts), ``wav2vec2/`` when it uses wav2vec2, ``scheduler/`` and
``portrait.json``. ``from_sd15`` initialises one from any SD1.5-family model (a hub id or a
folder in diffusers layout, or the pulled ``sd15-*`` weights): the UNet's first convolution
gains zero-initialised reference channels and the audio encoder starts random, so such a
backbone must be trained (``auhead-bench train stage2 --backbone sd15_au_concat --trainable
backbone``) before use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from auhead_bench.errors import BenchError
from auhead_bench_methods.auhead.au_space import AUDIO_RATE, VIDEO_FPS

# Declared at plugin registration, which must not import diffusers (declarations.py).
from auhead_bench_methods.auhead.declarations import SD15_LICENCE as SD15_LICENCE
from auhead_bench_methods.auhead.declarations import SD15_REPO as SD15_REPO
from auhead_bench_methods.auhead.declarations import sd15_specs

PORTRAIT_FILE = "portrait.json"
PORTRAIT_FORMAT = "auhead-bench portrait backbone v1"
AUDIO_CONTEXT = 2  # video frames each side of frame t whose audio conditions it
LOGMEL_HOP = 160  # 10 ms at 16 kHz: 4 log-mel frames per 40 ms video frame
WAV2VEC2_PER_FRAME = 2  # wav2vec2 runs at 50 Hz: 2 feature frames per video frame
# SD1.5's noise schedule, used when an SD1.5-family source ships no scheduler/ folder.
SD15_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}


def log_mel(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """(N, n_mels) log-mel frames at 100 Hz, Whisper's scaling (log10, 8 decades, /4)."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    audio = np.asarray(audio, np.float32)
    if len(audio) < 400:
        audio = np.pad(audio, (0, 400 - len(audio)))
    filters = mel_filter_bank(
        num_frequency_bins=201, num_mel_filters=n_mels, min_frequency=0.0,
        max_frequency=AUDIO_RATE / 2, sampling_rate=AUDIO_RATE, norm="slaney",
        mel_scale="slaney",
    )
    mel = spectrogram(
        audio, window_function(400, "hann"), frame_length=400, hop_length=LOGMEL_HOP,
        power=2.0, mel_filters=filters, log_mel="log10",
    )
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).T.astype(np.float32)


def frame_windows(features: np.ndarray, frames: int, per_frame: int) -> np.ndarray:
    """(N, F) features -> (frames, per_frame * (2 * AUDIO_CONTEXT + 1), F), edge-padded."""
    total = frames * per_frame
    features = np.asarray(features, np.float32)
    if len(features) < total:
        features = np.concatenate([features, np.repeat(features[-1:], total - len(features), 0)])
    features = features[:total]
    pad = AUDIO_CONTEXT * per_frame
    padded = np.concatenate(
        [np.repeat(features[:1], pad, 0), features, np.repeat(features[-1:], pad, 0)]
    )
    width = per_frame * (2 * AUDIO_CONTEXT + 1)
    return np.stack([padded[t * per_frame : t * per_frame + width] for t in range(frames)])


class AudioEncoder(ModelMixin, ConfigMixin):
    """Audio feature window (T, W, F) -> cross-attention tokens (T, W, cross_attention_dim)."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        feature: str = "logmel",  # "logmel" or "wav2vec2"
        feature_dim: int = 80,
        cross_attention_dim: int = 768,
        hidden_dim: int = 512,
    ):
        super().__init__()
        if feature not in ("logmel", "wav2vec2"):
            raise ValueError(f"unknown audio feature {feature!r}: logmel or wav2vec2")
        per_frame = self.per_frame
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, cross_attention_dim),
        )
        self.position = nn.Parameter(
            torch.randn(per_frame * (2 * AUDIO_CONTEXT + 1), cross_attention_dim) * 0.02
        )
        self.norm = nn.LayerNorm(cross_attention_dim)

    @property
    def per_frame(self) -> int:
        return 4 if self.config.feature == "logmel" else WAV2VEC2_PER_FRAME

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(windows) + self.position)


class PortraitBackbone(nn.Module):
    """UNet + VAE + audio encoder (+ wav2vec2): e(z, c_H) with c_H = (reference, audio)."""

    def __init__(
        self,
        unet: UNet2DConditionModel,
        vae: AutoencoderKL,
        audio_encoder: AudioEncoder,
        scheduler_config: dict[str, Any],
        resolution: int,
        wav2vec2: nn.Module | None = None,
    ):
        super().__init__()
        latent = vae.config.latent_channels
        if unet.config.in_channels != 2 * latent or unet.config.out_channels != latent:
            raise BenchError(
                f"UNet takes {unet.config.in_channels} channels, a portrait backbone needs "
                f"{2 * latent} (noisy + reference latent)",
                fix="initialise it from SD1.5 with PortraitBackbone.from_sd15",
            )
        if unet.config.cross_attention_dim != audio_encoder.config.cross_attention_dim:
            raise BenchError("the audio encoder's token size differs from the UNet's")
        if (audio_encoder.config.feature == "wav2vec2") != (wav2vec2 is not None):
            raise BenchError("a wav2vec2 audio encoder needs its wav2vec2 model (and only it)")
        self.unet, self.vae, self.audio_encoder, self.wav2vec2 = unet, vae, audio_encoder, wav2vec2
        self.scheduler_config = dict(scheduler_config)
        self.resolution = int(resolution)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        if self.resolution % factor:
            raise BenchError(f"resolution {resolution} is not a multiple of the VAE's {factor}")

    # ---- loading and saving -------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path) -> PortraitBackbone:
        """A backbone saved by ``save_pretrained`` (see the module docstring for the layout)."""
        folder = Path(folder)
        meta_path = folder / PORTRAIT_FILE
        if not meta_path.is_file():
            raise BenchError(
                f"not a portrait backbone (no {PORTRAIT_FILE})", path=folder,
                fix="build one with `auhead-bench train stage2 --backbone sd15_au_concat "
                "--trainable backbone`",
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != PORTRAIT_FORMAT:
            raise BenchError(f"unknown backbone format {meta.get('format')!r}", path=meta_path)
        audio_encoder = AudioEncoder.from_pretrained(folder / "audio_encoder")
        wav2vec2 = None
        if audio_encoder.config.feature == "wav2vec2":
            from transformers import Wav2Vec2Model

            wav2vec2 = Wav2Vec2Model.from_pretrained(folder / "wav2vec2")
        return cls(
            UNet2DConditionModel.from_pretrained(folder / "unet"),
            AutoencoderKL.from_pretrained(folder / "vae"),
            audio_encoder,
            DDPMScheduler.load_config(folder / "scheduler"),
            meta["resolution"],
            wav2vec2,
        )

    def save_pretrained(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.audio_encoder.save_pretrained(folder / "audio_encoder")
        if self.wav2vec2 is not None:
            self.wav2vec2.save_pretrained(folder / "wav2vec2")
        DDPMScheduler.from_config(self.scheduler_config).save_pretrained(folder / "scheduler")
        meta = {"format": PORTRAIT_FORMAT, "resolution": self.resolution,
                "reference": "latent channel concatenation", "audio_context": AUDIO_CONTEXT}
        (folder / PORTRAIT_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def from_sd15(
        cls,
        unet: UNet2DConditionModel,
        vae: AutoencoderKL,
        scheduler_config: dict[str, Any] | None = None,
        resolution: int = 512,
        audio_feature: str = "logmel",
        wav2vec2: nn.Module | None = None,
        n_mels: int = 80,
    ) -> PortraitBackbone:
        """A portrait backbone initialised from an SD1.5-family UNet and VAE (text-free).

        The first convolution is widened for the reference latent, its new input channels
        zero, so at the start the UNet computes what it did; the audio encoder is new.
        """
        latent = vae.config.latent_channels
        config = dict(unet.config)
        config["in_channels"] = 2 * latent
        widened = UNet2DConditionModel.from_config(config)
        state = unet.state_dict()
        weight = state["conv_in.weight"]
        state["conv_in.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)
        widened.load_state_dict(state)
        feature_dim = n_mels if audio_feature == "logmel" else int(wav2vec2.config.hidden_size)
        audio_encoder = AudioEncoder(
            feature=audio_feature, feature_dim=feature_dim,
            cross_attention_dim=int(unet.config.cross_attention_dim),
            hidden_dim=max(64, int(unet.config.cross_attention_dim) // 2),
        )
        return cls(
            widened, vae, audio_encoder, scheduler_config or SD15_SCHEDULER, resolution, wav2vec2
        )

    # ---- conditions -----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def latent_size(self) -> int:
        return self.resolution // 2 ** (len(self.vae.config.block_out_channels) - 1)

    def audio_features(self, audio: np.ndarray, frames: int) -> torch.Tensor:
        """(frames, W, F) feature windows for 16 kHz mono ``audio``."""
        if self.audio_encoder.config.feature == "logmel":
            features = log_mel(audio, self.audio_encoder.config.feature_dim)
        else:
            features = self._wav2vec2(audio, frames)
        windows = frame_windows(features, frames, self.audio_encoder.per_frame)
        return torch.from_numpy(windows).to(self.device, self.dtype)

    def _wav2vec2(self, audio: np.ndarray, frames: int) -> np.ndarray:
        """Last hidden states, resampled linearly to exactly 2 per video frame."""
        from transformers import Wav2Vec2FeatureExtractor

        samples = max(len(audio), frames * AUDIO_RATE // VIDEO_FPS, 400)
        audio = np.pad(np.asarray(audio, np.float32), (0, samples - len(audio)))
        inputs = Wav2Vec2FeatureExtractor(do_normalize=True)(
            audio, sampling_rate=AUDIO_RATE, return_tensors="pt"
        ).input_values
        with torch.no_grad():
            hidden = self.wav2vec2(inputs.to(self.device, self.dtype)).last_hidden_state[0]
        target = frames * WAV2VEC2_PER_FRAME
        hidden = nn.functional.interpolate(
            hidden.T[None].float(), size=target, mode="linear", align_corners=True
        )[0].T
        return hidden.cpu().numpy()

    def audio_tokens(self, features: torch.Tensor) -> torch.Tensor:
        return self.audio_encoder(features)

    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB -> scaled latents (B, C, h, w) (the distribution's mean)."""
        pixels = torch.as_tensor(np.asarray(images)).to(self.device)
        pixels = pixels.permute(0, 3, 1, 2).to(self.dtype) / 127.5 - 1.0
        latents = self.vae.encode(pixels).latent_dist.mode()
        return latents * self.vae.config.scaling_factor

    def encode_sample(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Training targets: (B, 3, H, W) in [-1, 1] -> sampled scaled latents."""
        latents = self.vae.encode(images.to(self.dtype)).latent_dist.sample(generator)
        return latents * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Scaled latents -> (B, H, W, 3) uint8 RGB."""
        pixels = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        pixels = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round()
        return pixels.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()

    def denoise(
        self,
        z: torch.Tensor,
        timestep: torch.Tensor | int,
        reference: torch.Tensor,
        audio_tokens: torch.Tensor,
        h_on: torch.Tensor,
        au_tokens: torch.Tensor | None = None,
        au_on: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """e(z, c_H, c_AU): per sample, ``h_on``/``au_on`` 0 drop the backbone/AU condition."""
        h = h_on.to(z.dtype)
        x = torch.cat([z, reference * h.view(-1, 1, 1, 1)], dim=1)
        states = audio_tokens * h.view(-1, 1, 1)
        kwargs = None
        if au_tokens is not None:
            kwargs = {"au_tokens": au_tokens, "au_mask": au_on}
        return self.unet(x, timestep, encoder_hidden_states=states,
                         cross_attention_kwargs=kwargs).sample


# ---- SD1.5-family sources (SD15_REPO, sd15_specs: declarations.py) --------------------------


def load_sd15(source: str | None) -> tuple[UNet2DConditionModel, AutoencoderKL, dict[str, Any]]:
    """UNet, VAE and noise schedule of an SD1.5-family model.

    ``source``: a folder in diffusers layout (``unet/``, ``vae/``, optional ``scheduler/``), a
    HF hub id (downloaded through the HF cache), or None for the pulled ``sd15-*`` weights.
    """
    if source is None:
        return (*_load_registered_sd15(), dict(SD15_SCHEDULER))
    folder = Path(source).expanduser()
    location: str | Path = folder if folder.exists() else source
    try:
        unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet")
        vae = AutoencoderKL.from_pretrained(location, subfolder="vae")
    except (OSError, ValueError) as exc:
        raise BenchError(
            f"cannot load an SD1.5-family UNet/VAE ({type(exc).__name__}: {exc})".split("\n")[0],
            path=str(source),
            fix="pass a folder with unet/ and vae/ in diffusers layout, or a reachable hub id",
        ) from None
    try:
        scheduler = dict(DDPMScheduler.load_config(location, subfolder="scheduler"))
    except (OSError, ValueError):
        scheduler = dict(SD15_SCHEDULER)
    return unet, vae, scheduler


def _load_registered_sd15() -> tuple[UNet2DConditionModel, AutoencoderKL]:
    """The pulled ``sd15-*`` files, linked into a diffusers layout and loaded by diffusers
    itself (which also renames the attention keys of older SD1.5 VAE files)."""
    import tempfile

    from auhead_bench.weights import WeightsMissing, local_path, locate

    specs = sd15_specs()
    missing = [spec.name for spec in specs.values() if not local_path(spec).is_file()]
    if missing:
        raise WeightsMissing(
            f"weights missing: run `auhead-bench weights pull {' '.join(missing)}` (the SD1.5 "
            "files a stage-2 portrait backbone starts from), or pass --init an SD1.5 folder"
        )
    paths = {key: locate(spec) for key, spec in specs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("unet", "vae"):
            (Path(tmp) / part).mkdir()
            (Path(tmp) / part / "config.json").symlink_to(paths[f"{part}_config"])
            (Path(tmp) / part / paths[part].name).symlink_to(paths[part])
        unet = UNet2DConditionModel.from_pretrained(tmp, subfolder="unet")
        vae = AutoencoderKL.from_pretrained(tmp, subfolder="vae")
    return unet, vae
