"""The Fréchet distance between two Gaussians, and the running statistics that feed it.

FID and FVD both fit a Gaussian to each side's features and report
``||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))``. Features are folded in batch by
batch (sum, sum of outer products, count), so no side ever holds all its features in memory.

Written here rather than imported: pytorch-fid's ``calculate_frechet_distance`` takes only
finished (mu, sigma) pairs and spends ~10 s in ``scipy.linalg.sqrtm`` on a 2048x2048 matrix;
torchmetrics' FID keeps its running sums in torch and offers the distance only as a private
function. The symmetric eigenvalue form below is equal to the ``sqrtm`` form (tested) and
several times faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from auhead_bench.errors import BenchError
from auhead_bench.metric import DistributionMetric
from auhead_bench.options import Options


@dataclass
class Gaussian:
    """A fitted Gaussian: mean, covariance and the number of samples behind them."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int


def check_features(features: np.ndarray, dim: int | None, source: str) -> np.ndarray:
    """``features`` as an (N, dim) array, or a BenchError naming ``source`` (clip and side)."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise BenchError(f"{source}: features have shape {features.shape}, expected (N, D)")
    if dim is not None and features.shape[1] != dim:
        raise BenchError(
            f"{source}: {features.shape[1]}-d features where {dim}-d were expected",
            fix="clear the feature cache if the extractor changed",
        )
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        raise BenchError(
            f"{source}: {int((~finite).sum())} of {len(features)} feature rows are NaN or "
            "infinite",
            fix="check that the video decodes to valid frames and that the weights are intact",
        )
    return features


class RunningGaussian:
    """Sufficient statistics of a feature stream: count, sum and sum of outer products.

    Sums are float64 and taken about a shift (the first batch's mean): the covariance is the
    same for any shift, and the subtraction ``E[xx^T] - mu mu^T`` then loses no precision
    when features sit far from zero.
    """

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.count = 0
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def update(self, features: np.ndarray, source: str) -> None:
        """Fold in ``features`` (N, dim); ``source`` names them in errors (clip and side)."""
        features = check_features(features, self.dim, source)
        if len(features) == 0:
            return
        x = features.astype(np.float64)
        if self._shift is None:
            self.dim = x.shape[1]
            self._shift = x.mean(axis=0)
            self._sum = np.zeros(self.dim)
            self._outer = np.zeros((self.dim, self.dim))
        x = x - self._shift
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x
        self.count += len(x)

    def merge(self, other: RunningGaussian) -> RunningGaussian:
        """Fold in ``other``'s statistics (another part of the same stream); returns self.

        Exact up to rounding: with this stream's shift ``s``, the other's shift ``t`` and
        ``d = t - s``, each of its samples is ``x - s = (x - t) + d``, so its sums about ``s``
        are ``sum_x (x - s) = S_t + n d`` and ``sum_x (x - s)(x - s)^T = O_t + S_t d^T +
        d S_t^T + n d d^T`` (``S_t``, ``O_t``, ``n``: its sum, sum of outer products and
        count about ``t``), which add to ours.
        """
        if other._shift is None:  # nothing folded there
            return self
        if self.dim is not None and other.dim != self.dim:
            raise BenchError(f"cannot merge {other.dim}-d statistics into {self.dim}-d ones")
        if self._shift is None:
            self.dim = other.dim
            self._shift = other._shift.copy()
            self._sum = other._sum.copy()
            self._outer = other._outer.copy()
            self.count = other.count
            return self
        d = other._shift - self._shift
        cross = np.outer(other._sum, d)
        self._sum = self._sum + other._sum + other.count * d
        self._outer = self._outer + other._outer + cross + cross.T + other.count * np.outer(d, d)
        self.count += other.count
        return self

    def gaussian(self, ddof: int) -> Gaussian:
        """Mean and covariance (divided by ``count - ddof``: 1 unbiased, 0 maximum likelihood)."""
        if self._shift is None or self.count - ddof <= 0:
            raise BenchError(f"{self.count} samples are too few for a covariance")
        centred_mean = self._sum / self.count
        scatter = self._outer - self.count * np.outer(centred_mean, centred_mean)
        covariance = scatter / (self.count - ddof)
        return Gaussian(centred_mean + self._shift, (covariance + covariance.T) / 2, self.count)


def trace_sqrt_product(sigma_1: np.ndarray, sigma_2: np.ndarray) -> float:
    """``Tr((S_1 S_2)^(1/2))`` for symmetric positive semi-definite ``S_1``, ``S_2``.

    ``S_1 S_2`` has the eigenvalues of the symmetric ``A S_2 A`` with ``A = S_1^(1/2)``, so
    the trace is the sum of their square roots: two symmetric eigendecompositions, exact for
    singular matrices too. Round-off negatives (|lambda| ~ 1e-16 of the largest) count as 0.
    """
    values, vectors = np.linalg.eigh(sigma_1)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    product = root @ sigma_2 @ root
    eigen = np.linalg.eigvalsh((product + product.T) / 2)
    return float(np.sqrt(np.clip(eigen, 0.0, None)).sum())


def frechet_distance(
    mu_1: np.ndarray, sigma_1: np.ndarray, mu_2: np.ndarray, sigma_2: np.ndarray
) -> float:
    """``||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))``, float64."""
    mu_1, mu_2 = np.asarray(mu_1, np.float64), np.asarray(mu_2, np.float64)
    sigma_1, sigma_2 = np.asarray(sigma_1, np.float64), np.asarray(sigma_2, np.float64)
    if mu_1.shape != mu_2.shape or sigma_1.shape != sigma_2.shape:
        raise BenchError(
            f"feature sizes differ: means {mu_1.shape} vs {mu_2.shape}, "
            f"covariances {sigma_1.shape} vs {sigma_2.shape}"
        )
    diff = mu_1 - mu_2
    value = (
        float(diff @ diff)
        + float(np.trace(sigma_1) + np.trace(sigma_2))
        - 2.0 * trace_sqrt_product(sigma_1, sigma_2)
    )
    if not np.isfinite(value):
        raise BenchError(f"the Fréchet distance is not finite ({value})")
    # A distance is >= 0: identical inputs give about -1e-10 from rounding in the square
    # root, which would print as "-0.0000" for the ground truth's own FID. A clearly
    # negative value is a numerical problem and is left visible.
    scale = float(np.trace(sigma_1) + np.trace(sigma_2)) + float(diff @ diff)
    if -1e-9 * max(scale, 1.0) < value < 0:
        return 0.0
    return value


def distance_between(
    generated: RunningGaussian,
    reference: RunningGaussian,
    *,
    metric_id: str,
    unit: str,
    ddof: int,
    diagonal_eps: float,
) -> float:
    """The Fréchet distance of two feature streams, or a BenchError saying what is missing.

    With ``diagonal_eps == 0`` each side needs more samples than feature dimensions: fewer
    give a singular covariance and a value dominated by estimation error. ``diagonal_eps > 0``
    adds ``eps * I`` to both covariances (pytorch-fid's fallback regulariser, 1e-6 there),
    which allows fewer samples; the value is then biased and only comparable at equal
    sample counts and eps.
    """
    sides = (("generated", generated), ("ground-truth", reference))
    for side, stream in sides:
        if stream.count == 0:
            raise BenchError(f"{metric_id}: no {side} {unit} were scored")
    dim = generated.dim or 0
    needed = dim + 1 if diagonal_eps == 0 else 2
    short = [f"{stream.count} {side}" for side, stream in sides if stream.count < needed]
    if short:
        if diagonal_eps == 0:
            raise BenchError(
                f"{metric_id}: {' and '.join(short)} {unit} are too few for a full-rank "
                f"{dim}x{dim} covariance (need at least {needed} per side)",
                fix="score more clips, or set the metric option diagonal_eps (e.g. 1e-6; "
                "recorded, and the value is then biased)",
            )
        raise BenchError(
            f"{metric_id}: {' and '.join(short)} {unit} are too few for a covariance "
            f"(need at least {needed} per side)",
            fix="score more clips",
        )
    gen, ref = generated.gaussian(ddof), reference.gaussian(ddof)
    if diagonal_eps:
        offset = diagonal_eps * np.eye(dim)
        gen.covariance, ref.covariance = gen.covariance + offset, ref.covariance + offset
    try:
        return frechet_distance(gen.mean, gen.covariance, ref.mean, ref.covariance)
    except BenchError as exc:
        raise BenchError(f"{metric_id}: {exc.message}") from None


class FrechetMetric(DistributionMetric):
    """FID and FVD alike: features of both sides folded into running Gaussians, then the
    Fréchet distance. Subclasses name the feature size, the sample unit, the covariance
    normalisation of their reference (``ddof``) and the counts that ``summary`` reports."""

    dim: ClassVar[int]
    unit: ClassVar[str]  # what one sample is, for the too-few-samples error
    ddof: ClassVar[int]  # 1: numpy.cov (pytorch-fid); 0: 1/N (StyleGAN-V)
    videos_key: ClassVar[str]  # summary key for the number of clips folded in
    samples_key: ClassVar[str]  # summary suffix for samples per side
    # Declared state (add_state): merged across workers, exported for Ray.
    generated: RunningGaussian
    ground_truth: RunningGaussian
    videos: int

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self.add_state("generated", RunningGaussian(self.dim), merge=RunningGaussian.merge)
        self.add_state("ground_truth", RunningGaussian(self.dim), merge=RunningGaussian.merge)
        self.add_state("videos", 0, merge="sum")

    def fold(self, generated: np.ndarray, ground_truth: np.ndarray, clip_id: str) -> None:
        """Check both sides' features (shape, NaN) before folding either in."""
        sides = {"generated": generated, "ground truth": ground_truth}
        for side, features in sides.items():
            check_features(features, self.dim, f"{self.id}: clip {clip_id} ({side})")
        self.generated.update(generated, f"{self.id}: clip {clip_id} (generated)")
        self.ground_truth.update(ground_truth, f"{self.id}: clip {clip_id} (ground truth)")
        self.videos += 1

    def compute(self) -> float:
        return distance_between(
            self.generated,
            self.ground_truth,
            metric_id=self.id,
            unit=self.unit,
            ddof=self.ddof,
            diagonal_eps=self.options.diagonal_eps,
        )

    def summary(self) -> dict[str, Any]:
        """The sample counts behind the value (biased at small N; singular below dim + 1)."""
        return {
            self.videos_key: self.videos,
            f"generated_{self.samples_key}": self.generated.count,
            f"ground_truth_{self.samples_key}": self.ground_truth.count,
        }
