"""The Ray executor: generation and feature work as Ray tasks, one per chunk of clips.

Ray schedules, retries tasks whose worker died, and places them by the resources each
method and extractor declares; nothing here is a scheduler of its own. Tasks share the run's
cache (on a cluster: a folder every node mounts) and run the local executor's own stages
(``auhead_bench.stages``) on their chunk, with a ``RunContext`` rebuilt from the run's config:

- a preparation task per chunk of a dataset's clips: normalised into the cache;
- a generation task per (work unit, chunk of clips): every seed of those clips;
- a feature task per (dataset, chunk of clips), started when the generation tasks of its
  chunk are done: every extractor on every video of the chunk, the per-clip scores, and the
  chunk's partial statistics of the distribution metrics, which it returns.

The driver merges the partial statistics and runs the local scoring pass for the per-clip
metrics, which finds every feature and score in the cache (no video is decoded). A
distribution metric that declares no state (no ``add_state``) cannot be merged: the driver
folds it again from the cached features. A task killed mid-way leaves no half entry (atomic
renames), and Ray runs it again.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from auhead_bench.clip import Clip
from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError, one_line
from auhead_bench.features import extractor_order
from auhead_bench.plan import WorkUnit
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.prepare import PreparedClip
from auhead_bench.resources import Resources, combined
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

# Worker-death retries per task (Ray's own default); a BenchError raised by a task (disk
# full, bad weights) is not retried: it would fail the same way again.
MAX_RETRIES = 3
# Environment a worker on another node needs to find the same weights as the driver.
FORWARDED_ENV = ("AUHEAD_BENCH_WEIGHTS", "AUHEAD_BENCH_CACHE", "HF_HOME", "TORCH_HOME")


@dataclass
class Job:
    """Everything a worker needs to rebuild the driver's plan: sent once, shared by tasks."""

    token: str
    config: RunConfig  # cache_dir made absolute
    config_path: Path | None
    added: list[tuple[str, type, PluginInfo]]  # classes the driver registered directly
    use_gpu: bool


