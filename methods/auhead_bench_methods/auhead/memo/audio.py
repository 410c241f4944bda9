"""MEMO's audio inputs from 16 kHz audio, as its ``memo/utils/audio_utils.py`` makes them.

- wav2vec2 (``preprocess_audio``): the whole waveform is normalised (zero mean, unit
  variance: wav2vec2's feature extractor) *before* it is padded with zeros to a whole number
  of 16-frame clips at 30 fps (533 samples per missing frame); wav2vec2's convolutional
  features are linearly interpolated (align_corners) to one per video frame before its
  transformer, whose 12 layers' outputs (``hidden_states[1:]``) are kept; each frame gets the
  window t-2 .. t+2, clamped at the ends. MEMO first separates the vocals (Kim_Vocal_2 through
  audio-separator); that step is not done here [differs: clean speech is assumed].
- Emotion (``extract_audio_emotion_labels``): emotion2vec_plus_large features of 1-second
  steps (the first and last from 2 s, the others from the 3 s around them; each segment
  layer-normalised, the features averaged over time) through MEMO's classifier, the argmax
  per sample, resized (nearest) to one label per frame; a clip is conditioned on its most
  frequent label (``torch.mode``: the smallest of ties).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from auhead_bench_methods.auhead.au_space import AUDIO_RATE
from auhead_bench_methods.auhead.hallo.conditions import encoder_layer_states

AUDIO_MARGIN = 2  # frames each side: MEMO's audio_margin, a 5-frame window


def frames_for(samples: int, fps: int) -> int:
    """MEMO's ``audio_length``: video frames covering the audio, rounded up."""
    return math.ceil(samples / AUDIO_RATE * fps)


@torch.no_grad()
def wav2vec2_frames(model: torch.nn.Module, audio: np.ndarray, frames: int,
                    fps: int) -> torch.Tensor:
    """(frames, layers, hidden), ``frames`` at least the audio's own (the rest is silence)."""
    from transformers import Wav2Vec2FeatureExtractor

    audio = np.asarray(audio, np.float32)
    if len(audio) < 400:
        audio = np.pad(audio, (0, 400 - len(audio)))
    values = Wav2Vec2FeatureExtractor(do_normalize=True)(
        audio, sampling_rate=AUDIO_RATE, return_tensors="pt").input_values[0]
    own = frames_for(len(audio), fps)
    if frames > own:  # MEMO pads the normalised waveform, per missing frame
        values = F.pad(values, (0, (frames - own) * (AUDIO_RATE // fps)))
    parameter = next(model.parameters())
    extract = model.feature_extractor(values[None].to(parameter.device, parameter.dtype))
    extract = F.interpolate(extract.float(), size=frames, mode="linear", align_corners=True)
    hidden, _ = model.feature_projection(extract.transpose(1, 2).to(parameter.dtype))
    states = encoder_layer_states(model.encoder, hidden)  # hidden_states[1:]
    return torch.stack(states, dim=1)[0].transpose(0, 1).float()


def audio_windows(features: torch.Tensor, margin: int = AUDIO_MARGIN) -> torch.Tensor:
    """(T, layers, hidden) -> (T, 2 * margin + 1, layers, hidden), indices clamped."""
    count = features.shape[0]
    index = torch.arange(count)[:, None] + torch.arange(-margin, margin + 1)[None]
    return features[index.clamp(0, count - 1)]


def emotion_labels(audio: np.ndarray, frames: int, classify: Callable[[np.ndarray], int]
                   ) -> np.ndarray:
    """(frames,) class per video frame; ``classify`` maps a waveform segment to a class."""
    wav = np.asarray(audio, np.float32)
    second = AUDIO_RATE
    labels = np.full(len(wav), -1, np.int64)
    labels[:second] = classify(wav[: 2 * second])
    for start in range(second, len(wav) - second, second):
        labels[start : start + second] = classify(wav[start - second : start + 2 * second])
    labels[-second:] = classify(wav[-2 * second :])
    index = np.floor(np.arange(frames) * len(wav) / frames).astype(np.int64)  # nearest
    return labels[np.clip(index, 0, len(wav) - 1)]


def clip_emotion(labels: np.ndarray) -> int:
    """The most frequent label, the smallest of ties (torch.mode's choice)."""
    return int(torch.mode(torch.as_tensor(labels)).values)


class Emotion2vecClassifier:
    """emotion2vec_plus_large (through funasr, the model's own package) + MEMO's classifier."""

    def __init__(self, snapshot: str, classifier: torch.nn.Module, device: str):
        try:
            from funasr import AutoModel
        except ImportError:
            from auhead_bench.errors import BenchError

            raise BenchError(
                "MEMO's audio emotion needs emotion2vec, read by funasr, which is not installed",
                fix="pip install funasr (and `auhead-bench weights pull memo-emotion2vec`), or "
                "set the method option emotion: none") from None
        self.model = AutoModel(model=snapshot, device=device, disable_update=True).model
        self.model.eval()
        self.classifier, self.device = classifier, device

    @torch.no_grad()
    def __call__(self, segment: np.ndarray) -> int:
        x = torch.from_numpy(np.asarray(segment, np.float32)).to(self.device)
        x = F.layer_norm(x, x.shape).view(1, -1)
        feature = self.model.extract_features(x)["x"].mean(dim=1)
        parameter = next(self.classifier.parameters())
        probabilities = self.classifier(feature.to(parameter.device, parameter.dtype))
        return int(probabilities.argmax(dim=-1))
