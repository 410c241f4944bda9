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

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
    mu_1: np.ndarray,
    sigma_1: np.ndarray,
    mu_2: np.ndarray,
    sigma_2: np.ndarray,
    traces: float | None = None,
) -> float:
    """``||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))``, float64.

    ``traces`` replaces ``Tr(S_1) + Tr(S_2)`` (pytorch-fid's offset enters the square root
    only, not these traces)."""
    mu_1, mu_2 = np.asarray(mu_1, np.float64), np.asarray(mu_2, np.float64)
    sigma_1, sigma_2 = np.asarray(sigma_1, np.float64), np.asarray(sigma_2, np.float64)
    if mu_1.shape != mu_2.shape or sigma_1.shape != sigma_2.shape:
        raise BenchError(
            f"feature sizes differ: means {mu_1.shape} vs {mu_2.shape}, "
            f"covariances {sigma_1.shape} vs {sigma_2.shape}"
        )
    diff = mu_1 - mu_2
    if traces is None:
        traces = float(np.trace(sigma_1) + np.trace(sigma_2))
    value = float(diff @ diff) + traces - 2.0 * trace_sqrt_product(sigma_1, sigma_2)
    if not np.isfinite(value):
        raise BenchError(f"the Fréchet distance is not finite ({value})")
    # A distance is >= 0: identical inputs give about -1e-10 from rounding in the square
    # root, which would print as "-0.0000" for the ground truth's own FID. A clearly
    # negative value is a numerical problem and is left visible.
    scale = traces + float(diff @ diff)
    if -1e-9 * max(scale, 1.0) < value < 0:
        return 0.0
    return value


# What to do when a side has too few samples for a full-rank covariance (N <= dim), or the
# product of the covariances is singular:
# - "refuse": an error naming the fix (the value would be dominated by estimation error);
# - "pytorch_fid_offset": pytorch-fid's ``calculate_frechet_distance``: never refuse; only when
#   ``scipy.linalg.sqrtm(S_1 S_2)`` has a non-finite entry, take the trace term of
#   ``(S_1 + eps I)(S_2 + eps I)`` instead (traces of S_1 and S_2 untouched);
# - "unregularised": StyleGAN-V's ``compute_fvd``: never refuse, no offset ever.
Singular = Literal["refuse", "pytorch_fid_offset", "unregularised"]
PYTORCH_FID_EPS = 1e-6  # calculate_frechet_distance's default eps


def sqrtm_is_finite(sigma_1: np.ndarray, sigma_2: np.ndarray) -> bool:
    """pytorch-fid's test for its offset: ``scipy.linalg.sqrtm(S_1 . S_2)`` is finite.

    Run with scipy's own ``sqrtm`` because no cheaper test predicts it: whether a singular
    product gives NaN or a finite (inaccurate) root depends on the scipy version (1.17's
    Schur method returns finite roots for rank-deficient covariances; users of older ones
    commonly report pytorch-fid's "singular product" message, i.e. non-finite roots).
    It costs seconds to a minute at 2048x2048 on a CPU, paid once per record, exact mode only.
    """
    import scipy.linalg

    with warnings.catch_warnings():  # "Matrix is singular": the finiteness test decides
        warnings.simplefilter("ignore")
        root = scipy.linalg.sqrtm(sigma_1.dot(sigma_2))
    return bool(np.isfinite(root).all())


@dataclass
class Distance:
    """A Fréchet distance and how singular covariances were handled for it."""

    value: float
    offset_applied: bool = False  # pytorch_fid_offset: sqrtm was not finite, eps * I used


