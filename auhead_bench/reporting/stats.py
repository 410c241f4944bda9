"""Uncertainty from a record's own per-clip values: bootstrap CIs, seed spread, paired tests.

Clips are the unit of resampling: a clip's values under every seed stay together, because the
seeds of one clip are not independent draws of the test set. The statistic is the one the
runner reports (mean over seeds of the per-seed mean over scored clips), so the point estimate
equals the record's value and the interval is about that exact number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from auhead_bench.records import ClipValue, MetricResult

N_BOOT = 2000
LEVEL = 0.95
SEED = 0  # fixed: the same record always gets the same interval
_CHUNK = 256  # bootstrap resamples per matrix product, bounds memory for large test sets


@dataclass(frozen=True)
class Estimate:
    """A value with its interval: the CI is over clips, ``seed_std`` over per-seed means."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    seed_std: float | None = None
    n_seeds: int = 0
    n_clips: int = 0  # distinct clips with at least one value
    level: float = LEVEL
    n_boot: int = 0
    note: str | None = None  # why there is no CI, when there is none

    @property
    def half_width(self) -> float | None:
        """Half the CI's width: what a table shows after the ``±``."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci_level": self.level if self.ci_low is not None else None,
            "seed_std": self.seed_std,
            "n_seeds": self.n_seeds,
            "n_clips": self.n_clips,
            "n_boot": self.n_boot,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """A method minus a baseline on the clips both scored; ``better`` honours the direction."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_pairs: int
    better: bool | None  # None: no difference at all
    level: float = LEVEL
    n_boot: int = N_BOOT

    def as_dict(self) -> dict[str, Any]:
        return {
            "diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci_level": self.level,
            "p_value": self.p_value,
            "n_pairs": self.n_pairs,
            "better": self.better,
            "n_boot": self.n_boot,
        }


def clip_matrix(values: Sequence[ClipValue]) -> tuple[list[str], list[int], np.ndarray]:
    """(clip ids, seeds, clips x seeds matrix) with NaN where a clip was not scored."""
    clips = sorted({v.clip_id for v in values if v.value is not None})
    seeds = sorted({v.seed for v in values if v.value is not None})
    matrix = np.full((len(clips), len(seeds)), np.nan)
    row = {c: i for i, c in enumerate(clips)}
    col = {s: j for j, s in enumerate(seeds)}
    for v in values:
        if v.value is not None and math.isfinite(v.value):
            matrix[row[v.clip_id], col[v.seed]] = v.value
    return clips, seeds, matrix


def _statistic(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean over seeds of per-seed means, from weighted sums and counts (last axis: seeds)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
    present = ~np.isnan(per_seed)
    total = np.where(present, per_seed, 0.0).sum(axis=-1)
    n = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.where(n > 0, n, 1), np.nan)


