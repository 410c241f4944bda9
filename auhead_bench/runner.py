"""The runner: plan -> prepare -> generate -> features -> metrics -> records.

It runs the stages (``auhead_bench.stages``) in this process (the local executor), or hands
preparation, generation and features to Ray tasks (``auhead_bench.ray_executor``), merges
their distribution statistics and gathers the per-clip scores from the cache.

Everything expensive goes through the content-addressed cache, and a record is written only
when its unit is complete, so a run killed at any moment resumes where it stopped and writes
the same records as one that never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from auhead_bench import provenance
from auhead_bench.cache import write_json_atomic
from auhead_bench.clip import Clip
from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError, disk_full, is_disk_full
from auhead_bench.plan import Component, Plan, WorkUnit
from auhead_bench.plugins import PluginInfo, Registry, get_registry
from auhead_bench.prepare import PreparedClip, preparation
from auhead_bench.private_paths import PathScrubber
from auhead_bench.progress_lines import RunProgress
from auhead_bench.records import (
    ComponentSpec,
    MetricResult,
    PluginRef,
    RunRecord,
    dump_record,
    load_record,
)
from auhead_bench.scoring import Partial, Scorer
from auhead_bench.stages import (
    Generated,
    RunContext,
    dataset_key,
    generate_clips,
    prepare_or_reason,
    report_generated,
    score_clips,
)
from auhead_bench.table import write_tables


def plugin_ref(info: PluginInfo) -> PluginRef:
    return PluginRef(entry_point=info.name, distribution=info.distribution, version=info.version)


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
        self.context = RunContext(
            config, registry or get_registry(), config_path, console or Console(stderr=True)
        )
        self.config = config
        self.out_dir = Path(out_dir)
        self.registry = self.context.registry
        self.config_path = config_path
        self.console = self.context.console
        self.plan: Plan = self.context.plan
        self.cache = self.context.cache
        self.device = self.context.device
        self.features = self.context.features
        self._datasets: dict[str, Any] = {}
        self._bad_clips: dict[str, dict[str, str]] = {}
        # Records and run.json are what users publish: no absolute path of this machine in
        # them (see private_paths); relative to the config's folder, else the current one.
        self.scrubber = PathScrubber(
            Path(config_path).parent if config_path else Path.cwd(),
            [(self.cache.root, "$AUHEAD_BENCH_CACHE"), (self.out_dir, "$OUT")],
        )

    # ---- the whole run -------------------------------------------------------------------

    def run(self) -> list[RunRecord]:
        """Every unit of the plan, as the config's ``overwrite`` policy says (see
        ``auhead_bench.config.OVERWRITE_POLICIES``); returns the records in plan order."""
        records_dir = self._check_out_dir()
        self.cache.clean_tmp()  # killed runs' temp folders; a live run's are left alone
        hook = self.registry.pm.hook
        hook.run_started(config=self.config, plan=self.plan)
        kept = self._kept_records(records_dir)
        pending = [u for u in self.plan.units if u.record_id not in kept]
        made = self._run_units(pending, records_dir) if pending else {}
        records = [kept.get(u.record_id) or made[u.record_id] for u in self.plan.units]
        write_tables(records, self.out_dir)
        write_json_atomic(self.out_dir / "run.json", self.scrubber.data(self._manifest(records)))
        hook.run_finished(out_dir=self.out_dir, records=records)
        return records

    def _run_units(self, units: list[WorkUnit], records_dir: Path) -> dict[str, RunRecord]:
        """Prepare, generate, score and write the records of ``units``; records by id."""
        needed = {dataset_key(u.dataset) for u in units}
        datasets = [d for d in self.plan.datasets if dataset_key(d) in needed]
        partials: list[Partial] = []
        with self._progress() as progress:
            if self.config.executor == "ray":
                from auhead_bench.ray_executor import RayExecutor  # optional dependency

                with RayExecutor(self.context) as executor:
                    clips = {
                        dataset_key(d): self._prepare(d, progress, executor.prepare)
                        for d in datasets
                    }
                    generated, partials = executor.run(units, clips, progress)
            else:
                clips = {dataset_key(d): self._prepare(d, progress) for d in datasets}
                generated = {
                    u.record_id: self._generate_unit(u, clips[dataset_key(u.dataset)], progress)
                    for u in units
                }
            scorer = self.context.scorer()
            for partial in partials:  # Ray: statistics the feature tasks folded, in clip order
                scorer.absorb(partial)
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
        progress = RunProgress(self.console)  # bars on a terminal, timed lines elsewhere
        with progress:
            yield progress

    def _say(self, message: str) -> None:
        self.context.say(message)

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
        instance.intermediate = self.config.intermediate  # its face crops are encoded alike
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
                outcomes.append(prepare_or_reason(clip, self.cache, self.config.intermediate))
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
            self._say(f"skipped clip {clip.id}: {outcome}")
        flags: dict[str, int] = {}
        for clip in prepared:
            for flag in clip.flags:
                flags[flag] = flags.get(flag, 0) + 1
        if flags:
            counts = ", ".join(f"{flag} ({n}/{len(prepared)})" for flag, n in sorted(flags.items()))
            self._say(f"note: {dataset.id} clips flagged: {counts}")
        if not prepared:
            raise BenchError(f"dataset {dataset.id!r}: no clip could be read")
        return prepared

    # ---- one unit: method x dataset --------------------------------------------------------

    def _generate_unit(
        self, unit: WorkUnit, clips: list[PreparedClip], progress: Progress
    ) -> list[Generated]:
        total = len(clips) * len(unit.seeds)
        task = progress.add_task(f"generate {unit.experiment} on {unit.dataset.id}", total=total)
        generated = generate_clips(self.context, unit, clips, lambda: progress.advance(task))
        report_generated(self.context, unit, generated)
        return generated

    def _score(
        self,
        scorer: Scorer,
        units: list[WorkUnit],
        clips: dict[str, list[PreparedClip]],
        generated: dict[str, list[Generated]],
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

    # ---- the record ------------------------------------------------------------------------

    def _record(
        self,
        unit: WorkUnit,
        clips: list[PreparedClip],
        generated: list[Generated],
        metrics: dict[str, MetricResult],
        scorer: Scorer,
    ) -> RunRecord:
        method = self.context.method(unit.method)
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
        dataset = self._datasets[dataset_key(unit.dataset)]
        record = RunRecord(
            record_id=unit.record_id,
            experiment=unit.experiment,
            method=ComponentSpec(
                id=unit.method.id,
                options=unit.method.options_json(),
                fingerprint=self.context.method_fingerprint(unit),
                plugin=plugin_ref(unit.method.entry.plugin),
            ),
            dataset=ComponentSpec(
                id=unit.dataset.id,
                options=unit.dataset.options_json(),
                fingerprint=dataset.fingerprint(),
                plugin=plugin_ref(unit.dataset.entry.plugin),
            ),
            # The dataset says its framing; the run's encode is not its to override.
            preparation={**dataset.preparation(), **preparation(unit.intermediate)},
            seeds=list(unit.seeds),
            deterministic=unit.deterministic,
            clip_ids=[c.id for c in clips],
            skipped_clips=dict(sorted(self._bad_clips.get(dataset_key(unit.dataset), {}).items())),
            generations=results,
            metrics=metrics,
            extractors=extractors,
            provenance=provenance.collect(
                self.device, [plugin_ref(p) for p in plugins.values()], weights
            ),
        )
        return RunRecord.model_validate(self.scrubber.data(dump_record(record)))
