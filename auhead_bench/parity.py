"""Parity with the reference tools: our metric next to the tool a paper ran, on the same files.

A metric plugin registers a ``ParityCheck`` per exact protocol mode (``register_parity_checks``):
which metric id it checks, which reference tool and function it runs, at what tolerance, and
which packages that tool needs. ``auhead-bench parity CONFIG`` then

    run (cached) -> generated + ground-truth files per clip -> each check's reference tool
    -> |delta| per clip and overall -> pass / fail table + parity.json

Ours is the number a normal run records (the same runner, cache and protocol); the reference
reads the very mp4/wav/png files our metric read. A reference tool that is not installed gives
an "install X" row, a metric not computed (weights missing) gives its reason: neither crashes
the command, neither counts as a pass. Nor does a check that compared no clip (both sides
left every clip out): it is "not compared", and the command fails unless told to allow it.
"""

from __future__ import annotations

import importlib.util
import math
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from auhead_bench.errors import BenchError, one_line
from auhead_bench.metric import PerClipMetric

Status = Literal["pass", "fail", "not_compared", "missing", "not_computed", "error"]
# |ours - reference| <= tolerance * max(|reference|, SCALE_FLOOR): relative for values above 1
# (FID, FVD, LSE-D), absolute below (CSIM, SSIM), so a reference of 0 does not divide by 0.
SCALE_FLOOR = 1.0


@dataclass(frozen=True)
class ParityClip:
    """One clip's files, exactly those our metric read (every clip with a generated video)."""

    clip_id: str
    generated: Path  # the method's video
    ground_truth: Path  # the prepared ground-truth video
    audio: Path | None  # the prepared 16 kHz mono wav
    reference_image: Path | None  # the prepared reference (source) image


@dataclass(frozen=True)
class ParityInputs:
    """What a reference tool is given: the clips, where to run, a scratch folder of its own."""

    clips: list[ParityClip]
    device: str
    workdir: Path  # empty; frame dumps, re-encoded videos and tool outputs go here
    metric_options: dict[str, Any] = field(default_factory=dict)  # as our metric ran


@dataclass(frozen=True)
class SampleValue:
    """A documented value for a file the user supplies (e.g. syncnet_python's example.avi)."""

    name: str  # e.g. "LSE-D"
    ours: float
    documented: float
    tolerance: float  # absolute
    source: str  # where the documented value is published

    @property
    def passed(self) -> bool:
        return abs(self.ours - self.documented) <= self.tolerance


class ParityCheck(ABC):
    """One exact protocol mode of a metric against the reference tool it names.

    Subclasses set the class attributes and implement ``reference_values``: run the reference
    tool the way researchers run it on ``inputs.clips`` and return its value per clip id (None
    where the tool gives no value for a clip) for a per-clip metric, or one float for a
    distribution metric (FID, FVD).
    """

    id: ClassVar[str]  # short and unique, e.g. "pytorch-fid"
    metric: ClassVar[str]  # the metric id whose recorded value is compared
    reference: ClassVar[str]  # the tool and function run, one line
    tolerance: ClassVar[float] = 1e-4  # relative to max(|reference|, 1)
    requires: ClassVar[dict[str, str]] = {}  # import name -> pip requirement of the reference
    # Options our metric runs with when the config does not list it (e.g. the exact mode's).
    metric_options: ClassVar[dict[str, Any]] = {}

    def missing(self) -> list[str]:
        """pip requirements of the reference tool that are not importable here."""
        return [req for name, req in self.requires.items()
                if importlib.util.find_spec(name) is None]

    @abstractmethod
    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None] | float:
        """The reference tool's value(s) on the files our metric read, every clip of the
        record: the reference leaves out what its own rule leaves out."""

    def samples(self, path: Path, device: str) -> list[SampleValue]:
        """Documented values this check can verify on a user-supplied file (none by default)."""
        return []


