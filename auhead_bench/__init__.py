"""auhead-bench: a plugin-based benchmark for emotional talking-head generation."""

from auhead_bench.clip import Clip
from auhead_bench.dataset import Dataset
from auhead_bench.errors import BenchError
from auhead_bench.extractor import Extractor
from auhead_bench.hookspecs import hookimpl
from auhead_bench.method import Generation, Method
from auhead_bench.metric import (
    ClipScore,
    ClipSkipped,
    DistributionMetric,
    Metric,
    NotComputed,
    PerClipMetric,
)
from auhead_bench.options import Options
from auhead_bench.resources import Resources
from auhead_bench.views import ClipView, VideoView

__version__ = "0.1.0"

__all__ = [
    "BenchError",
    "Clip",
    "ClipScore",
    "ClipSkipped",
    "ClipView",
    "Dataset",
    "DistributionMetric",
    "Extractor",
    "Generation",
    "Method",
    "Metric",
    "NotComputed",
    "Options",
    "PerClipMetric",
    "Resources",
    "VideoView",
    "hookimpl",
]
