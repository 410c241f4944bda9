"""The contract of a metric plugin: per-clip scores, or update/compute for distributions."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import numpy as np

from auhead_bench.options import Options
from auhead_bench.views import ClipView


class ClipSkipped(Exception):
    """Raised by a metric when one clip cannot be scored (e.g. no face). Counted, never averaged."""


@dataclass
class ClipScore:
    """A per-clip value plus anything worth keeping beside it (frames used, flags)."""

    value: float
    info: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """Common attributes: the ``id`` names the protocol; ``needs`` names the features used.

    ``needs`` lists feature ids of the generated (and ground-truth) video: ``frames`` and
    ``audio`` come from decoding; anything else is an extractor id. ``reference_needs`` lists
    those of the clip's reference image (a one-frame video; empty: not loaded).
    ``needs_ground_truth`` is False for no-reference metrics.
    """

    id: ClassVar[str]
    description: ClassVar[str]
    higher_is_better: ClassVar[bool]
    version: ClassVar[str] = "1"
    needs: ClassVar[tuple[str, ...]] = ("frames",)
    reference_needs: ClassVar[tuple[str, ...]] = ()
    needs_ground_truth: ClassVar[bool] = True
    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options | None = None):
        self.options = options if options is not None else self.Options()

    def setup(self, device: str) -> None:  # noqa: B027 - optional hook, default does nothing
        """Load models onto ``device`` once."""

    def protocol(self) -> dict[str, Any]:
        """Every choice that changes the number, recorded in each result."""
        return {"version": self.version, **self.options.model_dump(mode="json")}

    def weights(self) -> dict[str, str]:
        """File name -> sha256 of weights the metric itself loads (not via extractors)."""
        return {}


class PerClipMetric(Metric):
    """A metric scored clip by clip and averaged over clips (PSNR, SSIM, LSE, ...)."""

    @abstractmethod
    def score(self, view: ClipView) -> ClipScore | float:
        """Score one clip; raise ClipSkipped with a reason when it cannot be scored."""


# How two partial values of one declared state combine: "sum" (a + b), "cat" (lists joined,
# arrays concatenated along axis 0), or a function (a, b) -> merged.
Merge = Literal["sum", "cat"] | Callable[[Any, Any], Any]


class DistributionMetric(Metric):
    """A metric over all clips at once (FID, FVD), torchmetrics-style.

    ``update`` folds one clip into sufficient statistics; ``compute`` returns the value.

    The statistics are declared in ``__init__`` with ``add_state`` (as torchmetrics'
    ``Metric.add_state``), which gives the generic operations: ``reset``, ``accumulator``
    (a fresh one per record and seed, sharing the set-up models), ``merge`` (fold in another
    accumulator: partial statistics from parallel workers) and ``export_state`` /
    ``import_state`` (the partial statistics as picklable data, e.g. for a Ray task).

    A metric that declares nothing and overrides ``reset`` itself still works everywhere
    (``reset`` and ``accumulator`` behave as before); it only lacks ``merge`` and the
    export, so ``mergeable`` is False and the Ray executor folds it again on the driver
    from cached features.
    """

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self._state_defaults: dict[str, Any] = {}
        self._state_merges: dict[str, Merge] = {}
        self.reset()

    def add_state(self, name: str, default: Any, merge: Merge) -> None:
        """Declare a statistic: ``default`` is its initial value (a copy on every reset),
        ``merge`` how two partial values of it combine. Sets the attribute ``name``."""
        if not (merge in ("sum", "cat") or callable(merge)):
            raise ValueError(f"merge must be 'sum', 'cat' or a callable, not {merge!r}")
        self._state_defaults[name] = copy.deepcopy(default)
        self._state_merges[name] = merge
        setattr(self, name, copy.deepcopy(default))

    @property
    def mergeable(self) -> bool:
        """True when the metric declares its state, so ``merge`` and the export work."""
        return bool(getattr(self, "_state_defaults", None))

    def reset(self) -> None:
        """Every declared statistic back to a copy of its default."""
        for name, default in getattr(self, "_state_defaults", {}).items():
            setattr(self, name, copy.deepcopy(default))

    def accumulator(self) -> Self:
        """A fresh accumulator of this metric: the set-up models shared (a shallow copy),
        the statistics reset."""
        fresh = copy.copy(self)
        fresh.reset()
        return fresh

    def merge(self, other: DistributionMetric) -> None:
        """Fold ``other``'s statistics (the same metric, other clips) into this one."""
        self._require_declared("merge")
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for name, how in self._state_merges.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if how == "sum":
                merged = mine + theirs
            elif how == "cat":
                is_array = isinstance(mine, np.ndarray)
                merged = np.concatenate([mine, theirs]) if is_array else mine + theirs
            else:
                merged = how(mine, theirs)
            setattr(self, name, merged)

    def export_state(self) -> dict[str, Any]:
        """The declared statistics as picklable data (copies), for ``import_state``."""
        self._require_declared("export_state")
        return {name: copy.deepcopy(getattr(self, name)) for name in self._state_defaults}

    def import_state(self, state: dict[str, Any]) -> None:
        """Replace the declared statistics with an ``export_state`` of the same metric."""
        self._require_declared("import_state")
        if set(state) != set(self._state_defaults):
            raise ValueError(f"{self.id}: state has {sorted(state)}, not the declared "
                             f"{sorted(self._state_defaults)}")
        for name, value in state.items():
            setattr(self, name, copy.deepcopy(value))

    def _require_declared(self, operation: str) -> None:
        if not self.mergeable:
            raise TypeError(
                f"{type(self).__name__} declares no state (add_state), so it has no "
                f"{operation}"
            )

    @abstractmethod
    def update(self, view: ClipView) -> None:
        """Fold one clip into the statistics."""

    @abstractmethod
    def compute(self) -> float:
        """The metric over everything updated so far; raise BenchError if too few samples."""

    def summary(self) -> dict[str, Any]:
        """Counts behind the value (e.g. frames or clips per side), recorded per seed."""
        return {}


class NotComputed(Exception):
    """Raised by ``setup`` when a metric cannot run here (e.g. weights missing).

    The message must say why and how to fix it (e.g. the ``auhead-bench weights pull`` command);
    the metric is then reported as not computed and the run goes on with the others.
    """