@dataclass
class ParityRow:
    """One check on one record (method x dataset): the comparison and its verdict."""

    check: str
    metric: str
    record: str
    reference: str
    status: Status
    ours: float | None = None
    theirs: float | None = None
    delta: float | None = None  # |ours - theirs|
    tolerance: float | None = None
    clips: int = 0  # clips compared: scored by both sides (per-clip) or folded by ours
    reference_clips: int | None = None  # clips the reference was given
    worst_clip: str | None = None  # the clip with the largest |delta| (per-clip checks)
    per_clip: dict[str, dict[str, float | None]] = field(default_factory=dict)
    note: str | None = None  # why not compared, or what differed


def within(ours: float, theirs: float, tolerance: float) -> bool:
    return abs(ours - theirs) <= tolerance * max(abs(theirs), SCALE_FLOOR)


def compare(
    check: ParityCheck,
    record: str,
    result: Any,
    theirs: dict[str, float | None] | float,
    seed: int = 0,
) -> ParityRow:
    """Our recorded ``result`` (a MetricResult, ``seed``'s values) against the reference's."""
    row = ParityRow(check.id, check.metric, record, check.reference, "fail",
                    tolerance=check.tolerance)
    if isinstance(theirs, dict):
        ours_by_clip = {v.clip_id: v.value for v in result.per_clip if v.seed == seed}
        worst = -1.0
        problems = []
        skipped_by_both = 0
        for clip_id in sorted(set(ours_by_clip) | set(theirs)):
            a, b = ours_by_clip.get(clip_id), theirs.get(clip_id)
            row.per_clip[clip_id] = {"ours": a, "theirs": b}
            if a is None and b is None:  # both leave it out (e.g. no track of > 100 frames)
                skipped_by_both += 1
                continue
            if a is None or b is None:
                side = "ours" if a is None else "the reference"
                problems.append(f"clip {clip_id}: no value from {side}")
                continue
            row.clips += 1
            delta = abs(a - b)
            row.per_clip[clip_id]["delta"] = delta
            if delta > worst:
                worst, row.worst_clip = delta, clip_id
            if not within(a, b, check.tolerance):
                problems.append(f"clip {clip_id}: {a:.6g} vs {b:.6g}")
        scored = [v for v in theirs.values() if v is not None]
        row.theirs = sum(scored) / len(scored) if scored else None
        ours = [v for v in ours_by_clip.values() if v is not None]
        row.ours = sum(ours) / len(ours) if ours else None
        if row.ours is not None and row.theirs is not None:
            row.delta = abs(row.ours - row.theirs)
        row.reference_clips = len(theirs)
        if problems:
            row.status = "fail"
            row.note = "; ".join(problems[:3]) + (f" (+{len(problems) - 3})"
                                                  if len(problems) > 3 else "")
        elif not row.clips:
            row.status = "not_compared"
            row.note = (f"no clip compared: all {skipped_by_both} left out by both"
                        if skipped_by_both else "no clip to compare")
        else:
            row.status = "pass"
            if skipped_by_both:
                row.note = f"{skipped_by_both} clip(s) left out by both"
        return row
    row.ours, row.theirs = result.per_seed.get(str(seed), result.value), float(theirs)
    row.clips = sum(v.seed == seed and v.value is not None for v in result.per_clip) or result.n
    if row.ours is None:
        row.note = "no value from ours"
        return row
    if not row.clips:
        row.status, row.note = "not_compared", "no clip folded by ours"
        return row
    row.delta = abs(row.ours - row.theirs)
    row.status = "pass" if within(row.ours, row.theirs, check.tolerance) else "fail"
    return row


@dataclass
class ParityReport:
    """Every row, the sample checks and what was run: what ``parity.json`` holds."""

    rows: list[ParityRow]
    samples: list[dict[str, Any]]
    config: str
    clips: int
    out_dir: str
    allow_empty: bool = False  # "not compared" rows do not fail the report

    @property
    def passed(self) -> bool:
        allowed = {"pass", "not_compared"} if self.allow_empty else {"pass"}
        return all(r.status in allowed for r in self.rows) and all(
            s["passed"] for s in self.samples)

    @property
    def not_compared(self) -> int:
        return sum(r.status == "not_compared" for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "allow_empty": self.allow_empty,
            "not_compared": self.not_compared,
            "config": self.config,
            "clips": self.clips,
            "out_dir": self.out_dir,
            "rows": [asdict(r) for r in self.rows],
            "samples": self.samples,
        }


