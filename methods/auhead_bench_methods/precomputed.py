"""`precomputed`: videos a tool already made elsewhere, matched to clip ids by a pattern.

``pattern`` (default ``{clip_id}.mp4``) names each clip's file under ``folder``; it may use
``{clip_id}`` ``{clip_slug}`` ``{identity}`` ``{emotion}`` ``{intensity}`` ``{seed}``. MEAD's
ids contain slashes, so the default pattern expects nested folders
(``M003/angry/level_3/001.mp4``); ``{clip_slug}.mp4`` expects flat names
(``M003_angry_level_3_001.mp4``).

Missing and extra files are reported before anything is generated or scored: when a run
starts, every ``precomputed`` method of the plan lists its dataset's clips and compares them
with the folder. Missing files stop the run (``on_missing: error``, the default) or are
recorded as failed generations for those clips (``on_missing: fail_clip``); extra video files
are listed as a warning. ``auhead-bench check-outputs CONFIG`` prints the same report without
running anything.

The folder's content is part of the options: ``outputs_sha256`` is filled with a hash of every
video file under ``folder`` when the config is read, so replacing a file changes the cache key
and the record id instead of silently reusing old scores; pinning it (as a record does) makes a
run fail if the files changed since. Each output is normalised like an ``external`` one (25 fps,
16 kHz mono, the ground truth's size) and kept as ``original.<ext>``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator

from auhead_bench import BenchError, Clip, Generation, Method, hookimpl, media
from auhead_bench.options import machine_specific
from auhead_bench_methods.external import (
    NORMALISE_VERSION,
    NormaliseOptions,
    fill,
    normalise_output,
    slug,
)

log = logging.getLogger("auhead_bench.methods")

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".flv", ".gif"})
PATTERN_FIELDS = ("clip_id", "clip_slug", "identity", "emotion", "intensity", "seed")
LISTED = 10


class PrecomputedOptions(NormaliseOptions):
    folder: Path = machine_specific()  # its content is keyed by outputs_sha256
    pattern: str = "{clip_id}.mp4"
    on_missing: Literal["error", "fail_clip"] = "error"
    outputs_sha256: str | None = None  # filled from the folder's videos; pinned, it is checked

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: Path) -> Path:
        value = value.expanduser()
        if not value.is_dir():
            raise ValueError(f"{value} is not a folder of precomputed videos")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        sample = {name: "x" for name in PATTERN_FIELDS} | {"seed": 0, "intensity": 1}
        try:
            fill(value, sample, "pattern")  # unknown placeholders fail here, at config time
        except BenchError as exc:
            raise ValueError(str(exc)) from None
        if os.path.isabs(value) or ".." in Path(value).parts:
            raise ValueError("pattern must be a path inside folder (relative, no '..')")
        return value

    @model_validator(mode="before")
    @classmethod
    def _digest(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("folder"):
            return data
        folder = Path(str(data["folder"])).expanduser()
        if not folder.is_dir():
            return data  # the field validator reports it
        digest = folder_digest(folder)
        pinned = data.get("outputs_sha256")
        if pinned is None:
            return {**data, "outputs_sha256": digest}
        if pinned != digest:
            raise ValueError(
                f"the videos under {folder} changed since outputs_sha256 {pinned[:12]}... was "
                f"recorded (now {digest[:12]}...); restore them or drop outputs_sha256"
            )
        return data


def folder_digest(folder: Path) -> str:
    """sha256 over (relative path, file sha256) of every video under ``folder``."""
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    listing = tuple(
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    return _digest(folder, listing)


@lru_cache(maxsize=16)
def _digest(folder: Path, listing: tuple[tuple[str, int, int], ...]) -> str:
    """Hashing is keyed by the (name, size, mtime) listing: done once per folder state."""
    digest = hashlib.sha256()
    for rel, _, _ in listing:
        digest.update(rel.encode() + b"\0" + media.sha256_file(folder / rel).encode() + b"\n")
    return digest.hexdigest()


def expected_path(options: PrecomputedOptions, clip: Clip, seed: int) -> Path:
    values = {
        "clip_id": clip.id,
        "clip_slug": slug(clip.id),
        "identity": clip.identity or "",
        "emotion": clip.emotion or "",
        "intensity": "" if clip.intensity is None else clip.intensity,
        "seed": seed,
    }
    return options.folder / fill(options.pattern, values, "pattern")


class Precomputed(Method):
    id = "precomputed"
    description = "Videos made elsewhere, matched to clip ids by a file-name pattern."
    version = "1"
    Options = PrecomputedOptions

    @classmethod
    def is_deterministic(cls, options: PrecomputedOptions) -> bool:
        """One file per clip unless the pattern names ``{seed}``."""
        return "{seed}" not in options.pattern

    def generate(
        self, clip: Clip, options: PrecomputedOptions, seed: int, out_path: Path
    ) -> Generation:
        source = expected_path(options, clip, seed)
        if not source.is_file():
            raise BenchError(
                f"precomputed: no output for clip {clip.id} (seed {seed})",
                path=source,
                fix="add the file or fix `pattern`; `auhead-bench check-outputs CONFIG` "
                "lists every missing file",
            )
        info = normalise_output(
            source, clip, out_path, options.expected_fps, options, options.panel, self.id
        )
        info["source"] = source.relative_to(options.folder).as_posix()
        return Generation(info=info)

    def fingerprint(self) -> dict[str, Any]:
        return {"version": self.version, "normalise": NORMALISE_VERSION}


# ---- checking a folder against a plan, before anything runs --------------------------------


@dataclass
class OutputCheck:
    """What one ``precomputed`` method of a plan finds in its folder."""

    experiment: str
    dataset: str
    folder: Path
    pattern: str
    on_missing: str
    expected: int = 0
    missing: list[str] = field(default_factory=list)  # relative paths
    extra: list[str] = field(default_factory=list)  # relative paths of unexpected videos

    def summary(self) -> str:
        head = (
            f"{self.experiment} on {self.dataset}: {self.expected - len(self.missing)}/"
            f"{self.expected} outputs found in {self.folder}"
        )
        parts = [head]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {_first(self.missing)}")
        if self.extra:
            parts.append(f"extra {len(self.extra)}: {_first(self.extra)}")
        return "; ".join(parts)


def _first(items: list[str]) -> str:
    more = f" (+{len(items) - LISTED} more)" if len(items) > LISTED else ""
    return ", ".join(items[:LISTED]) + more


def check_outputs(config: Any, plan: Any) -> list[OutputCheck]:
    """Compare each ``precomputed`` unit's expected files with its folder.

    Lists the datasets' clips the way the runner will (same cache folder, ``max_clips``), so
    the report holds before any generation or metric. Extra files are those no unit of the
    plan expects in that folder.
    """
    from auhead_bench.cache import DEFAULT_CACHE

    cache_root = Path(config.cache_dir or DEFAULT_CACHE) / "datasets"
    clips_of: dict[str, list[Clip]] = {}
    reports: list[OutputCheck] = []
    expected_in: dict[Path, set[str]] = {}
    for unit in plan.units:
        if not issubclass(unit.method.entry.cls, Precomputed):
            continue
        options: PrecomputedOptions = unit.method.options
        key = unit.dataset.id + repr(sorted(unit.dataset.options_json().items()))
        if key not in clips_of:
            dataset = unit.dataset.entry.cls(unit.dataset.options, cache_root)
            clips = dataset.clips()
            limit = getattr(unit.dataset.options, "max_clips", None)
            clips_of[key] = clips[:limit] if limit is not None else clips
        report = OutputCheck(
            experiment=unit.experiment,
            dataset=unit.dataset.id,
            folder=options.folder,
            pattern=options.pattern,
            on_missing=options.on_missing,
        )
        expected = expected_in.setdefault(options.folder, set())
        for seed in unit.seeds:
            for clip in clips_of[key]:
                path = expected_path(options, clip, seed)
                rel = path.relative_to(options.folder).as_posix()
                expected.add(rel)
                report.expected += 1
                if not path.is_file():
                    report.missing.append(rel)
        reports.append(report)
    for report in reports:
        present = sorted(
            p.relative_to(report.folder).as_posix()
            for p in report.folder.rglob("*")
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        )
        report.extra = [rel for rel in present if rel not in expected_in[report.folder]]
    return reports


@hookimpl
def run_started(config, plan):
    """Stop a run whose precomputed outputs are missing, before any generation or metric."""
    for report in check_outputs(config, plan):
        if report.extra:
            log.warning(
                "precomputed: %d unexpected video(s) in %s: %s",
                len(report.extra), report.folder, _first(report.extra),
            )
        if not report.missing:
            continue
        if report.on_missing == "error":
            raise BenchError(
                f"precomputed: {len(report.missing)} of {report.expected} expected outputs are "
                f"missing ({report.experiment} on {report.dataset}): {_first(report.missing)}",
                path=report.folder,
                fix="add them or fix `pattern`; or set on_missing: fail_clip to score the rest",
            )
        log.warning(
            "precomputed: %d of %d outputs missing in %s (recorded as failed clips): %s",
            len(report.missing), report.expected, report.folder, _first(report.missing),
        )


@hookimpl
def register_commands(cli):
    import click

    @cli.command("check-outputs")
    @click.argument("config", type=click.Path(path_type=Path))
    @click.option("--cache-dir", type=click.Path(path_type=Path), help="Cache root.")
    def check_outputs_command(config: Path, cache_dir: Path | None) -> None:
        """List missing and extra files of every `precomputed` method in CONFIG (exit 1 if
        any is missing)."""
        from auhead_bench.config import load_config
        from auhead_bench.plan import make_plan
        from auhead_bench.plugins import get_registry

        run_config = load_config(config, {"cache_dir": cache_dir})
        reports = check_outputs(run_config, make_plan(run_config, get_registry(), config))
        if not reports:
            click.echo("no precomputed method in this config")
            return
        for report in reports:
            click.echo(report.summary())
        if any(report.missing for report in reports):
            click.get_current_context().exit(1)


@hookimpl
def register_methods(register):
    register(Precomputed)
