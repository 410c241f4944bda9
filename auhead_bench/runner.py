"""The runner: plan -> prepare -> generate -> features -> metrics -> records.

It runs everything in this process (the local executor), or hands preparation, generation
and features to Ray tasks (``auhead_bench.ray_executor``) and gathers from the cache.

Everything expensive goes through the content-addressed cache, and a record is written only
when its unit is complete, so a run killed at any moment resumes where it stopped and writes
the same records as one that never stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from auhead_bench import media, provenance
from auhead_bench.cache import DEFAULT_CACHE, Cache, content_key, write_json_atomic
from auhead_bench.clip import Clip
from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError, MediaError, disk_full, is_disk_full, one_line
from auhead_bench.method import Generation, Method
from auhead_bench.plan import Component, Plan, WorkUnit, make_plan
from auhead_bench.plugins import PluginInfo, Registry, get_registry
from auhead_bench.prepare import PreparedClip, prepare_clip
from auhead_bench.records import (
    ComponentSpec,
    GenerationResult,
    MetricResult,
    PluginRef,
    RunRecord,
    dump_record,
    load_record,
)
from auhead_bench.scoring import Features, Scorable, Scorer
from auhead_bench.table import write_tables

# A generation that overwrite: only-cache did not find: its clip is failed with this reason.
NOT_CACHED = "not in the cache (overwrite: only-cache)"


def plugin_ref(info: PluginInfo) -> PluginRef:
    return PluginRef(entry_point=info.name, distribution=info.distribution, version=info.version)


@dataclass
class _Generated:
    clip: PreparedClip
    seed: int
    result: GenerationResult
    path: Path | None
    cached: bool = False


class Runner:
    """Runs a validated plan on this machine, one unit after another."""

    def __init__(
        self,
        config: RunConfig,
        out_dir: Path,
        *,
        registry: Registry | None = None,
        config_path: Path | None = None,
        console: Console | None = None,
    ):
        self.config = config
        self.out_dir = Path(out_dir)
        self.registry = registry or get_registry()
        self.config_path = config_path
        self.console = console or Console(stderr=True)
        self.plan: Plan = make_plan(config, self.registry, config_path)
        self.cache = Cache(config.cache_dir or DEFAULT_CACHE)
        self.device = provenance.resolve_device(config.device)
        self._methods: dict[str, Method] = {}
        self._ready_methods: set[str] = set()
        self._regenerated: set[str] = set()  # generation keys made by this run
        self._fingerprints: dict[str, dict[str, Any]] = {}  # by record id
        self._datasets: dict[str, Any] = {}
        self._bad_clips: dict[str, dict[str, str]] = {}
        self.features = Features(self.registry, self.cache, self.device)

    # ---- the whole run -------------------------------------------------------------------

    def run(self) -> list[RunRecord]:
        """Every unit of the plan, as the config's ``overwrite`` policy says (see
        ``auhead_bench.config.OVERWRITE_POLICIES``); returns the records in plan order."""
        records_dir = self._check_out_dir()
        hook = self.registry.pm.hook
        hook.run_started(config=self.config, plan=self.plan)
        kept = self._kept_records(records_dir)
        pending = [u for u in self.plan.units if u.record_id not in kept]
        made = self._run_units(pending, records_dir) if pending else {}
        records = [kept.get(u.record_id) or made[u.record_id] for u in self.plan.units]
        write_tables(records, self.out_dir)
        write_json_atomic(self.out_dir / "run.json", self._manifest(records))
        hook.run_finished(out_dir=self.out_dir, records=records)
        return records

    def _run_units(self, units: list[WorkUnit], records_dir: Path) -> dict[str, RunRecord]:
        """Prepare, generate, score and write the records of ``units``; records by id."""
        needed = {dataset_key(u.dataset) for u in units}
        datasets = [d for d in self.plan.datasets if dataset_key(d) in needed]
        with self._progress() as progress:
            if self.config.executor == "ray":
                from auhead_bench.ray_executor import RayExecutor  # optional dependency

                with RayExecutor(self) as executor:
                    clips = {
                        dataset_key(d): self._prepare(d, progress, executor.prepare)
                        for d in datasets
                    }
                    generated = executor.run(units, clips, progress)
            else:
                clips = {dataset_key(d): self._prepare(d, progress) for d in datasets}
                generated = {
                    u.record_id: self._generate_unit(u, clips[dataset_key(u.dataset)], progress)
                    for u in units
                }
            scorer = self.scorer()
            self._score(scorer, units, clips, generated, progress)
        records = {}
        for unit in units:
            metrics = scorer.results(unit.record_id, plugin_ref)
            for metric_id, result in metrics.items():
                self.registry.pm.hook.metric_computed(
                    record_id=unit.record_id, metric_id=metric_id, result=result
                )
            record = self._record(
                unit, clips[dataset_key(unit.dataset)], generated[unit.record_id], metrics, scorer
            )
            write_json_atomic(records_dir / f"{record.record_id}.json", dump_record(record))
            records[unit.record_id] = record
        return records

    def _check_out_dir(self) -> Path:
        records_dir = self.out_dir / "records"
        try:
            records_dir.mkdir(parents=True, exist_ok=True)
            probe = records_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(exc, self.out_dir, "the output folder") from exc
            raise BenchError(
                f"output folder is not writable ({exc.strerror})",
                path=self.out_dir,
                fix="pass --out a folder you can write to",
            ) from None
        return records_dir

    def _kept_records(self, records_dir: Path) -> dict[str, RunRecord]:
        """With ``overwrite: never``, the records already in the output folder, by id."""
        if self.config.overwrite != "never":
            return {}
        kept = {}
        for unit in self.plan.units:
            path = records_dir / f"{unit.record_id}.json"
            if path.is_file():
                kept[unit.record_id] = load_record(path)
                self._say(
                    f"{unit.experiment} on {unit.dataset.id}: record kept ({path.name}; "
                    "overwrite: never)"
                )
        return kept

    def _manifest(self, records: list[RunRecord]) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "config": self.config.model_dump(mode="json"),
            "config_path": str(self.config_path) if self.config_path else None,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "records": [f"records/{r.record_id}.json" for r in records],
        }

    @contextmanager
    def _progress(self) -> Iterator[Progress]:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            disable=not self.console.is_terminal,
        )
        with progress:
            yield progress

    def _say(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)

    # ---- datasets --------------------------------------------------------------------------

    def _prepare(
        self,
        dataset: Component,
        progress: Progress,
        prepare_all: Callable[[list[Clip], Progress], list[PreparedClip | str]] | None = None,
    ) -> list[PreparedClip]:
        """The dataset's clips, normalised (cached); unreadable ones stop the run or are listed.

        ``prepare_all`` normalises a list of clips elsewhere (Ray tasks), returning for each
        clip its prepared form or why it could not be read; default: here, one by one.
        """
        instance = dataset.entry.cls(dataset.options, self.cache.root / "datasets")
        self._datasets[dataset_key(dataset)] = instance
        clips = instance.clips()
        limit = getattr(dataset.options, "max_clips", None)
        if limit is not None:
            clips = clips[:limit]
        if not clips:
            raise BenchError(f"dataset {dataset.id!r} has no clips", fix="check its root/options")
        ids = [c.id for c in clips]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise BenchError(f"dataset {dataset.id!r} has duplicate clip ids: {duplicates[:5]}")
        prepared: list[PreparedClip] = []
        bad = self._bad_clips.setdefault(dataset_key(dataset), {})
        if prepare_all is None:
            task = progress.add_task(f"prepare {dataset.id}", total=len(clips))
            outcomes = []
            for clip in clips:
                outcomes.append(prepare_or_reason(clip, self.cache))
                progress.advance(task)
                if isinstance(outcomes[-1], str) and not self.config.skip_bad_clips:
                    break  # stops the run below: no need to read the rest
        else:
            outcomes = prepare_all(clips, progress)
        for clip, outcome in zip(clips, outcomes, strict=False):
            if isinstance(outcome, PreparedClip):
                prepared.append(outcome)
                continue
            if not self.config.skip_bad_clips:
                raise BenchError(
                    f"{outcome} (clip {clip.id!r} of dataset {dataset.id!r}; "
                    "set skip_bad_clips: true to leave such clips out)"
                )
            bad[clip.id] = outcome
            self._say(f"[yellow]skipped clip {clip.id}: {outcome}")
        flags: dict[str, int] = {}
        for clip in prepared:
            for flag in clip.flags:
                flags[flag] = flags.get(flag, 0) + 1
        if flags:
            counts = ", ".join(f"{flag} ({n}/{len(prepared)})" for flag, n in sorted(flags.items()))
            self._say(f"[yellow]note: {dataset.id} clips flagged: {counts}")
        if not prepared:
            raise BenchError(f"dataset {dataset.id!r}: no clip could be read")
        return prepared

    # ---- one unit: method x dataset --------------------------------------------------------

    def _generate_unit(
        self, unit: WorkUnit, clips: list[PreparedClip], progress: Progress
    ) -> list[_Generated]:
        total = len(clips) * len(self.plan.seeds)
        task = progress.add_task(f"generate {unit.experiment} on {unit.dataset.id}", total=total)
        generated = self.generate_clips(unit, clips, lambda: progress.advance(task))
        self.report_generated(unit, generated)
        return generated

    def generate_clips(
        self, unit: WorkUnit, clips: list[PreparedClip], advance: Callable[[], None]
    ) -> list[_Generated]:
        """Every seed of ``clips`` through the unit's method (cached), seed-major."""
        method = self._method(unit.method)
        fingerprint = self.method_fingerprint(unit)
        generated: list[_Generated] = []
        for seed in self.plan.seeds:
            for clip in clips:
                generated.append(self._generate(unit, method, fingerprint, clip, seed))
                advance()
        return generated

    def report_generated(self, unit: WorkUnit, generated: list[_Generated]) -> None:
        label = f"{unit.experiment} on {unit.dataset.id}"
        total = len(generated)
        failed = sum(g.result.status == "failed" for g in generated)
        cached = sum(g.cached for g in generated)
        missing = sum(g.result.error == NOT_CACHED for g in generated)
        note = f", {missing} not in the cache" if missing else ""
        self._say(
            f"{label}: {total - failed}/{total} generated "
            f"({cached} from cache, {failed} failed{note})"
        )

    def _score(
        self,
        scorer: Scorer,
        units: list[WorkUnit],
        clips: dict[str, list[PreparedClip]],
        generated: dict[str, list[_Generated]],
        progress: Progress,
    ) -> None:
        """Clip by clip over every record, so each ground truth is decoded once."""
        total = sum(len(items) for items in generated.values())
        task = progress.add_task("score", total=total)
        for key, dataset_clips in clips.items():
            dataset_units = [u for u in units if dataset_key(u.dataset) == key]
            score_clips(
                scorer, dataset_units, dataset_clips, generated, lambda: progress.advance(task)
            )
        self._say(f"scored {total} generations with {len(self.plan.metrics)} metrics")

    def unit(self, record_id: str) -> WorkUnit:
        """The plan's unit with this record id (a Ray worker rebuilds the plan to find it)."""
        for unit in self.plan.units:
            if unit.record_id == record_id:
                return unit
        raise BenchError(f"no work unit {record_id!r} in the plan")

    def scorer(self) -> Scorer:
        """A scorer for the plan's metrics, set up on this runner's device."""
        return Scorer(self.plan.metrics, self.plan.seeds, self.features, self.cache, self.device)

    def method_fingerprint(self, unit: WorkUnit) -> dict[str, Any]:
        """The method's fingerprint, plus what its options' files contain (if anything):
        part of every generation key of the unit. Computed once per unit (it may hash)."""
        if unit.record_id not in self._fingerprints:
            method = self._method(unit.method)
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

    def _method(self, component: Component) -> Method:
        if component.id not in self._methods:
            instance = component.entry.cls()
            self._methods[component.id] = instance
        return self._methods[component.id]

    def _generate(
        self, unit: WorkUnit, method: Method, fingerprint: dict, clip: PreparedClip, seed: int
    ) -> _Generated:
        key = content_key(
            kind="generation",
            method=unit.method.id,
            fingerprint=fingerprint,
            options=unit.method.options_json(),
            seed=seed,
            clip=clip.inputs_sha256,
        )
        overwrite = self.config.overwrite
        fresh = overwrite == "always" and key not in self._regenerated  # once per run
        entry = None if fresh else self.cache.get("generations", key)
        cached = entry is not None
        if entry is None and overwrite == "only-cache":
            result = GenerationResult(
                clip_id=clip.id, seed=seed, status="failed", key=key, error=NOT_CACHED
            )
            return _Generated(clip, seed, result, None)
        if entry is None:
            try:
                entry = self._make_generation(unit, method, clip, seed, key, replace=fresh)
            except Exception as exc:  # a method may fail on one clip; the run goes on
                if is_disk_full(exc):  # e.g. in setup() fetching weights: stop, say why
                    raise disk_full(exc, self.cache.root, "a generation") from exc
                error = one_line(exc)
                self._say(f"[red]{unit.method.id} failed on clip {clip.id} (seed {seed}): {error}")
                result = GenerationResult(
                    clip_id=clip.id, seed=seed, status="failed", key=key, error=error
                )
                return _Generated(clip, seed, result, None)
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
        self.registry.pm.hook.clip_generated(
            method_id=unit.method.id,
            clip_id=clip.id,
            seed=seed,
            path=entry / "video.mp4",
            cached=cached,
        )
        return _Generated(clip, seed, result, entry / "video.mp4", cached)

    def _make_generation(
        self,
        unit: WorkUnit,
        method: Method,
        clip: PreparedClip,
        seed: int,
        key: str,
        replace: bool = False,
    ) -> Path:
        """Generate into a new cache entry; ``replace`` swaps out an existing one."""
        if unit.method.id not in self._ready_methods:
            method.setup(self.device)
            self._ready_methods.add(unit.method.id)
        label = f"{unit.method.id}/{clip.id}/{seed}"
        with self.cache.put("generations", key, label=label, replace=replace) as tmp:
            out_path = tmp / "video.mp4"
            cuda = self.device.startswith("cuda")
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats(self.device)
            start = time.perf_counter()
            generation = method.generate(clip.clip, unit.method.options, seed, out_path)
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated(self.device) if cuda else None
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
                "device": provenance.describe_device(self.device),
                "peak_memory_bytes": peak,
                "info": generation.info,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        self._regenerated.add(key)
        return self.cache.path("generations", key)

    # ---- the record ------------------------------------------------------------------------

    def _record(
        self,
        unit: WorkUnit,
        clips: list[PreparedClip],
        generated: list[_Generated],
        metrics: dict[str, MetricResult],
        scorer: Scorer,
    ) -> RunRecord:
        method = self._method(unit.method)
        plugins = {
            unit.method.entry.plugin.name: unit.method.entry.plugin,
            unit.dataset.entry.plugin.name: unit.dataset.entry.plugin,
        }
        extractors = scorer.extractor_specs()
        for component in self.plan.metrics:
            plugins[component.entry.plugin.name] = component.entry.plugin
        for ident in extractors:
            info = self.registry.get("extractor", ident).plugin
            plugins[info.name] = info
        weights: dict[str, str] = {}
        for spec in extractors.values():
            weights.update(spec["weights"])
        weights.update(method.weights())
        weights.update(scorer.weights())
        results = [g.result.model_copy(update={"flags": list(g.clip.flags)}) for g in generated]
        return RunRecord(
            record_id=unit.record_id,
            experiment=unit.experiment,
            method=ComponentSpec(
                id=unit.method.id,
                options=unit.method.options_json(),
                fingerprint=self.method_fingerprint(unit),
                plugin=plugin_ref(unit.method.entry.plugin),
            ),
            dataset=ComponentSpec(
                id=unit.dataset.id,
                options=unit.dataset.options_json(),
                fingerprint=self._datasets[dataset_key(unit.dataset)].fingerprint(),
                plugin=plugin_ref(unit.dataset.entry.plugin),
            ),
            seeds=self.plan.seeds,
            clip_ids=[c.id for c in clips],
            skipped_clips=dict(sorted(self._bad_clips.get(dataset_key(unit.dataset), {}).items())),
            generations=results,
            metrics=metrics,
            extractors=extractors,
            provenance=provenance.collect(
                self.device, [plugin_ref(p) for p in plugins.values()], weights
            ),
        )


def prepare_or_reason(clip: Clip, cache: Cache) -> PreparedClip | str:
    """The clip normalised (cached), or, if it cannot be read, why (one line)."""
    try:
        return prepare_clip(clip, cache)
    except MediaError as exc:
        return one_line(exc)


def score_clips(
    scorer: Scorer,
    units: list[WorkUnit],
    clips: list[PreparedClip],
    generated: dict[str, list[_Generated]],
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


def dataset_key(component: Component) -> str:
    """Tells datasets apart by id and options (the same id may appear with two splits)."""
    return component.id + json.dumps(component.options_json(), sort_keys=True)