def _resample_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` bootstrap resamples of ``n`` items as counts (size x n): a resample's mean is
    then one matrix product, which is what makes thousands of clips cheap."""
    picks = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
    return np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(float)


def bootstrap_ci(
    matrix: np.ndarray, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED
) -> tuple[float, float] | None:
    """Percentile CI of the runner's statistic, resampling rows (clips) with replacement."""
    n_clips = matrix.shape[0]
    if n_clips == 0:
        return None
    filled = np.nan_to_num(matrix, nan=0.0)
    present = (~np.isnan(matrix)).astype(float)
    rng = np.random.default_rng(seed)
    stats: list[np.ndarray] = []
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        weights = _resample_counts(rng, n_clips, size)
        stats.append(_statistic(weights @ filled, weights @ present))
    draws = np.concatenate(stats)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return None
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(low), float(high)


def seed_std(per_seed: dict[str, float | None]) -> float | None:
    """Sample standard deviation of the per-seed values, when two or more seeds have one."""
    finite = [v for v in per_seed.values() if v is not None and math.isfinite(v)]
    if len(finite) < 2:
        return None
    return float(np.std(finite, ddof=1))


def point_value(matrix: np.ndarray) -> float | None:
    """The runner's statistic on the full sample (mean over seeds of per-seed clip means)."""
    if matrix.size == 0:
        return None
    value = _statistic(np.nansum(matrix, axis=0), (~np.isnan(matrix)).sum(axis=0))
    return None if np.isnan(value) else float(value)


def estimate(
    result: MetricResult,
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
) -> Estimate:
    """The record's value with a clip-bootstrap CI and the spread over seeds."""
    if result.status != "ok" or result.value is None:
        return Estimate(value=None, note=result.reason or result.status.replace("_", " "))
    spread = seed_std(result.per_seed)
    n_seeds = sum(v is not None for v in result.per_seed.values())
    clips, _, matrix = clip_matrix(result.per_clip)
    if not clips:
        # A distribution metric (FID, FVD) has one value per seed and no per-clip values.
        return Estimate(
            value=result.value,
            seed_std=spread,
            n_seeds=n_seeds,
            note="no per-clip values (distribution metric): no bootstrap CI",
        )
    if len(clips) < 2:  # one clip: a bootstrap interval would be [v, v], not certainty
        return Estimate(
            value=result.value,
            seed_std=spread,
            n_seeds=n_seeds,
            n_clips=len(clips),
            note="one clip: no interval",
        )
    ci = bootstrap_ci(matrix, n_boot=n_boot, level=level, seed=seed)
    return Estimate(
        value=result.value,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        seed_std=spread,
        n_seeds=n_seeds,
        n_clips=len(clips),
        level=level,
        n_boot=n_boot,
    )


def group_estimates(
    result: MetricResult,
    key: str | Callable[[ClipValue], Any],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[Any, Estimate]:
    """Per-group estimates (e.g. per emotion); ``key`` is a label name or a function of a clip.

    Clips whose label is missing are left out: a group "None" would mix unrelated clips.
    """
    get = key if callable(key) else (lambda v: v.labels.get(key))
    groups: dict[Any, list[ClipValue]] = {}
    for value in result.per_clip:
        label = get(value)
        if label is not None and value.value is not None:
            groups.setdefault(label, []).append(value)
    out: dict[Any, Estimate] = {}
    for label in sorted(groups, key=label_sort_key):
        clips, seeds, matrix = clip_matrix(groups[label])
        per_seed = {
            str(s): float(np.nanmean(matrix[:, j]))
            for j, s in enumerate(seeds)
            if not np.all(np.isnan(matrix[:, j]))
        }
        ci = bootstrap_ci(matrix, n_boot=n_boot, level=level, seed=seed) if len(clips) > 1 else None
        out[label] = Estimate(
            value=point_value(matrix),
            ci_low=ci[0] if ci else None,
            ci_high=ci[1] if ci else None,
            seed_std=seed_std(per_seed),
            n_seeds=len(per_seed),
            n_clips=len(clips),
            level=level,
            n_boot=n_boot,
        )
    return out


def label_sort_key(label: Any) -> tuple[int, float, str]:
    """Numbers in numeric order (intensity 1 < 2 < 10), then strings alphabetically."""
    if isinstance(label, int | float) and not isinstance(label, bool):
        return (0, float(label), "")
    return (1, 0.0, str(label))


def clip_means(values: Sequence[ClipValue]) -> dict[str, float]:
    """Each clip's mean over the seeds that scored it."""
    clips, _, matrix = clip_matrix(values)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(matrix, axis=1) if matrix.size else np.array([])
    return {c: float(m) for c, m in zip(clips, means, strict=True) if not np.isnan(m)}


def paired_bootstrap(
    result: MetricResult,
    baseline: MetricResult,
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
) -> Comparison | None:
    """Method minus baseline, paired by clip (each clip averaged over its seeds first).

    The p-value is two-sided and inverts the percentile interval (twice the bootstrap mass on
    the far side of zero), so p < 1 - level exactly when the CI excludes zero and the two never
    disagree in a table. None when the two share no scored clip.
    """
    ours, theirs = clip_means(result.per_clip), clip_means(baseline.per_clip)
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return None
    diffs = np.array([ours[c] - theirs[c] for c in shared])
    observed = float(diffs.mean())
    rng = np.random.default_rng(seed)
    n = len(diffs)
    draws = np.concatenate(
        [
            _resample_counts(rng, n, min(_CHUNK, n_boot - start)) @ diffs / n
            for start in range(0, n_boot, _CHUNK)
        ]
    )
    alpha = (1 - level) / 2
    low, high = (float(x) for x in np.quantile(draws, [alpha, 1 - alpha]))
    if np.allclose(diffs, 0.0, rtol=0.0, atol=1e-12):
        p_value, better = 1.0, None
    else:
        below, above = int((draws <= 0).sum()), int((draws >= 0).sum())
        p_value = min(1.0, 2 * (min(below, above) + 1) / (n_boot + 1))
        better = None if observed == 0 else (observed > 0) == result.higher_is_better
    return Comparison(
        diff=observed,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        n_pairs=n,
        better=better,
        level=level,
        n_boot=n_boot,
    )
