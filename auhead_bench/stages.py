"""The stages of a run, shared by every executor: prepare clips, generate, score.

The local runner calls them in its own process; a Ray task calls the same functions on its
chunk of clips. What a stage needs (registry, plan, cache, device, features) is one explicit
``RunContext``, built from the run's config: the runner holds one, and a Ray worker builds
its own from the same config, so the two compute the same thing by construction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from auhead_bench import media, provenance
from auhead_bench.cache import DEFAULT_CACHE, Cache, content_key
from auhead_bench.clip import Clip
from auhead_bench.config import DEFAULT_INTERMEDIATE, RunConfig
from auhead_bench.errors import BenchError, MediaError, disk_full, is_disk_full, one_line
from auhead_bench.features import FeatureStore, serving
from auhead_bench.method import Generation, Method
from auhead_bench.plan import Component, Plan, WorkUnit, make_plan
from auhead_bench.plugins import Registry
from auhead_bench.prepare import PreparedClip, prepare_clip
from auhead_bench.records import GenerationResult
from auhead_bench.scoring import Scorable, Scorer

# A generation that overwrite: only-cache did not find: its clip is failed with this reason.
NOT_CACHED = "not in the cache (overwrite: only-cache)"


@dataclass
class Generated:
    """One clip and seed through a method: the result recorded, and the video (None: failed)."""

    clip: PreparedClip
    seed: int
    result: GenerationResult
    path: Path | None
    cached: bool = False


class RunContext:
    """What every stage of one run needs, built from its config in any process.

    Also holds what a process learns once and reuses: method instances (models loaded once),
    their fingerprints, and the generation keys this run made (``overwrite: always``
    regenerates each once).
    """

    def __init__(
        self,
        config: RunConfig,
        registry: Registry,
        config_path: Path | None = None,
        console: Console | None = None,
    ):
        self.config = config
        self.registry = registry
        self.config_path = config_path
        self.console = console or Console(stderr=True)
        self.plan: Plan = make_plan(config, registry, config_path)
        self.cache = Cache(config.cache_dir or DEFAULT_CACHE)
        # A Ray driver need not have the GPUs its workers have: the executor checks the
        # cluster's resources instead.
        on_cluster = config.executor == "ray" and config.device.startswith("cuda")
        self.device = config.device if on_cluster else provenance.resolve_device(config.device)
        self.features = FeatureStore(
            registry,
            self.cache,
            self.device,
            chunk_frames=config.chunk_frames,
            buffer_bytes=config.frame_buffer_mb << 20,
        )
        self._methods: dict[str, Method] = {}
        self._ready_methods: set[str] = set()
        self._regenerated: set[str] = set()
        self._fingerprints: dict[str, dict[str, Any]] = {}  # by record id

    def say(self, message: str) -> None:
        # markup off: a method called "ours[gain=1]" is text, not a rich style tag
        self.console.print(message, highlight=False, soft_wrap=True, markup=False)

    def unit(self, record_id: str) -> WorkUnit:
        """The plan's unit with this record id (how a Ray task names its unit)."""
        for unit in self.plan.units:
            if unit.record_id == record_id:
                return unit
        raise BenchError(f"no work unit {record_id!r} in the plan")

    def scorer(self) -> Scorer:
        """A scorer for the plan's metrics, set up on this context's device."""
        scorer = Scorer(self.plan.metrics, self.plan.seeds, self.features, self.cache, self.device)
        scorer.record_seeds = {u.record_id: list(u.seeds) for u in self.plan.units}
        return scorer

    def method(self, component: Component) -> Method:
        """The process's one instance of a method (its models load once, on first use)."""
        if component.id not in self._methods:
            self._methods[component.id] = component.entry.cls()
        return self._methods[component.id]

    def method_fingerprint(self, unit: WorkUnit) -> dict[str, Any]:
        """The method's fingerprint, plus what its options' files contain (if anything):
        part of every generation key of the unit. Computed once per unit (it may hash)."""
        if unit.record_id not in self._fingerprints:
            method = self.method(unit.method)
            fingerprint = dict(method.fingerprint())
            try:
                content = method.content_fingerprint(unit.method.options)
            except BenchError:
                raise
            except Exception as exc:  # a plugin bug: name it rather than fail every clip
                raise BenchError(
                    f"method {unit.method.id!r}: content_fingerprint failed: "
                    f"{type(exc).__name__}: {one_line(exc)}",
                    fix="a bug in the method's plugin; report it to its authors",
                ) from exc
            if content:
                fingerprint["content"] = content
            self._fingerprints[unit.record_id] = fingerprint
        return self._fingerprints[unit.record_id]


# ---- prepare -------------------------------------------------------------------------------


def prepare_or_reason(
    clip: Clip, cache: Cache, intermediate: str = DEFAULT_INTERMEDIATE
) -> PreparedClip | str:
    """The clip normalised (cached) as ``intermediate`` says, or, if it cannot be read, why
    (one line)."""
    try:
        return prepare_clip(clip, cache, intermediate)
    except MediaError as exc:
        return one_line(exc)


def dataset_key(component: Component) -> str:
    """Tells datasets apart by id and options (the same id may appear with two splits)."""
    return component.id + json.dumps(component.options_json(), sort_keys=True)


# ---- generate ------------------------------------------------------------------------------


