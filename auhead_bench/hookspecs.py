"""Every hook a plugin may implement. Each takes keyword arguments; pluggy checks the names.

Registration hooks receive a ``register`` callback (the pattern of simonw/llm): a plugin calls
it once per object it provides, and the plugin manager records which plugin provided what.
Observer hooks are called by the runner and must not change its results.
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("auhead_bench")
hookimpl = HookimplMarker("auhead_bench")


@hookspec
def register_methods(register):
    """Register generator classes: ``register(MethodSubclass)``.

    Called once when the plugin manager builds its registry. Each class needs a unique ``id``,
    a one-line ``description`` and an ``Options`` pydantic model (extra fields forbidden).
    """


@hookspec
def register_metrics(register):
    """Register metric classes: ``register(MetricSubclass)``.

    The ``id`` names the protocol (e.g. ``ssim_gauss11_rgb``), so two protocols never share an id.
    """


@hookspec
def register_datasets(register):
    """Register dataset classes: ``register(DatasetSubclass)``, each with an ``Options`` model."""


@hookspec
def register_extractors(register):
    """Register shared feature extractors: ``register(ExtractorSubclass)``.

    Metrics name the extractor ids they need; the runner runs each extractor once per video
    and caches its output by (video content, extractor, weights, parameters).
    """


@hookspec
def register_weights(register):
    """Declare weight files: ``register(WeightsSpec(...))`` (name, source, sha256, licence).

    ``auhead-bench weights list|pull|verify`` act on every declared file.
    """


@hookspec
def register_parity_checks(register):
    """Register checks against reference tools: ``register(ParityCheckSubclass)``.

    Each names the metric id it checks and runs the reference tool (pytorch-fid, the
    syncnet_python pipeline, ...) on the files that metric read, every clip of the record;
    ``auhead-bench parity`` reports |ours - theirs| and the clips compared per check (see
    ``auhead_bench.parity``). One pattern: the metric's module registers its checks; a
    check imports what the metric is built from, never the metric's module (no cycle).
    """


@hookspec
def register_commands(cli):
    """Add subcommands to the ``auhead-bench`` click group ``cli``."""


@hookspec
def run_started(config, plan):
    """A run is about to start: ``config`` is the validated RunConfig, ``plan`` the work units."""


@hookspec
def clip_generated(method_id, clip_id, seed, path, cached):
    """A generation for one clip is ready at ``path`` (``cached`` if it came from the cache)."""


@hookspec
def metric_computed(record_id, metric_id, result):
    """A metric finished for one run record; ``result`` is its MetricResult."""


@hookspec
def run_finished(out_dir, records):
    """All records are written to ``out_dir``; ``records`` are the RunRecord objects."""

