"""Synthetic run records built in memory: fast test fixtures and a way to preview the site.

They go through the real schema (``RunRecord``) and keep the runner's invariants (value = mean
of per-seed values, per-seed value = mean of that seed's scored clips), so anything that
accepts them accepts real records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from auhead_bench.records import (
    ClipValue,
    ComponentSpec,
    GenerationResult,
    MetricResult,
    PluginRef,
    Provenance,
    RunRecord,
)

PLUGIN = PluginRef(entry_point="synthetic", distribution="auhead-bench", version="0.1.0")

# clip id -> labels; values per clip are given in this order
CLIPS: dict[str, dict[str, Any]] = {
    f"c{i:02d}": {
        "identity": f"id{i % 3}",
        "emotion": ("happy", "sad", "angry", "neutral")[i % 4],
        "intensity": 1 + i % 3,
    }
    for i in range(12)
}


def provenance(device: str = "cpu (x86_64)") -> Provenance:
    return Provenance(
        auhead_bench="0.1.0",
        git_commit="0123456789abcdef0123456789abcdef01234567",
        git_dirty=False,
        python="3.11.7",
        platform="Linux-x86_64",
        device=device,
        packages={"auhead-bench": "0.1.0", "numpy": "2.4.6"},
        plugins=[PLUGIN],
        weights={},
    )


def metric(
    metric_id: str,
    values: Mapping[int, Sequence[float | None]] | None,
    *,
    higher_is_better: bool = True,
    clips: Mapping[str, Mapping[str, Any]] | None = None,
    status: str = "ok",
    reason: str | None = None,
    distribution: Mapping[int, float] | None = None,
) -> MetricResult:
    """A metric from per-seed lists of per-clip values (None: clip not scored).

    ``distribution`` gives per-seed values of a distribution metric (no per-clip values).
    ``status`` other than ok makes a not_computed/failed result with ``reason``.
    """
    clips = clips or CLIPS
    ids = list(clips)
    if status != "ok":
        return MetricResult(
            metric_id=metric_id,
            higher_is_better=higher_is_better,
            status=status,  # type: ignore[arg-type]
            reason=reason,
        )
    if distribution is not None:
        per_seed = {str(s): float(v) for s, v in distribution.items()}
        return MetricResult(
            metric_id=metric_id,
            higher_is_better=higher_is_better,
            status="ok",
            value=sum(per_seed.values()) / len(per_seed),
            n=len(ids) * len(per_seed),
            per_seed=per_seed,
            reason=reason,
        )
    per_clip: list[ClipValue] = []
    per_seed_values: dict[str, float | None] = {}
    n = skipped = 0
    for seed, seed_values in (values or {}).items():
        scored = []
        for clip_id, value in zip(ids, seed_values, strict=False):
            per_clip.append(
                ClipValue(
                    clip_id=clip_id,
                    seed=seed,
                    value=value,
                    reason=None if value is not None else (reason or "no face found"),
                    labels=dict(clips[clip_id]),
                )
            )
            if value is None:
                skipped += 1
            else:
                scored.append(value)
                n += 1
        per_seed_values[str(seed)] = sum(scored) / len(scored) if scored else None
    finite = [v for v in per_seed_values.values() if v is not None and math.isfinite(v)]
    return MetricResult(
        metric_id=metric_id,
        higher_is_better=higher_is_better,
        status="ok" if finite else "failed",
        value=sum(finite) / len(finite) if finite else None,
        n=n,
        n_skipped=skipped,
        reason=reason if skipped or not finite else None,
        per_seed=per_seed_values,
        per_clip=per_clip,
    )


def record(
    experiment: str,
    metrics: Sequence[MetricResult],
    *,
    method: str | None = None,
    options: Mapping[str, Any] | None = None,
    dataset: str = "synthetic",
    seeds: Sequence[int] = (0,),
    clips: Mapping[str, Mapping[str, Any]] | None = None,
    seconds: float | None = 0.5,
    frames: int = 50,
    info: Mapping[str, Any] | None = None,
    record_id: str | None = None,
) -> RunRecord:
    """A complete record: every clip generated once per seed with the given cost."""
    clips = clips or CLIPS
    method = method or experiment.split("[")[0]
    return RunRecord(
        record_id=record_id or f"{experiment}__{dataset}",
        experiment=experiment,
        method=ComponentSpec(id=method, options=dict(options or {}), plugin=PLUGIN),
        dataset=ComponentSpec(id=dataset, plugin=PLUGIN),
        seeds=list(seeds),
        clip_ids=list(clips),
        generations=[
            GenerationResult(
                clip_id=clip_id,
                seed=seed,
                status="ok",
                key=f"{experiment}-{clip_id}-{seed}",
                frames=frames,
                seconds=seconds,
                info=dict(info or {}),
            )
            for seed in seeds
            for clip_id in clips
        ],
        metrics={m.metric_id: m for m in metrics},
        provenance=provenance(),
    )


# ---- hostile files (issue 14): what a results folder must survive ---------------------------


def hostile_files(folder) -> dict[str, str]:
    """Write hostile ``*.json`` entries into ``folder``; file name -> a word its reason has.

    The FIFO gets a writer thread that unblocks a reader (so code that opens FIFOs fails a
    test instead of hanging it); ``release_fifos`` ends that thread.
    """
    import json
    import os
    import threading

    from auhead_bench.records import dump_record

    folder.mkdir(parents=True, exist_ok=True)
    fifo = folder / "r.json"
    os.mkfifo(fifo)

    def writer() -> None:
        try:
            with open(fifo, "w") as handle:  # blocks until someone opens the FIFO to read
                handle.write("")
        except OSError:
            pass

    threading.Thread(target=writer, daemon=True).start()
    (folder / "x.json").mkdir()
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    good = dump_record(record("bigint", [metric("m", {0: [1.0] * 12})]))
    text = json.dumps(good).replace('"seeds": [0]', '"seeds": [' + "9" * 5001 + "]")
    (folder / "bigint.json").write_text(text)
    nan = dump_record(record("nan", [metric("m", {0: [1.0] * 12})]))
    (folder / "nan.json").write_text(json.dumps(nan).replace('"value": 1.0', '"value": NaN', 1))
    inf = dump_record(record("inf", [metric("m", {0: [1.0] * 12})]))
    (folder / "inf.json").write_text(json.dumps(inf).replace('"value": 1.0', '"value": 1e999', 1))
    return {
        "r.json": "FIFO",
        "x.json": "folder",
        "deep.json": "nested deeper",
        "bigint.json": "digits",
        "nan.json": "NaN",
        "inf.json": "1e999",
    }


def release_fifos(folder) -> None:
    """Open each FIFO in ``folder`` without blocking, so its writer thread can finish."""
    import os
    import stat

    for path in folder.iterdir():
        if stat.S_ISFIFO(os.lstat(path).st_mode):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