class RayExecutor:
    """Runs the generation and feature work of a run's units on a Ray cluster."""

    def __init__(self, context: RunContext):
        self.context = context
        self.config = context.config
        self._started = False

    def __enter__(self) -> RayExecutor:
        """Join (or start) the cluster; a cluster started here is shut down on exit."""
        ray = self._ray = _import_ray()
        self._started = _connect(ray, self.config.ray_address)
        try:
            self.job = self._job(ray)
            self._job_ref = ray.put(self.job)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def prepare(self, clips: list[Clip], progress: Progress) -> list[PreparedClip | str]:
        """Normalise ``clips`` in tasks of ``clips_per_task``; per clip, the prepared clip or
        why it could not be read, in order."""
        ray = self._ray
        prepare = _remote(ray, _prepare_task)
        options = self._options(Resources(), False, "clip preparation")
        refs = [
            prepare.options(**options, name=f"prepare #{index}").remote(self._job_ref, chunk)
            for index, chunk in enumerate(_chunks(clips, self.config.clips_per_task))
        ]
        self._wait(ray, refs, "prepare (ray)", progress)
        return [outcome for ref in refs for outcome in _get(ray, ref)]

    def run(
        self,
        units: list[WorkUnit],
        clips: dict[str, list[PreparedClip]],
        progress: Progress,
    ) -> tuple[dict[str, list[Generated]], list[Partial]]:
        """Generation results by record id, in the local executor's (seed-major) order, and
        the feature tasks' partial statistics, in clip order (for ``Scorer.absorb``)."""
        ray, job, job_ref = self._ray, self.job, self._job_ref
        generate = _remote(ray, _generate_task)
        features = _remote(ray, _features_task)
        size = self.config.clips_per_task
        generation_refs: dict[tuple[str, int], Any] = {}
        for unit in units:
            needs = unit.method.entry.cls.resources
            options = self._options(needs, job.use_gpu, f"method {unit.method.id!r}")
            device = _device(job, needs)
            for index, chunk in enumerate(_chunks(clips[dataset_key(unit.dataset)], size)):
                generation_refs[(unit.record_id, index)] = generate.options(
                    **options, name=f"generate {unit.method.id} #{index}"
                ).remote(job_ref, device, unit.record_id, chunk)
        feature_refs = []
        needs = self._extractor_resources()
        extractors = self._options(needs, job.use_gpu, "the metrics' extractors")
        device = _device(job, needs)
        for key, dataset_clips in clips.items():
            dataset_units = [u.record_id for u in units if dataset_key(u.dataset) == key]
            for index, chunk in enumerate(_chunks(dataset_clips, size)):
                after = [generation_refs[(r, index)] for r in dataset_units]
                feature_refs.append(
                    features.options(**extractors, name=f"features #{index}").remote(
                        job_ref, device, dataset_units, chunk, *after
                    )
                )
        self._wait(ray, list(generation_refs.values()), "generate (ray)", progress)
        chunks = {k: ray.get(ref) for k, ref in generation_refs.items()}
        self._wait(ray, feature_refs, "features (ray)", progress)
        partials = [ray.get(ref) for ref in feature_refs]
        generated: dict[str, list[Generated]] = {}
        seeds = self.context.plan.seeds
        for unit in units:
            order = {c.id: i for i, c in enumerate(clips[dataset_key(unit.dataset)])}
            items = [g for (rid, _), part in sorted(chunks.items()) if rid == unit.record_id
                     for g in part]
            items.sort(key=lambda g: (seeds.index(g.seed), order[g.clip.id]))
            generated[unit.record_id] = items
            report_generated(self.context, unit, items)
        return generated, partials

    # ---- set-up ----------------------------------------------------------------------------

    def _job(self, ray: Any) -> Job:
        device = self.config.device
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if device == "cpu":
            use_gpu = False
        elif device == "auto":
            use_gpu = gpus > 0
        elif gpus == 0:
            raise BenchError(
                f"device {device!r} asks for CUDA but the Ray cluster has no GPU",
                fix="use --device auto or cpu, or add GPU nodes to the cluster",
            )
        else:
            use_gpu = True
        config = self.config.model_copy(update={"cache_dir": self.context.cache.root.resolve()})
        added = [(e.kind, e.cls, e.plugin) for e in self.context.registry.added_directly()]
        return Job(uuid.uuid4().hex, config, self.context.config_path, added, use_gpu)

    def _extractor_resources(self) -> Resources:
        """One feature task loads every extractor the metrics need (and those upstream of
        them), one after another."""
        needed = [
            n for m in self.context.plan.metrics
            for n in (*m.entry.cls.needs, *m.entry.cls.reference_needs)
        ]
        registry = self.context.registry
        return combined(
            registry.get("extractor", n).cls.resources for n in extractor_order(registry, needed)
        )

    def _options(self, resources: Resources, use_gpu: bool, what: str) -> dict[str, Any]:
        """Ray options for a task; an error now if no node could ever run it (Ray would
        leave it pending forever)."""
        import ray

        options = resources.ray_options(use_gpu)
        wanted = {"CPU": options["num_cpus"], "GPU": options["num_gpus"]}
        wanted["memory"] = options.get("memory", 0)
        for node in ray.nodes():
            have = node.get("Resources", {})
            if node.get("Alive") and all(have.get(k, 0) >= v for k, v in wanted.items() if v):
                return options
        raise BenchError(
            f"{what} asks for {resources.describe(use_gpu)} per task, more than any node of "
            "the Ray cluster has",
            fix="add a node that large, or lower the class's `resources` (auhead_bench.Resources)",
        )

    def _wait(self, ray: Any, refs: list[Any], label: str, progress: Progress) -> None:
        """Wait for every task, advancing a progress bar; a failed task stops the run."""
        task = progress.add_task(label, total=len(refs))
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    _get(ray, ref)
                    progress.advance(task)
        except BaseException:
            for ref in pending:  # on a cluster we joined, nothing else would stop them
                ray.cancel(ref)
            raise


# ---- in the worker -------------------------------------------------------------------------

# The job's contexts (one per device) in this worker process, reused by the job's tasks so
# that models load once per worker, not once per task.
_CONTEXTS: dict[tuple[str, str], RunContext] = {}
_SCORERS: dict[RunContext, Scorer] = {}