def distance_between(
    generated: RunningGaussian,
    reference: RunningGaussian,
    *,
    metric_id: str,
    unit: str,
    ddof: int,
    singular: Singular = "refuse",
    diagonal_eps: float = 0.0,
    offset_eps: float = PYTORCH_FID_EPS,
) -> Distance:
    """The Fréchet distance of two feature streams, or a BenchError saying what is missing.

    ``singular`` (see ``Singular``) says what happens with fewer samples than feature
    dimensions + 1 per side. ``diagonal_eps > 0`` (with ``refuse`` only) is a ridge: it adds
    ``eps * I`` to both covariances, traces included, always, which lifts the refusal; the
    value is then biased and comparable only at equal sample counts and eps. It is NOT
    pytorch-fid's rule (that is ``pytorch_fid_offset``).

    The trace term is always our symmetric eigenvalue form, which equals the real part of
    the trace of scipy's ``sqrtm`` (tested, singular products included).
    """
    if diagonal_eps and singular != "refuse":
        raise BenchError(
            f"{metric_id}: diagonal_eps and singular={singular!r} are two different rules",
            fix="set one of them (diagonal_eps: 0, or singular: refuse)",
        )
    sides = (("generated", generated), ("ground-truth", reference))
    for side, stream in sides:
        if stream.count == 0:
            raise BenchError(f"{metric_id}: no {side} {unit} were scored")
    dim = generated.dim or 0
    needed = dim + 1 if (singular == "refuse" and not diagonal_eps) else 2
    short = [f"{stream.count} {side}" for side, stream in sides if stream.count < needed]
    if short:
        if needed > 2:
            raise BenchError(
                f"{metric_id}: {' and '.join(short)} {unit} are too few for a full-rank "
                f"{dim}x{dim} covariance (need at least {needed} per side)",
                fix="score more clips, or set the metric option singular (pytorch_fid_offset "
                "for FID, unregularised for FVD) or diagonal_eps (e.g. 1e-6); recorded, and "
                "the value is then biased",
            )
        raise BenchError(
            f"{metric_id}: {' and '.join(short)} {unit} are too few for a covariance "
            f"(need at least {needed} per side)",
            fix="score more clips",
        )
    gen, ref = generated.gaussian(ddof), reference.gaussian(ddof)
    offset_applied = False
    traces = None
    if diagonal_eps:
        offset = diagonal_eps * np.eye(dim)
        gen.covariance, ref.covariance = gen.covariance + offset, ref.covariance + offset
    elif singular == "pytorch_fid_offset" and not sqrtm_is_finite(gen.covariance, ref.covariance):
        offset_applied = True
        traces = float(np.trace(gen.covariance) + np.trace(ref.covariance))
        offset = offset_eps * np.eye(dim)
        gen.covariance, ref.covariance = gen.covariance + offset, ref.covariance + offset
    try:
        value = frechet_distance(gen.mean, gen.covariance, ref.mean, ref.covariance, traces)
    except BenchError as exc:
        raise BenchError(f"{metric_id}: {exc.message}") from None
    return Distance(value, offset_applied)


class FrechetMetric(DistributionMetric):
    """FID and FVD alike: features of both sides folded into running Gaussians, then the
    Fréchet distance. Subclasses name the feature size, the sample unit, the covariance
    normalisation of their reference (``ddof``) and the counts that ``summary`` reports.
    Their options carry ``singular`` and ``diagonal_eps`` (and ``offset_eps`` for FID)."""

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
        self._memo: tuple[tuple[Any, ...], Distance | BenchError] | None = None

    def fold(self, generated: np.ndarray, ground_truth: np.ndarray, clip_id: str) -> None:
        """Check both sides' features (shape, NaN) before folding either in."""
        sides = {"generated": generated, "ground truth": ground_truth}
        for side, features in sides.items():
            check_features(features, self.dim, f"{self.id}: clip {clip_id} ({side})")
        self.generated.update(generated, f"{self.id}: clip {clip_id} (generated)")
        self.ground_truth.update(ground_truth, f"{self.id}: clip {clip_id} (ground truth)")
        self.videos += 1

    def _distance(self) -> Distance:
        """The distance, computed once per state (``summary`` and ``compute`` both need it:
        the offset decision costs a ``sqrtm``)."""
        key = tuple(
            (s.count, None if s._sum is None else float(s._sum.sum()), id(s))
            for s in (self.generated, self.ground_truth)
        )
        if self._memo is None or self._memo[0] != key:
            options = self.options
            try:
                found: Distance | BenchError = distance_between(
                    self.generated,
                    self.ground_truth,
                    metric_id=self.id,
                    unit=self.unit,
                    ddof=self.ddof,
                    singular=getattr(options, "singular", "refuse"),
                    diagonal_eps=getattr(options, "diagonal_eps", 0.0),
                    offset_eps=getattr(options, "offset_eps", PYTORCH_FID_EPS),
                )
            except BenchError as exc:
                found = exc
            self._memo = (key, found)
        found = self._memo[1]
        if isinstance(found, BenchError):
            raise found
        return found

    def compute(self) -> float:
        return self._distance().value

    def summary(self) -> dict[str, Any]:
        """The sample counts behind the value (biased at small N; singular below dim + 1),
        and, for pytorch-fid's rule, whether its offset was applied."""
        out: dict[str, Any] = {
            self.videos_key: self.videos,
            f"generated_{self.samples_key}": self.generated.count,
            f"ground_truth_{self.samples_key}": self.ground_truth.count,
        }
        if getattr(self.options, "singular", "refuse") == "pytorch_fid_offset":
            try:
                out["offset_applied"] = self._distance().offset_applied
            except BenchError:
                pass  # compute() reports it
        return out