def collect_checks(registry: Any) -> list[ParityCheck]:
    """Every registered check, in registration order; duplicate ids are an error."""
    checks: list[ParityCheck] = []

    def register(check: type[ParityCheck] | ParityCheck) -> None:
        instance = check() if isinstance(check, type) else check
        if not isinstance(instance, ParityCheck):
            raise TypeError(f"register() got {check!r}, which is not a ParityCheck")
        checks.append(instance)

    registry.pm.hook.register_parity_checks(register=register)
    ids = [c.id for c in checks]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise BenchError(f"parity check id {repeated[0]!r} is registered twice")
    return checks


def select_checks(checks: Sequence[ParityCheck], wanted: Sequence[str] | None) -> list[ParityCheck]:
    """Checks whose id or metric id is in ``wanted`` (all when None); unknown names fail."""
    if not wanted:
        return list(checks)
    known = {c.id for c in checks} | {c.metric for c in checks}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BenchError(
            f"no parity check for {unknown[0]!r}",
            fix=f"{hint}`auhead-bench parity --list` shows every check",
        )
    return [c for c in checks if c.id in wanted or c.metric in wanted]


def parity_config(config: Any, checks: Sequence[ParityCheck], clips: int) -> Any:
    """The run config restricted to the checks' metrics and ``clips`` clips per dataset."""
    listed = {m.id: m for m in config.metrics}
    metrics = []
    for metric_id in dict.fromkeys(c.metric for c in checks):
        if metric_id in listed:
            metrics.append(listed[metric_id])
        else:
            options = next(c.metric_options for c in checks if c.metric == metric_id)
            metrics.append({"id": metric_id, "options": dict(options)})
    datasets = [
        {"id": d.id, "options": {**d.options, "max_clips": clips}} for d in config.datasets
    ]
    data = config.model_dump()
    data.update(metrics=metrics, datasets=datasets, sweep={})
    data["methods"] = [{"id": m.id, "options": m.options} for m in config.methods]
    return type(config).model_validate(data)


def run_parity(
    config: Any,
    out_dir: Path,
    *,
    wanted: Sequence[str] | None = None,
    clips: int = 4,
    sample: Path | None = None,
    registry: Any = None,
    config_path: Path | None = None,
    say: Callable[[str], None] = print,
    allow_empty: bool = False,
) -> ParityReport:
    """Run the config's methods on ``clips`` clips per dataset with the checked metrics, then
    each check's reference tool on the same files; rows per (check, record). ``allow_empty``:
    a check that compared no clip does not fail the report."""
    from auhead_bench.cache import DEFAULT_CACHE, Cache
    from auhead_bench.plugins import get_registry
    from auhead_bench.prepare import prepare_clip
    from auhead_bench.runner import Runner

    registry = registry or get_registry()
    checks = select_checks(collect_checks(registry), wanted)
    if not checks:
        raise BenchError("no parity checks are registered",
                         fix="install the metric plugins (`pip install -e .`)")
    runnable = []
    rows: list[ParityRow] = []
    for check in checks:
        missing = check.missing()
        if missing:
            rows.append(ParityRow(check.id, check.metric, "-", check.reference, "missing",
                                  note=f"install {' '.join(missing)}: "
                                  f"`pip install {' '.join(missing)}`"))
        else:
            runnable.append(check)
    run_config = parity_config(config, checks, clips)
    records = Runner(run_config, out_dir / "run", registry=registry,
                     config_path=config_path).run() if runnable else []
    cache = Cache(run_config.cache_dir or DEFAULT_CACHE)
    prepared = _prepared_clips(run_config, registry, cache, prepare_clip)
    device = records[0].provenance.device if records else "cpu"
    for record in records:
        files = _record_files(record, prepared, cache)
        for check in runnable:
            result = record.metrics.get(check.metric)
            per_clip = issubclass(registry.get("metric", check.metric).cls, PerClipMetric)
            # A per-clip metric that skipped every clip is compared too: the reference must
            # skip them as well.
            comparable = result is not None and (
                result.status == "ok" or (per_clip and result.status == "failed"
                                          and bool(result.per_clip)))
            if not comparable:
                reason = result.reason if result is not None else "not in the record"
                status: Status = "not_computed" if result and result.status == "not_computed" \
                    else "error"
                rows.append(ParityRow(check.id, check.metric, record.record_id, check.reference,
                                      status, note=reason))
                continue
            # Every reference sees every clip that has a generated video, and must leave out
            # what ours left out by its own rule: a distribution reference given only the
            # clips ours folded could never show a wrong skip rule.
            workdir = Path(tempfile.mkdtemp(prefix=f"{check.id}-", dir=_scratch(out_dir)))
            inputs = ParityInputs(files, _device(device), workdir, dict(result.options))
            say(f"{check.id}: running {check.reference} on {len(files)} clip(s) of "
                f"{record.record_id}")
            try:
                theirs = check.reference_values(inputs)
            except Exception as exc:  # noqa: BLE001 - a reference that breaks is a row, e.g.
                # on a clip ours leaves out and the reference cannot: the other checks go on
                note = one_line(exc) if isinstance(exc, BenchError) else \
                    f"the reference failed: {type(exc).__name__}: {exc}"
                rows.append(ParityRow(check.id, check.metric, record.record_id,
                                      check.reference, "error", note=note,
                                      reference_clips=len(files)))
                continue
            row = compare(check, record.record_id, result, theirs, record.seeds[0])
            row.reference_clips = len(files)
            rows.append(row)
    samples: list[dict[str, Any]] = []
    if sample is not None:
        for check in checks:
            if check.missing():
                continue
            for value in check.samples(sample, _device(device)):
                samples.append({**asdict(value), "check": check.id, "file": str(sample),
                                "passed": value.passed})
    return ParityReport(rows, samples, str(config_path) if config_path else "demo", clips,
                        str(out_dir), allow_empty)


