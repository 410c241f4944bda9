"""What one task of a method or an extractor needs on a worker, for the Ray executor.

Declared on the class (``resources = Resources(gpus=1, memory_gb=24)``); the local executor
ignores it. GPUs are requested only when the run uses CUDA; a task that declares none then
runs on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0  # a fraction shares one GPU between tasks (small models)
    memory_gb: float = 0.0  # host memory Ray reserves for the task; 0: no reservation

    def ray_options(self, use_gpu: bool) -> dict[str, Any]:
        """Keyword arguments for ``remote_function.options(...)``."""
        options: dict[str, Any] = {"num_cpus": self.cpus, "num_gpus": self.gpus if use_gpu else 0}
        if self.memory_gb:
            options["memory"] = int(self.memory_gb * 2**30)
        return options

    def describe(self, use_gpu: bool) -> str:
        parts = [f"{self.cpus:g} CPU"]
        if use_gpu and self.gpus:
            parts.append(f"{self.gpus:g} GPU")
        if self.memory_gb:
            parts.append(f"{self.memory_gb:g} GiB memory")
        return ", ".join(parts)


def combined(items: Iterable[Resources]) -> Resources:
    """Several models loaded in one task, run one after another: the largest CPU and GPU
    share, and the sum of their memory."""
    items = list(items)
    if not items:
        return Resources()
    return Resources(
        cpus=max(r.cpus for r in items),
        gpus=max(r.gpus for r in items),
        memory_gb=sum(r.memory_gb for r in items),
    )