def generate_clips(
    context: RunContext, unit: WorkUnit, clips: list[PreparedClip], advance: Callable[[], None]
) -> list[Generated]:
    """Every seed of the unit (one for a deterministic method) of ``clips`` through the unit's
    method (cached), seed-major."""
    generated: list[Generated] = []
    for seed in unit.seeds:
        for clip in clips:
            generated.append(generate_clip(context, unit, clip, seed))
            advance()
    return generated


def generate_clip(context: RunContext, unit: WorkUnit, clip: PreparedClip, seed: int) -> Generated:
    """One clip and seed: from the cache, or made (as the config's ``overwrite`` says); a
    method failing on the clip fails only this generation."""
    method = context.method(unit.method)
    parts: dict[str, Any] = {}
    received = method.clip_fingerprint(clip.clip, unit.method.options)
    if received:  # only then: other methods' keys stay as they were
        parts["clip_received"] = received
    key = content_key(
        kind="generation",
        method=unit.method.id,
        fingerprint=context.method_fingerprint(unit),
        options=unit.method.options_json(),
        seed=seed,
        clip=clip.inputs_sha256,
        **parts,
    )
    overwrite = context.config.overwrite
    fresh = overwrite == "always" and key not in context._regenerated  # once per run
    entry = None if fresh else context.cache.get("generations", key)
    cached = entry is not None
    if entry is None and overwrite == "only-cache":
        result = GenerationResult(
            clip_id=clip.id, seed=seed, status="failed", key=key, error=NOT_CACHED
        )
        return Generated(clip, seed, result, None)
    if entry is None:
        try:
            entry = _make_generation(context, unit, method, clip, seed, key, replace=fresh)
        except Exception as exc:  # a method may fail on one clip; the run goes on
            if is_disk_full(exc):  # e.g. in setup() fetching weights: stop, say why
                raise disk_full(exc, context.cache.root, "a generation") from exc
            error = one_line(exc)
            context.say(f"{unit.experiment} failed on clip {clip.id} (seed {seed}): {error}")
            result = GenerationResult(
                clip_id=clip.id, seed=seed, status="failed", key=key, error=error
            )
            return Generated(clip, seed, result, None)
    meta = json.loads((entry / "meta.json").read_text())
    result = GenerationResult(
        clip_id=clip.id,
        seed=seed,
        status="ok",
        key=key,
        content_sha256=meta["content_sha256"],
        frames=meta["frames"],
        seconds=meta["seconds"],
        device=meta["device"],
        peak_memory_bytes=meta["peak_memory_bytes"],
        info=meta["info"],
    )
    context.registry.pm.hook.clip_generated(
        method_id=unit.method.id,
        clip_id=clip.id,
        seed=seed,
        path=entry / "video.mp4",
        cached=cached,
    )
    return Generated(clip, seed, result, entry / "video.mp4", cached)


def _make_generation(
    context: RunContext,
    unit: WorkUnit,
    method: Method,
    clip: PreparedClip,
    seed: int,
    key: str,
    replace: bool = False,
) -> Path:
    """Generate into a new cache entry; ``replace`` swaps out an existing one."""
    device = context.device
    if unit.method.id not in context._ready_methods:
        method.setup(device)
        context._ready_methods.add(unit.method.id)
    label = f"{unit.method.id}/{clip.id}/{seed}"
    with context.cache.put("generations", key, label=label, replace=replace) as tmp:
        out_path = tmp / "video.mp4"
        cuda = device.startswith("cuda")
        if cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        with serving(context.features):  # image_features: the reference tracked once
            generation = method.generate(clip.clip, unit.method.options, seed, out_path)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) if cuda else None
        generation = generation or Generation()
        if not out_path.is_file() or out_path.stat().st_size == 0:
            raise MediaError(
                "the method wrote no video",
                path=out_path,
                fix=f"{type(method).__name__}.generate must write an mp4 to out_path",
            )
        if generation.arrays:
            np.savez(tmp / "arrays.npz", **generation.arrays)
        meta = {
            "frames": media.count_frames(out_path),
            "content_sha256": media.sha256_file(out_path),
            "seconds": round(seconds, 4),
            "device": provenance.describe_device(device),
            "peak_memory_bytes": peak,
            "info": generation.info,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
    context._regenerated.add(key)
    return context.cache.path("generations", key)


def report_generated(context: RunContext, unit: WorkUnit, generated: list[Generated]) -> None:
    """One line per unit: how many clips were generated, cached, failed."""
    label = f"{unit.experiment} on {unit.dataset.id}"
    total = len(generated)
    failed = sum(g.result.status == "failed" for g in generated)
    cached = sum(g.cached for g in generated)
    missing = sum(g.result.error == NOT_CACHED for g in generated)
    note = f", {missing} not in the cache" if missing else ""
    if unit.deterministic and len(context.plan.seeds) > 1:
        note += f"; deterministic: seed {unit.seeds[0]} only"
    context.say(
        f"{label}: {total - failed}/{total} generated ({cached} from cache, {failed} failed{note})"
    )


# ---- score ---------------------------------------------------------------------------------


def score_clips(
    scorer: Scorer,
    units: list[WorkUnit],
    clips: list[PreparedClip],
    generated: dict[str, list[Generated]],
    advance: Callable[[], None],
) -> None:
    """Clip by clip over the units of one dataset, so each ground truth is decoded once."""
    for clip in clips:
        items = {
            unit.record_id: [
                Scorable(g.clip, g.seed, g.path, g.result.content_sha256, g.result.error)
                for g in generated[unit.record_id]
                if g.clip.id == clip.id
            ]
            for unit in units
        }
        scorer.score_clip(clip, items, advance)
