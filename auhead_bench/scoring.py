"""The shared extraction stage and the metrics: every video decoded once, features cached.

Scoring walks clip by clip: the ground truth of a clip is decoded once and shared by every
method, seed and metric that needs it; each generated video is decoded once for all metrics;
each extractor runs once per video (its output cached by content). Per-clip scores are cached
too, so a resumed run recomputes nothing it had finished.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from auhead_bench import media
from auhead_bench.cache import Cache, content_key
from auhead_bench.errors import BenchError, MediaError, disk_full, is_disk_full, one_line
from auhead_bench.features import BUILTIN_FEATURES, FeatureError, FeatureStore, image_sha256
from auhead_bench.frames import DecodeError
from auhead_bench.metric import (
    ClipScore,
    ClipSkipped,
    DistributionMetric,
    Metric,
    NotComputed,
    PerClipMetric,
)
from auhead_bench.plan import Component
from auhead_bench.prepare import PreparedClip
from auhead_bench.records import ClipValue, MetricResult, PluginRef
from auhead_bench.views import ClipView, VideoView, read_only


@dataclass
class Scorable:
    """One generation to score: which clip, which seed, where the video is (None: failed)."""

    clip: PreparedClip
    seed: int
    path: Path | None
    content_sha256: str | None
    error: str | None = None


@dataclass
class Outcome:
    """One metric on one clip: a value, or None and the reason."""

    value: float | None
    reason: str | None
    info: dict[str, Any] = field(default_factory=dict)
    cacheable: bool = True


@dataclass
class Partial:
    """What one scoring pass over some clips folded into the mergeable distribution metrics
    (those that declare their state): per (record id, seed, metric id) the exported
    statistics, and the per-clip outcomes (reasons) of those metrics. A Ray feature task
    returns one; the driver absorbs them instead of folding the metrics again."""

    metric_ids: list[str]
    states: dict[tuple[str, int, str], dict[str, Any]]
    values: dict[str, dict[str, list[ClipValue]]]  # record id -> metric id -> clips


Loaded = tuple[VideoView, dict[str, FeatureError]]


class Scorer:
    """Scores the generations of several records, clip-major, and aggregates per record."""

    def __init__(
        self,
        metrics: list[Component],
        seeds: list[int],
        features: FeatureStore,
        cache: Cache,
        device: str,
    ):
        self.components = metrics
        self.seeds = seeds
        # A record's own seeds where they are fewer (a deterministic method: the first only).
        self.record_seeds: dict[str, list[int]] = {}
        self.features = features
        self.cache = cache
        self.metrics: list[tuple[Component, Metric]] = []
        self.not_computed: dict[str, str] = {}
        for component in metrics:
            metric = component.entry.cls(component.options)
            try:
                metric.setup(device)
            except NotComputed as exc:
                self.not_computed[component.id] = one_line(exc)
                continue
            self.metrics.append((component, metric))
        self.values: dict[str, dict[str, list[ClipValue]]] = {}
        self.states: dict[tuple[str, int, str], DistributionMetric] = {}
        # Metrics whose per-clip outcomes and statistics come from absorbed partials.
        self.absorbed: set[str] = set()

    def weights(self) -> dict[str, str]:
        weights: dict[str, str] = {}
        for _, metric in self.metrics:
            weights.update(metric.weights())
        return weights

    def extractor_specs(self) -> dict[str, dict[str, Any]]:
        return {
            ident: self.features.spec(ident)
            for component in self.components
            for ident in (*component.entry.cls.needs, *component.entry.cls.reference_needs)
            if ident not in BUILTIN_FEATURES
        }

    # ---- per clip --------------------------------------------------------------------------

    def score_clip(
        self, clip: PreparedClip, items: dict[str, list[Scorable]], advance: Callable[[], None]
    ) -> None:
        """Score every record's generations of one clip; the ground truth and the reference
        image are decoded (and their features loaded) once, on first use."""
        shared: dict[str, Loaded] = {}

        def ground_truth() -> Loaded:
            if "truth" not in shared:
                needs = {n for _, m in self.metrics if m.needs_ground_truth for n in m.needs}
                shared["truth"] = self.features.view(clip.clip.video, clip.content_sha256, needs)
            return shared["truth"]

        def reference() -> Loaded:
            if "reference" not in shared:
                needs = {n for _, m in self.metrics for n in m.reference_needs}
                path = Path(clip.clip.reference)
                keep.append(image_sha256(path))
                shared["reference"] = self.features.view(path, keep[-1], needs, is_image=True)
            return shared["reference"]

        keep = [clip.content_sha256]  # decoded once for every record and seed of the clip
        try:
            for record_id, scorables in items.items():
                for item in scorables:
                    self._score_item(record_id, item, ground_truth, reference)
                    self.features.release(keep=keep)
                    advance()
        finally:
            self.features.release()

    def _score_item(
        self,
        record_id: str,
        item: Scorable,
        ground_truth: Callable[[], Loaded],
        reference: Callable[[], Loaded],
    ) -> None:
        values = self.values.setdefault(record_id, {c.id: [] for c, _ in self.metrics})
        labels = item.clip.clip.labels()

        def put(metric_id: str, outcome: Outcome) -> None:
            values[metric_id].append(
                ClipValue(
                    clip_id=item.clip.id,
                    seed=item.seed,
                    value=outcome.value,
                    reason=outcome.reason,
                    info=outcome.info,
                    labels=labels,
                )
            )

        if item.path is None:
            for component, _ in self._scored_here():
                put(component.id, Outcome(None, f"generation failed: {item.error}"))
            return
        pending: list[tuple[Component, Metric, str | None]] = []
        for component, metric in self._scored_here():
            if isinstance(metric, PerClipMetric):
                key = self._score_key(component, metric, item)
                cached = self.cache.read_json("scores", key)
                if cached is not None:
                    put(component.id, Outcome(cached["value"], cached["reason"], cached["info"]))
                    continue
                pending.append((component, metric, key))
            else:
                pending.append((component, metric, None))
        if not pending:
            return
        needs = {n for _, m, _ in pending for n in m.needs}
        try:
            generated, gen_errors = self.features.view(item.path, item.content_sha256, needs)
            if needs & set(BUILTIN_FEATURES):
                generated.frame_count()  # decode now: an unusable video is reported here
            arrays, info = generation_outputs(item.path.parent)
        except MediaError as exc:
            for component, _, _ in pending:
                put(component.id, Outcome(None, f"generated video unusable: {one_line(exc)}"))
            return
        truth, truth_errors = None, {}
        if any(m.needs_ground_truth for _, m, _ in pending):
            truth, truth_errors = ground_truth()
        image, image_errors = None, {}
        if any(m.reference_needs for _, m, _ in pending):
            try:
                image, image_errors = reference()
            except MediaError as exc:  # an unreadable reference: every such metric says so
                image_errors = {
                    n: FeatureError(one_line(exc.message), False)
                    for _, m, _ in pending for n in m.reference_needs
                }
        sides = (
            ("generated", gen_errors, "needs"),
            ("ground truth", truth_errors, "needs"),
            ("reference image", image_errors, "reference_needs"),
        )
        for component, metric, key in pending:
            problems = [
                (side, errors[n])
                for side, errors, attribute in sides
                for n in getattr(metric, attribute)
                if n in errors
            ]
            if problems:
                outcome = Outcome(
                    None,
                    "; ".join(f"{side}: {e.message}" for side, e in problems),
                    cacheable=not any(e.transient for _, e in problems),
                )
            else:
                view = ClipView(
                    clip=item.clip.clip,
                    generated=generated,
                    ground_truth=truth if metric.needs_ground_truth else None,
                    reference=image if metric.reference_needs else None,
                    arrays=read_only(arrays),
                    info=MappingProxyType(info),
                )
                outcome = self._apply(record_id, metric, view, item)
            if key is not None and outcome.cacheable:
                self.cache.write_json(
                    "scores",
                    key,
                    {"value": outcome.value, "reason": outcome.reason, "info": outcome.info},
                    label=f"{component.id}/{item.clip.id}",
                )
            put(component.id, outcome)

    def _apply(self, record_id: str, metric: Metric, view: ClipView, item: Scorable) -> Outcome:
        """One clip through one metric. Skips (no face...) are cached; crashes are not."""
        try:
            if isinstance(metric, DistributionMetric):
                self._state(record_id, item.seed, metric).update(view)
                return Outcome(None, None, cacheable=False)
            score = metric.score(view)
        except DecodeError as exc:  # a video that stops decoding part-way
            return Outcome(None, f"video unusable: {one_line(exc)}")
        except (ClipSkipped, MediaError) as exc:
            return Outcome(None, one_line(exc))
        except Exception as exc:  # a metric bug on one clip must not end the run
            if is_disk_full(exc):
                raise disk_full(exc, self.cache.root, f"{metric.id} scores") from exc
            return Outcome(None, f"error: {type(exc).__name__}: {one_line(exc)}", cacheable=False)
        value, info = (score.value, score.info) if isinstance(score, ClipScore) else (score, {})
        if not np.isfinite(value):
            return Outcome(None, f"non-finite value {value}", info=info)
        return Outcome(float(value), None, info=info)

    def _state(self, record_id: str, seed: int, metric: DistributionMetric) -> DistributionMetric:
        """A fresh accumulator per (record, seed) sharing the set-up metric's models."""
        slot = (record_id, seed, metric.id)
        if slot not in self.states:
            self.states[slot] = metric.accumulator()
        return self.states[slot]

    def _scored_here(self) -> list[tuple[Component, Metric]]:
        return [(c, m) for c, m in self.metrics if c.id not in self.absorbed]

    # ---- partial statistics (parallel workers) -----------------------------------------------

    def export_partial(self) -> Partial:
        """The mergeable distribution metrics' statistics and per-clip outcomes so far, as
        picklable data; then forgets everything scored (per-clip scores are in the cache)."""
        ids = [c.id for c, m in self.metrics if isinstance(m, DistributionMetric) and m.mergeable]
        partial = Partial(
            metric_ids=ids,
            states={s: m.export_state() for s, m in self.states.items() if s[2] in ids},
            values={
                record_id: {i: by_metric[i] for i in ids if i in by_metric}
                for record_id, by_metric in self.values.items()
            },
        )
        self.values.clear()  # keep a long-lived worker's memory flat
        self.states.clear()
        return partial

    def absorb(self, partial: Partial) -> None:
        """Merge a partial (another pass over other clips) into this scorer. The metrics it
        covers are then left out of this scorer's own passes: absorb before scoring, and
        absorb the partials in clip order (per-clip outcomes are appended)."""
        metrics = {c.id: m for c, m in self.metrics}
        covered = [i for i in partial.metric_ids if i in metrics]
        self.absorbed.update(covered)
        for slot, exported in partial.states.items():
            record_id, seed, metric_id = slot
            if metric_id not in covered:
                continue
            metric = metrics[metric_id]
            assert isinstance(metric, DistributionMetric)
            part = metric.accumulator()
            part.import_state(exported)
            self._state(record_id, seed, metric).merge(part)
        for record_id, by_metric in partial.values.items():
            values = self.values.setdefault(record_id, {c.id: [] for c, _ in self.metrics})
            for metric_id, clip_values in by_metric.items():
                if metric_id in covered:
                    values[metric_id].extend(clip_values)

    def _score_key(self, component: Component, metric: Metric, item: Scorable) -> str:
        return content_key(
            kind="score",
            metric=component.id,
            protocol=metric.protocol(),
            weights=metric.weights(),
            extractors=[self.features.spec(n) for n in metric.needs if n not in BUILTIN_FEATURES],
            generated=item.content_sha256,
            # Label files are scored against (stage-1 evaluation): an edit must rescore.
            clip_inputs=item.clip.inputs_sha256 if item.clip.clip.au_labels else None,
            generation_arrays=_arrays_sha256(item.path.parent) if item.path else None,
            ground_truth=item.clip.content_sha256 if metric.needs_ground_truth else None,
            **self._reference_key(metric, item),
        )

    def _reference_key(self, metric: Metric, item: Scorable) -> dict[str, Any]:
        """The reference image's content and extractors, for metrics that read it (absent
        otherwise, so other metrics' keys are unchanged)."""
        if not metric.reference_needs:
            return {}
        return {
            "reference": image_sha256(Path(item.clip.clip.reference)),
            "reference_extractors": [
                self.features.spec(n) for n in metric.reference_needs
                if n not in BUILTIN_FEATURES
            ],
        }

    # ---- per record ------------------------------------------------------------------------

    def results(
        self, record_id: str, plugin_ref: Callable[[Any], PluginRef]
    ) -> dict[str, MetricResult]:
        """Every metric of one record, in the configured order."""
        values = self.values.get(record_id, {c.id: [] for c, _ in self.metrics})
        results: dict[str, MetricResult] = {}
        for component, metric in self.metrics:
            results[component.id] = self._aggregate(
                record_id, component, metric, values[component.id], plugin_ref
            )
        for component in self.components:
            if component.id in self.not_computed:
                results[component.id] = MetricResult(
                    metric_id=component.id,
                    higher_is_better=component.entry.cls.higher_is_better,
                    status="not_computed",
                    reason=self.not_computed[component.id],
                    options=component.options_json(),
                    protocol=component.entry.cls(component.options).protocol(),
                    plugin=plugin_ref(component.entry.plugin),
                )
        return {c.id: results[c.id] for c in self.components}

    def _aggregate(
        self,
        record_id: str,
        component: Component,
        metric: Metric,
        values: list[ClipValue],
        plugin_ref: Callable[[Any], PluginRef],
    ) -> MetricResult:
        """Mean over seeds of the per-seed values; per-clip values kept with their reasons."""
        per_seed: dict[str, float | None] = {}
        seed_info: dict[str, dict[str, Any]] = {}
        failures: list[str] = []
        for seed in self.record_seeds.get(record_id, self.seeds):
            if isinstance(metric, DistributionMetric):
                state = self.states.get((record_id, seed, metric.id))
                if state is not None:
                    seed_info[str(seed)] = state.summary()
                try:
                    per_seed[str(seed)] = float(state.compute()) if state else None
                except BenchError as exc:
                    per_seed[str(seed)] = None
                    failures.append(f"seed {seed}: {one_line(exc)}")
            else:
                scored = [v.value for v in values if v.seed == seed and v.value is not None]
                per_seed[str(seed)] = float(np.mean(scored)) if scored else None
        if isinstance(metric, DistributionMetric):
            # A distribution has no per-clip value: keep only the clips left out, with reasons.
            n = sum(v.reason is None for v in values)
            values = [v for v in values if v.reason is not None]
            skipped = len(values)
        else:
            n = sum(v.value is not None for v in values)
            skipped = len(values) - n
        finite = [v for v in per_seed.values() if v is not None]
        summary = summarise_reasons(values, n + skipped)
        reason = "; ".join(failures + ([summary] if summary else [])) or None
        common = dict(
            metric_id=component.id,
            higher_is_better=metric.higher_is_better,
            options=component.options_json(),  # the reproduce config re-runs with these
            protocol=metric.protocol(),
            plugin=plugin_ref(component.entry.plugin),
            n_skipped=skipped,
            per_seed=per_seed,
            per_seed_info=seed_info,
            per_clip=values,
        )
        if not finite:
            return MetricResult(
                status="failed", reason=reason or "no clip could be scored", n=0, **common
            )
        return MetricResult(status="ok", value=float(np.mean(finite)), n=n, reason=reason, **common)


def generation_outputs(entry: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and info a method returned with its video, from its cache entry."""
    arrays: dict[str, np.ndarray] = {}
    if (entry / "arrays.npz").is_file():
        with np.load(entry / "arrays.npz") as data:
            arrays = {name: data[name] for name in data.files}
    info: dict[str, Any] = {}
    if (entry / "meta.json").is_file():
        info = json.loads((entry / "meta.json").read_text()).get("info", {})
    return arrays, info


def _arrays_sha256(entry: Path) -> str | None:
    path = entry / "arrays.npz"
    return media.sha256_file(path) if path.is_file() else None


def summarise_reasons(values: list[ClipValue], total: int) -> str | None:
    """'no face found in any of N frames (3/50)': why clips were not scored, grouped."""
    reasons: dict[str, int] = {}
    for v in values:
        if v.reason:
            # Counts ("of the 50 frames") group as N; digits inside a name ("clip3") stay.
            short = re.sub(r"\b\d+(?:\.\d+)?\b", "N", v.reason.split(" -- ")[0])
            reasons[short] = reasons.get(short, 0) + 1
    if not reasons:
        return None
    return "; ".join(f"{reason} ({count}/{total})" for reason, count in sorted(reasons.items()))
