"""A benchmark run through the real CLI in its own process, for tests/test_faults.py.

usage: fault_bench.py CONFIG.yaml OUT CACHE  (runs `auhead-bench run CONFIG --out OUT
--cache-dir CACHE`, so a BenchError reaches the user exactly as the CLI prints it)

Only the built-in plugins the tests use are loaded (the folder dataset, the reference
methods): loading every entry point imports diffusers, about 9 s per process here. Cheap test
plugins are added: a method that copies the ground truth, one that crashes on one clip, an
extractor (so that feature entries are written) and two numpy metrics.

Environment:
  FAULT_FULL_AFTER=KIND:K  a disk that fills up mid-run: once this process has finished K
      entries of KIND (a cache kind such as ``generations``, or ``records`` for record
      files), every later write to a file under CACHE or OUT fails with
      OSError(ENOSPC). Injected at the file-write level: ``io.open``/``open`` (what pathlib,
      json, numpy.savez, zipfile and PIL use) still create the file, but its ``write``
      raises, as on a full disk. Finished entries are counted by wrapping ``os.rename`` and
      ``os.replace``, the calls that put a cache entry and a record in place. Writes done in
      C (the mp4 encoder, SQLite) are not intercepted.
  FAULT_SLOW=SECONDS  ``test_copy`` sleeps this long per generation (a kill lands mid-run).
  FAULT_LOG=FILE  ``test_copy`` appends "CLIP SEED" to FILE for each generation it finished.
"""

from __future__ import annotations

import builtins
import errno
import importlib.metadata as md
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from auhead_bench import (
    Clip,
    ClipView,
    Generation,
    Method,
    Options,
    PerClipMetric,
    VideoView,
    plugins,
)
from auhead_bench.extractor import Extractor
from auhead_bench.frames import aligned_chunks
from auhead_bench.plugins import PluginInfo, Registry

BUILTINS = {"datasets_folder", "methods_reference"}
TEST_PLUGIN = PluginInfo("fault_bench", "fault_bench", "tests", "0")


class CopyClip(Method):
    """The ground truth itself, written with a plain Python write (interceptable)."""

    id = "test_copy"
    description = "copies the ground truth (FAULT_SLOW: slowly)"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        time.sleep(float(os.environ.get("FAULT_SLOW", "0")))
        out_path.write_bytes(Path(clip.video).read_bytes())
        log = os.environ.get("FAULT_LOG")
        if log:
            with open(log, "a") as handle:  # outside the cache and OUT: never faulted
                handle.write(f"{clip.id} {seed}\n")
        return Generation()


class CrashOnClip1(CopyClip):
    id = "test_crash_on_clip1"
    description = "copies the ground truth, crashes on clip1"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        if clip.id == "clip1":
            raise RuntimeError("simulated crash on clip1")
        return super().generate(clip, options, seed, out_path)


class FrameMeans(Extractor):
    id = "test_frame_means"
    description = "mean intensity of each frame"

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        means = [chunk.frames.mean(axis=(1, 2, 3)) for chunk in video.chunks()]
        return {"means": np.concatenate(means).astype(np.float32)}


class MeanAbsError(PerClipMetric):
    id = "test_mae_rgb"
    description = "mean absolute RGB difference to the ground truth"
    higher_is_better = False

    def score(self, view: ClipView) -> float:
        assert view.ground_truth is not None
        total = values = 0
        for gen, gt in aligned_chunks(view.generated.chunks(), view.ground_truth.chunks()):
            total += int(np.abs(gen.astype(np.int16) - gt).sum())
            values += gen.size
        return total / values


class BrightnessGap(PerClipMetric):
    id = "test_brightness_gap"
    description = "mean absolute gap between per-frame mean intensities"
    higher_is_better = False
    needs = ("test_frame_means",)

    def score(self, view: ClipView) -> float:
        assert view.ground_truth is not None
        ours = view.generated["test_frame_means"]["means"]
        theirs = view.ground_truth[FrameMeans.id]["means"]
        count = min(len(ours), len(theirs))
        return float(np.abs(ours[:count] - theirs[:count]).mean())


TEST_CLASSES = [
    ("method", CopyClip),
    ("method", CrashOnClip1),
    ("extractor", FrameMeans),
    ("metric", MeanAbsError),
    ("metric", BrightnessGap),
]


def load_registry() -> Registry:
    """The real loader over the few built-in entry points the tests use, plus test plugins."""
    every = md.entry_points
    saved = plugins.md
    plugins.md = SimpleNamespace(
        entry_points=lambda **kw: [ep for ep in every(**kw) if ep.name in BUILTINS]
    )
    try:
        registry = plugins.load_plugins()
    finally:
        plugins.md = saved
    for kind, cls in TEST_CLASSES:
        registry.add(kind, cls, TEST_PLUGIN)
    return registry


class _NoSpace:
    """A file on a full disk: it was created, but nothing can be written to it."""

    def __init__(self, handle: Any, name: str):
        self._handle = handle
        self._name = name

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)

    def writelines(self, lines: Any) -> None:
        self.write(b"")

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._handle, attr)

    def __enter__(self) -> _NoSpace:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()

    def __iter__(self) -> Any:
        return iter(self._handle)


def fill_disk_after(kind: str, count: int, cache: Path, out: Path) -> None:
    """Make every write under ``cache`` and ``out`` fail with ENOSPC once ``count`` entries
    of ``kind`` are finished (see the module docstring)."""
    cache_root, records = os.path.abspath(cache), os.path.abspath(out / "records")
    roots = (cache_root, os.path.abspath(out))
    finished: Counter[str] = Counter()
    state = {"full": False}
    real_open, real_rename, real_replace = io.open, os.rename, os.replace

    def watched(name: str) -> bool:
        return any(name == r or name.startswith(r + os.sep) for r in roots)

    def count_finished(dst: Any) -> None:
        dst = os.path.abspath(dst)
        entry_kind = os.path.basename(os.path.dirname(os.path.dirname(dst)))
        if os.path.dirname(os.path.dirname(os.path.dirname(dst))) == cache_root:
            if entry_kind == "tmp":  # a file finished inside an entry being built
                return
        elif os.path.dirname(dst) == records and dst.endswith(".json"):
            entry_kind = "records"
        else:
            return
        finished[entry_kind] += 1
        if entry_kind == kind and finished[kind] >= count and not state["full"]:
            state["full"] = True
            print(f"fault: disk full from now on ({count} {kind} finished)", file=sys.stderr)

    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        real_rename(src, dst, *args, **kwargs)
        count_finished(dst)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        real_replace(src, dst, *args, **kwargs)
        count_finished(dst)

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if not state["full"] or not any(flag in mode for flag in "wax+"):
            return handle
        if isinstance(file, int):
            name = os.readlink(f"/proc/self/fd/{file}")  # os.fdopen(mkstemp()[0], "w")
        else:
            name = os.path.abspath(os.fsdecode(file))
        return _NoSpace(handle, name) if watched(name) else handle

    os.rename, os.replace = rename, replace
    io.open = builtins.open = open_


def main() -> None:
    config, out, cache = sys.argv[1:4]
    fault = os.environ.get("FAULT_FULL_AFTER")
    if fault:
        kind, count = fault.split(":")
        fill_disk_after(kind, int(count), Path(cache), Path(out))
    registry = load_registry()
    plugins.load_plugins = lambda: registry  # what get_registry() (the CLI's) returns
    from auhead_bench import cli

    sys.argv = ["auhead-bench", "run", config, "--out", out, "--cache-dir", cache]
    cli.main()


if __name__ == "__main__":
    main()