def _scratch(out_dir: Path) -> Path:
    folder = out_dir / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _device(description: str) -> str:
    return "cuda" if description.lower().startswith("cuda") else "cpu"


def _prepared_clips(config: Any, registry: Any, cache: Any, prepare: Callable) -> dict[str, Any]:
    """Prepared clips by id (cached by the run just made, so no media work happens here)."""
    from auhead_bench.plan import make_plan

    out: dict[str, Any] = {}
    for dataset in make_plan(config, registry).datasets:
        instance = dataset.entry.cls(dataset.options, cache.root / "datasets")
        instance.intermediate = config.intermediate  # as the runner sets it
        for clip in instance.clips()[: dataset.options.max_clips]:
            try:
                out[clip.id] = prepare(clip, cache, config.intermediate)
            except BenchError:
                continue
    return out


def _record_files(record: Any, prepared: dict[str, Any], cache: Any) -> list[ParityClip]:
    """The files each clip of ``record`` was scored on (first seed)."""
    seed = record.seeds[0]
    files = []
    for generation in record.generations:
        if generation.seed != seed or generation.status != "ok":
            continue
        clip = prepared.get(generation.clip_id)
        if clip is None:
            continue
        files.append(ParityClip(
            clip_id=generation.clip_id,
            generated=cache.path("generations", generation.key) / "video.mp4",
            ground_truth=clip.clip.video,
            audio=clip.clip.audio,
            reference_image=clip.clip.reference,
        ))
    return files


def format_rows(rows: Sequence[ParityRow]) -> list[str]:
    """One terminal line per row: verdict, check, record, ours, theirs, |delta|, clips compared
    (of those the reference was given)."""
    def num(value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.6g}"

    lines = []
    for r in rows:
        head = f"{r.status.upper().replace('_', ' '):<12} {r.check:<22} {r.record}"
        given = f" of {r.reference_clips}" if r.reference_clips is not None else ""
        clips = f" [{r.clips}{given} clips compared]" if r.status in (
            "pass", "fail", "not_compared") else ""
        if r.status in ("pass", "fail") and r.delta is not None:
            lines.append(f"{head} ours {num(r.ours)}  ref {num(r.theirs)}  |d| {num(r.delta)}"
                         f" (tol {r.tolerance:g} rel.){clips}" + (f"  {r.note}" if r.note else ""))
        else:
            lines.append(f"{head}{clips} {r.note or ''}")
    return lines
