"""The contract of a metric plugin: per-clip scores, or update/compute for distributions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


class DistributionMetric(Metric):
    """A metric over all clips at once (FID, FVD), torchmetrics-style.

    ``update`` folds one clip into sufficient statistics; ``compute`` returns the value.
    """

    def __init__(self, options: Options | None = None):
        super().__init__(options)
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Clear the accumulated statistics."""

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