def _worker_context(job: Job, device: str) -> RunContext:
    """The driver's run rebuilt in this worker: same registry, config, plan and cache."""
    key = (job.token, device)
    if key not in _CONTEXTS:
        for old in [k for k in _CONTEXTS if k[0] != job.token]:
            _SCORERS.pop(_CONTEXTS.pop(old), None)  # an earlier job's: let its models go
        registry = load_plugins()
        for kind, cls, info in job.added:
            if registry.entries[kind].get(cls.id) is None:
                registry.add(kind, cls, info)
        root = Path(job.config.cache_dir or "")
        if not root.is_dir():
            raise BenchError(
                f"the run's cache folder is not visible on this node ({os.uname().nodename})",
                path=root,
                fix="put --cache-dir on storage every Ray node mounts at the same path",
            )
        config = job.config.model_copy(update={"device": device, "executor": "local"})
        _CONTEXTS[key] = RunContext(
            config,
            registry,
            job.config_path,
            console=Console(quiet=True),  # the driver reports progress and failures
        )
    return _CONTEXTS[key]


def _prepare_task(job: Job, clips: list[Clip]) -> list[PreparedClip | str]:
    """Normalise clips into the shared cache, as the local executor does."""
    cache = _worker_context(job, "cpu").cache
    return [prepare_or_reason(clip, cache, job.config.intermediate) for clip in clips]


def _device(job: Job, resources: Resources) -> str:
    return "cuda" if job.use_gpu and resources.gpus else "cpu"


def _generate_task(
    job: Job, device: str, record_id: str, clips: list[PreparedClip]
) -> list[Generated]:
    """Every seed of ``clips`` through one unit's method, as the local executor does."""
    context = _worker_context(job, device)
    return generate_clips(context, context.unit(record_id), clips, lambda: None)


def _features_task(
    job: Job,
    device: str,
    record_ids: list[str],
    clips: list[PreparedClip],
    *generated: list[Generated],
) -> Partial:
    """Extract every feature and per-clip score of ``clips`` into the cache; returns the
    chunk's partial statistics of the distribution metrics, for the driver to merge."""
    context = _worker_context(job, device)
    if context not in _SCORERS:
        _SCORERS[context] = context.scorer()  # metric models load once per worker
    scorer = _SCORERS[context]
    by_record = {rid: list(part) for rid, part in zip(record_ids, generated, strict=True)}
    units = [context.unit(rid) for rid in record_ids]
    try:
        score_clips(scorer, units, clips, by_record, lambda: None)
        return scorer.export_partial()
    finally:  # a failed chunk leaves nothing behind for the worker's next task
        scorer.values.clear()
        scorer.states.clear()


# ---- Ray plumbing --------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BenchError(
            "the Ray executor needs Ray, which is not installed",
            fix="pip install 'auhead-bench[ray]' (or run with --executor local)",
        ) from None
    return ray


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local instance; True if we started it
    (and so shut it down at the end). An already initialised Ray (a script's own
    ``ray.init``) is used as it is."""
    if ray.is_initialized():
        return False
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,  # worker logs: the Ray session's logs folder
            runtime_env={"env_vars": env} if env else None,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address!r}" if address else "locally"
        raise BenchError(
            f"cannot start or join a Ray cluster {where}: {one_line(exc)}",
            fix="check --address (e.g. auto, or ray://HOST:10001) and that `ray status` works",
        ) from None
    return True


_REMOTES: dict[Any, Any] = {}


def _remote(ray: Any, function: Any) -> Any:
    if function not in _REMOTES:
        _REMOTES[function] = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(function)
    return _REMOTES[function]


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get`` with the task's own error: a BenchError as it was raised in the worker."""
    from ray.exceptions import RayError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BenchError):
            raise cause from None
        detail = f"{type(cause).__name__}: {one_line(cause)}" if cause else one_line(exc)
        raise BenchError(
            f"a Ray task failed: {detail}",
            fix="see the worker log in the Ray session's logs folder; finished work is "
            "cached: run the same command again to resume",
        ) from None
    except RayError as exc:  # e.g. the worker died more than MAX_RETRIES times
        raise BenchError(
            f"a Ray task could not finish: {type(exc).__name__}: {one_line(exc)[:300]}",
            fix="check the cluster (`ray status`); finished work is cached: run again to resume",
        ) from None


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
