"""The local executor: plan -> prepare -> generate -> features -> metrics -> records.

Everything expensive goes through the content-addressed cache, and a record is written only
when its unit is complete, so a run killed at any moment resumes where it stopped and writes
the same records as one that never stopped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from auhead_bench import media, provenance
from auhead_bench.cache import DEFAULT_CACHE, Cache, content_key, write_json_atomic
from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError, MediaError, one_line
from auhead_bench.extractor import Extractor
from auhead_bench.features import VideoFeatures
from auhead_bench.method import Generation, Method
from auhead_bench.metric import (
    ClipScore,
    ClipSkipped,
    DistributionMetric,
    Metric,
    NotComputed,
    PerClipMetric,
)
from auhead_bench.plan import Component, Plan, WorkUnit, make_plan
from auhead_bench.plugins import PluginInfo, Registry, get_registry
from auhead_bench.prepare import PreparedClip, prepare_clip
from auhead_bench.records import (
    ClipValue,
    ComponentSpec,
    GenerationResult,
    MetricResult,
    PluginRef,
    RunRecord,
    dump_record,
)
from auhead_bench.table import write_tables

BUILTIN_FEATURES = ("frames", "audio")


def plugin_ref(info: PluginInfo) -> PluginRef:
    return PluginRef(entry_point=info.name, distribution=info.distribution, version=info.version)


@dataclass
class _Outcome:
    """One metric on one clip: a value, or None and the reason."""

    value: float | None
    reason: str | None
    info: dict[str, Any] = field(default_factory=dict)
    cacheable: bool = True


@dataclass
class _FeatureError:
    message: str
    transient: bool  # a crash (retried next run), not a property of the video (no face)


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
        self._extractors: dict[str, Extractor] = {}
        self._datasets: dict[str, Any] = {}
        self._ready_extractors: set[str] = set()
        self._bad_clips: dict[str, dict[str, str]] = {}
        self._metrics: list[tuple[Component, Metric]] | None = None
        self._not_computed: dict[str, str] = {}

    # ---- the whole run -------------------------------------------------------------------

    def run(self) -> list[RunRecord]:
        records_dir = self._check_out_dir()
        hook = self.registry.pm.hook
        hook.run_started(config=self.config, plan=self.plan)
        clips = {_key(d): self._prepare(d) for d in self.plan.datasets}
        records = []
        with self._progress() as progress:
            for unit in self.plan.units:
                record = self._run_unit(unit, clips[_key(unit.dataset)], progress)
                write_json_atomic(records_dir / f"{record.record_id}.json", dump_record(record))
                records.append(record)
        write_tables(records, self.out_dir)
        write_json_atomic(self.out_dir / "run.json", self._manifest(records))
        hook.run_finished(out_dir=self.out_dir, records=records)
        return records

    def _check_out_dir(self) -> Path:
        records_dir = self.out_dir / "records"
        try:
            records_dir.mkdir(parents=True, exist_ok=True)
            probe = records_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise BenchError(
                f"output folder is not writable ({exc.strerror})",
                path=self.out_dir,
                fix="pass --out a folder you can write to",
            ) from None
        return records_dir

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

    def _prepare(self, dataset: Component) -> list[PreparedClip]:
        instance = dataset.entry.cls(dataset.options, self.cache.root / "datasets")
        self._datasets[_key(dataset)] = instance
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
        bad = self._bad_clips.setdefault(_key(dataset), {})
        for clip in clips:
            try:
                prepared.append(prepare_clip(clip, self.cache))
            except MediaError as exc:
                if not self.config.skip_bad_clips:
                    raise BenchError(
                        f"{one_line(exc)} (clip {clip.id!r} of dataset {dataset.id!r}; "
                        "set skip_bad_clips: true to leave such clips out)"
                    ) from None
                bad[clip.id] = one_line(exc)
                self._say(f"[yellow]skipped clip {clip.id}: {one_line(exc)}")
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

    def _run_unit(self, unit: WorkUnit, clips: list[PreparedClip], progress: Progress) -> RunRecord:
        label = f"{unit.experiment} on {unit.dataset.id}"
        method = self._method(unit.method)
        fingerprint = method.fingerprint()
        total = len(clips) * len(self.plan.seeds)
        task = progress.add_task(f"generate {label}", total=total)
        generated: list[_Generated] = []
        for seed in self.plan.seeds:
            for clip in clips:
                generated.append(self._generate(unit, method, fingerprint, clip, seed))
                progress.advance(task)
        task = progress.add_task(f"score {label}", total=total)
        metrics = self._score(unit, generated, progress, task)
        failed = sum(g.result.status == "failed" for g in generated)
        cached = sum(g.cached for g in generated)
        self._say(
            f"{label}: {total - failed}/{total} generated ({cached} from cache, "
            f"{failed} failed), {len(metrics)} metrics"
        )
        for metric_id, result in metrics.items():
            self.registry.pm.hook.metric_computed(
                record_id=unit.record_id, metric_id=metric_id, result=result
            )
        return self._record(unit, fingerprint, clips, generated, metrics)

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
            clip=clip.content_sha256,
            reference=media.sha256_file(clip.clip.reference),
            audio=media.sha256_file(clip.clip.audio),
        )
        entry = self.cache.get("generations", key)
        cached = entry is not None
        if entry is None:
            try:
                entry = self._make_generation(unit, method, clip, seed, key)
            except Exception as exc:  # a method may fail on one clip; the run goes on
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
        self, unit: WorkUnit, method: Method, clip: PreparedClip, seed: int, key: str
    ) -> Path:
        if not getattr(method, "_auhead_ready", False):
            method.setup(self.device)
            method._auhead_ready = True  # type: ignore[attr-defined]
        with self.cache.put("generations", key, label=f"{unit.method.id}/{clip.id}/{seed}") as tmp:
            out_path = tmp / "video.mp4"
            start = time.perf_counter()
            generation = method.generate(clip.clip, unit.method.options, seed, out_path)
            seconds = time.perf_counter() - start
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
                "info": generation.info,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        return self.cache.path("generations", key)

    # ---- features and metrics --------------------------------------------------------------

    def _extractor(self, ident: str, ready: bool = False) -> Extractor:
        """The run's one instance of an extractor; ``ready`` also loads its models (once)."""
        if ident not in self._extractors:
            self._extractors[ident] = self.registry.get("extractor", ident).cls()
        instance = self._extractors[ident]
        if ready and ident not in self._ready_extractors:
            instance.setup(self.device)
            self._ready_extractors.add(ident)
        return instance

    def _extractor_key(self, ident: str) -> dict[str, Any]:
        ex = self._extractor(ident)
        return {"id": ident, "version": ex.version, "params": ex.params(), "weights": ex.weights()}

    def _features(self, path: Path, sha: str, needs: set[str]) -> tuple[VideoFeatures, dict]:
        """Decode once, run each needed extractor once (cached). Returns features and errors."""
        video = media.decode_video(path)
        features: dict[str, dict[str, np.ndarray]] = {}
        errors: dict[str, _FeatureError] = {}
        for ident in sorted(needs - set(BUILTIN_FEATURES)):
            key = content_key(kind="features", video=sha, extractor=self._extractor_key(ident))
            entry = self.cache.get("features", key)
            if entry is None:
                try:
                    arrays, error = self._extractor(ident, ready=True).extract(video), None
                except MediaError as exc:  # e.g. no face: an outcome, cached like features
                    arrays, error = {}, one_line(exc.message)
                except Exception as exc:  # a crash is not cached: the next run tries again
                    message = f"{ident} failed: {type(exc).__name__}: {one_line(exc)}"
                    errors[ident] = _FeatureError(message, True)
                    continue
                with self.cache.put("features", key, label=f"{ident}/{sha[:12]}") as tmp:
                    if error is None:
                        np.savez(tmp / "arrays.npz", **arrays)
                    else:
                        (tmp / "error.txt").write_text(error)
                entry = self.cache.path("features", key)
            if (entry / "error.txt").is_file():
                errors[ident] = _FeatureError((entry / "error.txt").read_text(), False)
            else:
                with np.load(entry / "arrays.npz") as data:
                    features[ident] = {name: data[name] for name in data.files}
        return VideoFeatures(video=video, content_sha256=sha, features=features), errors

    def _metric_instances(self) -> list[tuple[Component, Metric]]:
        """Each metric built and set up once per run; those that cannot run are noted."""
        if self._metrics is None:
            self._metrics = []
            for component in self.plan.metrics:
                metric = component.entry.cls(component.options)
                try:
                    metric.setup(self.device)
                except NotComputed as exc:
                    self._not_computed[component.id] = one_line(exc)
                    self._say(f"[yellow]{component.id} not computed: {one_line(exc)}")
                    continue
                self._metrics.append((component, metric))
        return self._metrics

    def _score(
        self, unit: WorkUnit, generated: list[_Generated], progress: Progress, task: Any
    ) -> dict[str, MetricResult]:
        metrics = self._metric_instances()
        per_clip: dict[str, list[ClipValue]] = {c.id: [] for c, _ in metrics}
        per_seed: dict[str, dict[str, float | None]] = {c.id: {} for c, _ in metrics}
        failures: dict[str, list[str]] = {c.id: [] for c, _ in metrics}
        gt_cache: dict[str, tuple[VideoFeatures, dict]] = {}
        for seed in self.plan.seeds:
            for _, metric in metrics:
                if isinstance(metric, DistributionMetric):
                    metric.reset()
            for item in (g for g in generated if g.seed == seed):
                self._score_clip(item, metrics, per_clip, gt_cache)
                progress.advance(task)
            for component, metric in metrics:
                values = [v for v in per_clip[component.id] if v.seed == seed]
                if isinstance(metric, DistributionMetric):
                    try:
                        per_seed[component.id][str(seed)] = float(metric.compute())
                    except BenchError as exc:
                        per_seed[component.id][str(seed)] = None
                        failures[component.id].append(f"seed {seed}: {one_line(exc)}")
                else:
                    scored = [v.value for v in values if v.value is not None]
                    per_seed[component.id][str(seed)] = float(np.mean(scored)) if scored else None
        results = {
            component.id: self._aggregate(
                component,
                metric,
                per_clip[component.id],
                per_seed[component.id],
                failures[component.id],
            )
            for component, metric in metrics
        }
        for component in self.plan.metrics:
            if component.id in self._not_computed:
                results[component.id] = self._metric_result(
                    component,
                    component.entry.cls(component.options),
                    status="not_computed",
                    reason=self._not_computed[component.id],
                )
        return {c.id: results[c.id] for c in self.plan.metrics}

    def _score_clip(
        self,
        item: _Generated,
        metrics: list[tuple[Component, Metric]],
        per_clip: dict[str, list[ClipValue]],
        gt_cache: dict[str, tuple[VideoFeatures, dict]],
    ) -> None:
        labels = item.clip.clip.labels()

        def put(metric_id: str, value: float | None, reason: str | None, info=None) -> None:
            per_clip[metric_id].append(
                ClipValue(
                    clip_id=item.clip.id,
                    seed=item.seed,
                    value=value,
                    reason=reason,
                    info=info or {},
                    labels=labels,
                )
            )

        if item.path is None:
            for component, _ in metrics:
                put(component.id, None, f"generation failed: {item.result.error}")
            return
        gen_sha = item.result.content_sha256
        assert gen_sha is not None
        pending: list[tuple[Component, Metric, str | None]] = []
        for component, metric in metrics:
            if isinstance(metric, PerClipMetric):
                key = self._score_key(component, metric, gen_sha, item.clip.content_sha256)
                cached = self.cache.read_json("scores", key)
                if cached is not None:
                    put(component.id, cached["value"], cached["reason"], cached["info"])
                    continue
                pending.append((component, metric, key))
            else:
                pending.append((component, metric, None))
        if not pending:
            return
        needs = {n for _, m, _ in pending for n in m.needs}
        try:
            generated, gen_errors = self._features(item.path, gen_sha, needs)
        except MediaError as exc:
            for component, _, _ in pending:
                put(component.id, None, f"generated video unusable: {one_line(exc)}")
            return
        gt_needs = {n for _, m, _ in pending if m.needs_ground_truth for n in m.needs}
        ground_truth, gt_errors = None, {}
        if gt_needs:
            if item.clip.id not in gt_cache:
                gt_cache.clear()  # keep one decoded ground truth in memory at a time
                gt_cache[item.clip.id] = self._features(
                    item.clip.clip.video, item.clip.content_sha256, gt_needs
                )
            ground_truth, gt_errors = gt_cache[item.clip.id]
        for component, metric, key in pending:
            problems = [
                (side, errors[n])
                for side, errors in (("generated", gen_errors), ("ground truth", gt_errors))
                for n in metric.needs
                if n in errors
            ]
            if problems:
                outcome = _Outcome(
                    None,
                    "; ".join(f"{side}: {e.message}" for side, e in problems),
                    cacheable=not any(e.transient for _, e in problems),
                )
            else:
                outcome = self._apply(metric, generated, ground_truth, item)
            if key is not None and outcome.cacheable:
                self.cache.write_json(
                    "scores",
                    key,
                    {"value": outcome.value, "reason": outcome.reason, "info": outcome.info},
                    label=f"{component.id}/{item.clip.id}",
                )
            put(component.id, outcome.value, outcome.reason, outcome.info)

    def _apply(
        self,
        metric: Metric,
        generated: VideoFeatures,
        ground_truth: VideoFeatures | None,
        item: _Generated,
    ) -> _Outcome:
        """One clip through one metric. Skips (no face...) are cached; crashes are not."""
        try:
            if isinstance(metric, DistributionMetric):
                metric.update(generated, ground_truth, item.clip.clip)
                return _Outcome(None, None, cacheable=False)
            score = metric.score(generated, ground_truth, item.clip.clip)
        except (ClipSkipped, MediaError) as exc:
            return _Outcome(None, one_line(exc))
        except Exception as exc:  # a metric bug on one clip must not end the run
            return _Outcome(None, f"error: {type(exc).__name__}: {one_line(exc)}", cacheable=False)
        value, info = (score.value, score.info) if isinstance(score, ClipScore) else (score, {})
        if not np.isfinite(value):
            return _Outcome(None, f"non-finite value {value}", info=info)
        return _Outcome(float(value), None, info=info)

    def _score_key(self, component: Component, metric: Metric, gen_sha: str, gt_sha: str) -> str:
        return content_key(
            kind="score",
            metric=component.id,
            protocol=metric.protocol(),
            weights=metric.weights(),
            extractors=[self._extractor_key(n) for n in metric.needs if n not in BUILTIN_FEATURES],
            generated=gen_sha,
            ground_truth=gt_sha if metric.needs_ground_truth else None,
        )

    def _metric_result(self, component: Component, metric: Metric, **fields: Any) -> MetricResult:
        return MetricResult(
            metric_id=component.id,
            higher_is_better=metric.higher_is_better,
            protocol=metric.protocol(),
            plugin=plugin_ref(component.entry.plugin),
            **fields,
        )

    def _aggregate(
        self,
        component: Component,
        metric: Metric,
        values: list[ClipValue],
        per_seed: dict[str, float | None],
        failures: list[str],
    ) -> MetricResult:
        """Mean over seeds of the per-seed values; per-clip values kept with their reasons."""
        if isinstance(metric, DistributionMetric):
            # A distribution has no per-clip value: keep only the clips left out, with reasons.
            n = sum(v.reason is None for v in values)
            values = [v for v in values if v.reason is not None]
            skipped = len(values)
        else:
            n = sum(v.value is not None for v in values)
            skipped = len(values) - n
        finite = [v for v in per_seed.values() if v is not None]
        summary = _summarise_reasons(values, n + skipped)
        reason = "; ".join(failures + ([summary] if summary else [])) or None
        if not finite:
            return self._metric_result(
                component,
                metric,
                status="failed",
                reason=reason or "no clip could be scored",
                n=0,
                n_skipped=skipped,
                per_seed=per_seed,
                per_clip=values,
            )
        return self._metric_result(
            component,
            metric,
            status="ok",
            value=float(np.mean(finite)),
            n=n,
            n_skipped=skipped,
            per_seed=per_seed,
            per_clip=values,
            reason=reason,
        )

    # ---- the record ------------------------------------------------------------------------

    def _record(
        self,
        unit: WorkUnit,
        fingerprint: dict,
        clips: list[PreparedClip],
        generated: list[_Generated],
        metrics: dict[str, MetricResult],
    ) -> RunRecord:
        plugins = {
            unit.method.entry.plugin.name: unit.method.entry.plugin,
            unit.dataset.entry.plugin.name: unit.dataset.entry.plugin,
        }
        for component in self.plan.metrics:
            plugins[component.entry.plugin.name] = component.entry.plugin
            for need in component.entry.cls.needs:
                if need not in BUILTIN_FEATURES:
                    info = self.registry.get("extractor", need).plugin
                    plugins[info.name] = info
        extractors = {
            ident: self._extractor_key(ident)
            for component in self.plan.metrics
            for ident in component.entry.cls.needs
            if ident not in BUILTIN_FEATURES and ident in self._extractors
        }
        weights: dict[str, str] = {}
        for spec in extractors.values():
            weights.update(spec["weights"])
        weights.update(self._method(unit.method).weights())
        for _, metric in self._metric_instances():
            weights.update(metric.weights())
        for item in generated:
            item.result.flags = list(item.clip.flags)
        return RunRecord(
            record_id=unit.record_id,
            experiment=unit.experiment,
            method=ComponentSpec(
                id=unit.method.id,
                options=unit.method.options_json(),
                fingerprint=fingerprint,
                plugin=plugin_ref(unit.method.entry.plugin),
            ),
            dataset=ComponentSpec(
                id=unit.dataset.id,
                options=unit.dataset.options_json(),
                fingerprint=self._datasets[_key(unit.dataset)].fingerprint(),
                plugin=plugin_ref(unit.dataset.entry.plugin),
            ),
            seeds=self.plan.seeds,
            clip_ids=[c.id for c in clips],
            skipped_clips=dict(sorted(self._bad_clips.get(_key(unit.dataset), {}).items())),
            generations=[g.result for g in generated],
            metrics=metrics,
            extractors=extractors,
            provenance=provenance.collect(
                self.device, [plugin_ref(p) for p in plugins.values()], weights
            ),
        )


def _key(component: Component) -> str:
    return component.id + json.dumps(component.options_json(), sort_keys=True)


def _summarise_reasons(values: list[ClipValue], total: int) -> str | None:
    """'no face found (3/50)'-style summary of why clips were not scored."""
    reasons: dict[str, int] = {}
    for v in values:
        if v.reason:
            short = re.sub(r"\d+", "N", v.reason.split(" -- ")[0])  # "in any of N frames"
            reasons[short] = reasons.get(short, 0) + 1
    if not reasons:
        return None
    return "; ".join(f"{reason} ({count}/{total})" for reason, count in sorted(reasons.items()))
