"""``leaderboard submit``: turn a finished run folder into what a pull request adds.

The bundle holds the run's records (each with who generated and who evaluated it, in the
record's ``submission``), the run config, ``submission.yaml`` (who, the weights each method
used with their sha256, from provenance) and ``videos.sha256`` (every generated video's
sha256 in ``sha256sum`` format, so a maintainer can ask for the videos and check them with
``sha256sum -c``). A run with failed or not-computed metrics, or failed generations, is
refused unless ``allow_partial``; the error lists what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from auhead_bench import __version__
from auhead_bench.errors import BenchError
from auhead_bench.records import RunRecord, Submission, dump_record, parse_json, read_regular_file
from auhead_bench.reporting.inputs import MANIFEST, find_record_files
from auhead_bench.reporting.leaderboard import record_problems, slug
from auhead_bench.reporting.limits import load_entry

MAX_NAME = 200  # --generated-by / --evaluated-by: a name or a team, not a document
VIDEOS = "videos.sha256"
SUMMARY = "submission.yaml"
CONFIG = "config.yaml"
SHOWN = 8  # missing items named in the one-line error (all are printed before it)


@dataclass
class Bundle:
    out: Path
    records: list[Path]
    missing: list[str]  # what the run lacks (empty unless --allow-partial let it through)


def missing_parts(record: RunRecord) -> list[str]:
    """Every metric that did not compute and every generation that failed, one line each."""
    found = []
    for metric_id, result in record.metrics.items():
        if result.status != "ok":
            what = "failed" if result.status == "failed" else "was skipped (not computed)"
            reason = f": {result.reason}" if result.reason else ""
            found.append(f"{record.record_id}: metric {metric_id} {what}{reason}"[:300])
    failed = [g for g in record.generations if g.status != "ok"]
    if failed:
        first = failed[0]
        found.append(
            f"{record.record_id}: {len(failed)} generation(s) failed (first: clip "
            f"{first.clip_id} seed {first.seed}: {first.error or 'no error recorded'})"[:300]
        )
    no_hash = [g for g in record.generations if g.status == "ok" and not g.content_sha256]
    if no_hash:
        found.append(f"{record.record_id}: {len(no_hash)} generated video(s) have no sha256")
    return found


def _name(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value:
        raise BenchError(f"{option} is empty", fix=f"pass {option} 'Name (affiliation)'")
    if len(value) > MAX_NAME:
        raise BenchError(f"{option} is {len(value)} characters (limit {MAX_NAME})")
    return value


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not path.is_file():
        raise BenchError(
            f"not a run folder ({MANIFEST} missing)",
            path=run_dir,
            fix="pass the --out folder of `auhead-bench run`",
        )
    data = parse_json(read_regular_file(path), path)
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise BenchError(f"{MANIFEST} has no run config", path=path, fix="re-run to rewrite it")
    return data


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BenchError(
            "exists and is not an empty folder", path=out, fix="pass --out a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)


def submit(
    run_dir: Path,
    out: Path,
    *,
    generated_by: str | None = None,
    evaluated_by: str | None = None,
    allow_partial: bool = False,
) -> Bundle:
    """Write the submission bundle of ``run_dir`` to ``out`` (refusing partial runs)."""
    run_dir, out = Path(run_dir), Path(out)
    generated_by = _name(generated_by, "--generated-by")
    evaluated_by = _name(evaluated_by, "--evaluated-by")
    manifest = _read_manifest(run_dir)
    files = find_record_files(run_dir)
    if not files:
        raise BenchError("the run folder holds no record", path=run_dir / "records",
                         fix="let the run finish first")
    records: list[RunRecord] = []
    for file in files:
        entry = load_entry(file)  # the board's own limits: a bundle the board would refuse
        if not isinstance(entry, RunRecord):  # is no bundle
            raise BenchError("a reported result is not a run record", path=file)
        problems = record_problems(entry)
        if problems:
            raise BenchError(f"record does not validate: {problems[0]}", path=file)
        records.append(entry)
    missing = [line for record in records for line in missing_parts(record)]
    if missing and not allow_partial:
        shown = "; ".join(missing[:SHOWN])
        more = f" (+{len(missing) - SHOWN} more)" if len(missing) > SHOWN else ""
        raise PartialRunError(
            f"the run is partial: {shown}{more}",
            missing=missing,
            path=run_dir,
            fix="re-run the missing parts (finished work is cached) or pass --allow-partial",
        )
    _prepare(out)
    (out / "records").mkdir()
    written, video_lines = [], []
    weights: dict[str, dict[str, str]] = {}
    used: set[str] = set()
    for record in records:
        record = record.model_copy(deep=True)
        record.submission = Submission(generated_by=generated_by, evaluated_by=evaluated_by)
        name = slug(record.record_id, used)
        path = out / "records" / f"{name}.json"
        path.write_text(json.dumps(dump_record(record), indent=2, ensure_ascii=False) + "\n")
        written.append(path)
        weights[record.record_id] = dict(sorted(record.provenance.weights.items()))
        for gen in sorted(record.generations, key=lambda g: (g.clip_id, g.seed)):
            if gen.status == "ok" and gen.content_sha256:
                video = f"{name}/{slug(gen.clip_id)}/seed{gen.seed}.mp4"
                video_lines.append(f"{gen.content_sha256}  {video}")
    (out / CONFIG).write_text(
        yaml.safe_dump(manifest["config"], sort_keys=False, allow_unicode=True)
    )
    (out / VIDEOS).write_text("".join(f"{line}\n" for line in video_lines))
    summary = {
        "auhead_bench": __version__,
        "run": manifest.get("name"),
        "finished_at": manifest.get("finished_at"),
        "generated_by": generated_by,
        "evaluated_by": evaluated_by,
        "records": [p.relative_to(out).as_posix() for p in written],
        "methods": sorted({r.method.id for r in records}),
        "datasets": sorted({r.dataset.id for r in records}),
        "weights": weights,
        "videos": {"manifest": VIDEOS, "count": len(video_lines),
                   "layout": "RECORD/CLIP/seedSEED.mp4 (ask the submitter for the files)"},
        "partial": missing,
    }
    (out / SUMMARY).write_text(yaml.safe_dump(summary, sort_keys=False, allow_unicode=True))
    return Bundle(out=out, records=written, missing=missing)


class PartialRunError(BenchError):
    """A run with failed or skipped metrics (or failed generations): not a full submission."""

    def __init__(self, message: str, *, missing: list[str], **kwargs: Any):
        super().__init__(message, **kwargs)
        self.missing = missing
