"""The static leaderboard: validated records in, a folder of HTML/CSS/JS out, opened from disk.

Submitted records are untrusted. Each is validated (schema, provenance, numbers that agree with
their own per-clip values); a bad one is listed with its reason and the rest still build.
Every string from a record reaches HTML only through Jinja autoescape and never appears in a
URL, a file name or a script: links and ids are built from sanitised slugs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from auhead_bench.errors import BenchError, one_line
from auhead_bench.records import RunRecord, dump_record
from auhead_bench.reporting import plots as plotting
from auhead_bench.reporting.board import Board, Flag
from auhead_bench.reporting.inputs import NOT_RECORDS, LoadedRecord, is_reference, label_records
from auhead_bench.reporting.limits import load_entry
from auhead_bench.reporting.reported import ReportedResult
from auhead_bench.reporting.stats import MIN_CLIPS
from auhead_bench.reporting.tables import (
    ARROW,
    Cell,
    NoteBook,
    Report,
    Row,
    build_report,
    empty_marks,
    format_bytes,
    format_seconds,
    reading_notes,
    reference_notes,
    to_csv,
    to_json,
    to_latex,
    unknown_metric,
)
from auhead_bench.untrusted import REVIEW, hold_commands
from auhead_bench.validation import (  # noqa: F401 - record_problems, merge_records: kept here
    accept,
    merge_records,
    record_problems,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = ".auhead-leaderboard"  # marks a folder this builder owns and may overwrite
MANAGED = ("index.html", "assets", "records", "reproduce", "downloads", "plots")
MAX_CLIP_ROWS = 2000  # per-clip rows shown on a record page; the raw JSON has them all
REL_TOL = 1e-6
# libyaml's emitter where PyYAML has it: the same text as yaml.safe_dump, about 4x faster
# (2,000 reproduce configs took 1.5 s in pure Python).
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Distributions whose plugins this project ships or knows as published: the suite itself (its
# built-in methods, metrics and datasets are entry points of auhead-bench). Add a published
# plugin's distribution here; any other name a record carries is flagged on its page.
KNOWN_DISTRIBUTIONS = frozenset({"auhead-bench"})


@dataclass(frozen=True)
class Rejected:
    """A results file that did not make it onto the site, and why (one line)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ReportedEntry:
    """A reported result (numbers quoted from a paper) and the file it came from."""

    result: ReportedResult
    path: Path


@dataclass
class Site:
    """What a build wrote and what it left out."""

    out: Path
    accepted: list[LoadedRecord]
    rejected: list[Rejected]
    plots: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ranked: list[LoadedRecord] = field(default_factory=list)  # on the board's ranked tables
    others: list[tuple[LoadedRecord, list[str]]] = field(default_factory=list)  # + differences
    reported: list[ReportedEntry] = field(default_factory=list)
    release: Path | None = None  # the release folder this build wrote

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def default_results_dir() -> Path:
    return REPO_ROOT / "leaderboard" / "results"


def default_template_dir() -> Path:
    return REPO_ROOT / "leaderboard" / "template"


# ---- validation ----------------------------------------------------------------------------


def collect(
    results: Path,
    notes: list[str] | None = None,
    reported: list[ReportedEntry] | None = None,
    skip: set[Path] | None = None,
) -> tuple[list[LoadedRecord], list[Rejected]]:
    """Every ``*.json`` under ``results`` (run manifests aside): accepted or rejected, sorted.

    A second record with an accepted record's id that adds metrics is merged into that row
    (``merge_records``; a line is added to ``notes``); one that cannot merge is rejected.
    Files over the size limits (``limits``) are rejected with the limit they break. Reported
    results (``kind: reported``) go to ``reported``; without that list they are rejected.
    Files whose resolved path is in ``skip`` are left out (``leaderboard check``: the
    submitted files are not yet on the board).
    """
    results = Path(results)
    if not results.is_dir():
        raise BenchError(
            "results folder not found",
            path=results,
            fix="pass --results a folder of run records (*.json)",
        )
    loaded: list[tuple[Path, RunRecord]] = []
    rejected: list[Rejected] = []
    paths: dict[Path, Path] = {}
    owners: dict[str, Path] = {}  # reported results' ids (run records: validation.accept)
    for path in sorted(p for p in results.rglob("*.json") if p.name not in NOT_RECORDS):
        if skip and path.resolve() in skip:
            continue
        shown = path.relative_to(results)
        try:
            entry = load_entry(path)
        except BenchError as exc:
            reason = one_line(exc)
            prefix = f"{path}: "
            rejected.append(
                Rejected(shown, reason[len(prefix) :] if reason.startswith(prefix) else reason)
            )
            continue
        if isinstance(entry, ReportedResult):
            if reported is None:
                rejected.append(Rejected(shown, "a reported result (kind: reported), not a run"))
            elif entry.record_id in owners:
                rejected.append(
                    Rejected(shown, f"duplicate record_id {entry.record_id!r} "
                             f"(also in {owners[entry.record_id]})")
                )
            else:
                owners[entry.record_id] = shown
                reported.append(ReportedEntry(entry, shown))
            continue
        if entry.record_id in owners:  # a reported result's id
            rejected.append(Rejected(shown, f"duplicate record_id {entry.record_id!r} "
                                     f"(also in {owners[entry.record_id]})"))
            continue
        loaded.append((shown, entry))
        paths[shown] = path
    # the one validation `validate` and `table` apply too
    good, refused, merges = accept(loaded)
    rejected += [Rejected(shown, reason) for shown, reason in refused]
    rejected.sort(key=lambda r: str(r.path))
    if notes is not None:
        notes += merges
    accepted = [(record, paths[shown]) for record, shown in good]
    return label_records(accepted), rejected


# ---- names, links, reproduce ---------------------------------------------------------------


def slug(text: str, used: set[str] | None = None) -> str:
    """A file-name- and id-safe name for a record string; a short hash keeps distinct ids apart."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:60] or "x"
    if safe != text or (used is not None and safe in used):
        safe = f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    if used is not None:
        used.add(safe)
    return safe


def reproduce_config(record: RunRecord) -> dict[str, Any]:
    """The run config that reproduces ``record``: method, dataset and metric options included
    (a metric option such as csim's frame_stride changes the number under the same id)."""
    options, held = hold_commands(record.record_id, record.method.id, record.method.options)
    return {
        "name": record.experiment,
        **({"from_record": held} if held else {}),  # a command is data here: see untrusted
        "methods": [{"id": record.method.id, "options": options}],
        "datasets": [{"id": record.dataset.id, "options": record.dataset.options}],
        "metrics": [
            {"id": metric_id, "options": result.options} if result.options else metric_id
            for metric_id, result in record.metrics.items()
        ],
        "seeds": list(record.seeds),
        "device": (record.provenance.device.split() or ["auto"])[0],
    }


def reproduce_command(record: RunRecord, config_name: str) -> str:
    """Shell lines: install the suite the record names (its commit, or its release), then run.

    Plugin distributions are never turned into install commands: a record is untrusted and
    its package names are data, listed apart by ``recorded_packages``."""
    prov = record.provenance
    lines = []
    if prov.git_commit and re.fullmatch(r"[0-9a-f]{7,64}", prov.git_commit):
        lines += [
            "# in a clone of the auhead-bench repository",
            f"git checkout {prov.git_commit}",
            "pip install -e .",
        ]
    else:
        lines.append(f"pip install {shlex.quote(f'auhead-bench=={prov.auhead_bench}')}")
    if hold_commands(record.record_id, record.method.id, record.method.options)[1]:
        lines.append(f"# {REVIEW} (from_record in the config); `run` refuses it until you "
                     "add --trust-commands")
    run_dir = f"runs/{Path(config_name).stem}"
    lines.append(f"auhead-bench run {shlex.quote(config_name)} --out {shlex.quote(run_dir)}")
    return "\n".join(lines)


def recorded_packages(record: RunRecord) -> list[dict[str, Any]]:
    """Every plugin distribution the record names (provenance and each component), as data:
    name, version, the entry points, and whether it is the suite or a known plugin."""
    refs = list(record.provenance.plugins)
    refs += [record.method.plugin, record.dataset.plugin]
    refs += [m.plugin for m in record.metrics.values() if m.plugin is not None]
    found: dict[tuple[str, str], set[str]] = {}
    for ref in refs:
        key = (ref.distribution or "(none)", ref.version or "")
        found.setdefault(key, set()).add(ref.entry_point)
    return [
        {
            "distribution": dist,
            "version": version,
            "entry_points": sorted(points),
            "known": dist in KNOWN_DISTRIBUTIONS,
        }
        for (dist, version), points in sorted(found.items())
    ]


# ---- rendering -----------------------------------------------------------------------------


def _environment(template: Path) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template)),
        autoescape=True,  # every template, whatever its name: record strings are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["tojson_text"] = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False)
    return env


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _sort_value(value: float | None) -> str:
    """What the sort script compares: a float literal, or '' (always sorted last)."""
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def _cell_view(cell: Cell, href: str, mark: int | None, skip_mark: int | None) -> dict[str, Any]:
    """A main-table cell: the value, its CI on a line below, n; an empty cell is a dash and,
    only where its column has several reasons, the mark of its own note."""
    return {
        "text": cell.number_text(),
        "ci": cell.ci_text(),
        "detail": cell.detail_text() if cell.value is not None else "",
        "tooltip": cell.tooltip(),
        "sort": _sort_value(cell.value),
        "best": cell.best,
        "empty": cell.value is None,
        "mark": mark,
        "skip_mark": skip_mark,
        "href": href,
    }


def _row_view(
    row: Row,
    index: int,
    report: Report,
    pages: dict[str, str],
    anchors: dict[str, str],
    marks: dict[tuple[int, str], int],
    notes: NoteBook,
) -> dict:
    page = pages[row.record.record_id]
    cost = row.cost
    cells = []
    for c in report.columns:
        cell = row.cells[c.metric_id]
        skipped = cell.value is not None and cell.n_skipped
        skip = notes.mark(cell.note_text() or "") if skipped else None
        href = f"records/{page}.html#metric-{anchors[c.metric_id]}"
        cells.append(_cell_view(cell, href, marks.get((index, c.metric_id)), skip))
    return {
        "label": row.label,
        "method": row.record.method.id,
        "options": row.record.method.options,
        "href": f"records/{page}.html",
        "reproduce": f"records/{page}.html#reproduce",
        "command": reproduce_command(row.record, f"{page}.yaml"),
        "seeds": row.record.seeds,
        "cells": cells,
        "spf": format_seconds(cost.seconds_per_frame) if cost.seconds_per_frame else "",
        "spf_sort": _sort_value(cost.seconds_per_frame),
        "mem": format_bytes(cost.peak_memory_bytes) if cost.peak_memory_bytes else "",
        "mem_sort": _sort_value(cost.peak_memory_bytes),
        "device": cost.device,
    }


def _default_order(rows: list[Row], report: Report) -> list[Row]:
    """Best first on the first metric column (its direction honoured), missing values last."""
    if not report.columns:
        return rows
    first = report.columns[0]
    sign = -1.0 if first.higher_is_better else 1.0

    def key(row: Row) -> tuple[int, float]:
        value = row.cells[first.metric_id].value
        return (1, 0.0) if value is None else (0, sign * value)

    return sorted(rows, key=key)


def _record_page(row: Row, report: Report, anchors: dict[str, str], page: str) -> dict:
    record = row.record
    config = reproduce_config(record)
    config_name = f"{page}.yaml"
    metrics = []
    for column in report.columns:
        result = record.metrics.get(column.metric_id)
        if result is None:
            continue
        cell = row.cells[column.metric_id]
        est = cell.estimate
        metrics.append(
            {
                "id": column.metric_id,
                "anchor": anchors[column.metric_id],
                "arrow": ARROW[result.higher_is_better],
                "status": result.status,
                "value": cell.value_text(),
                "ci": (
                    f"[{est.ci_low:.6g}, {est.ci_high:.6g}]"
                    if est.ci_low is not None and est.ci_high is not None
                    else (est.note or "")
                ),
                "seed_std": _fmt(est.seed_std),
                "per_seed": result.per_seed,
                "n": cell.n,  # independent clips, as in the main table
                "n_skipped": result.n_skipped,
                "reason": result.reason or "",
                "protocol": result.protocol,
                "plugin": result.plugin.model_dump() if result.plugin else None,
            }
        )
    clip_rows: dict[tuple[str, int], dict[str, Any]] = {}
    for metric_id, result in record.metrics.items():
        for clip in result.per_clip:
            entry = clip_rows.setdefault(
                (clip.clip_id, clip.seed),
                {"clip": clip.clip_id, "seed": clip.seed, "labels": clip.labels, "values": {}},
            )
            entry["values"][metric_id] = (
                _fmt(clip.value) if clip.value is not None else f"— {clip.reason or ''}"
            )
    generations = record.generations
    return {
        "row": row,
        "record": record,
        "metrics": metrics,
        "metric_ids": list(record.metrics),
        "clips": list(clip_rows.values())[:MAX_CLIP_ROWS],
        "clips_total": len(clip_rows),
        "max_clip_rows": MAX_CLIP_ROWS,
        "config_yaml": yaml.dump(config, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True),
        "config_href": f"../reproduce/{config_name}",
        "config_name": config_name,
        "command": reproduce_command(record, config_name),
        "packages": recorded_packages(record),
        "json_href": f"{page}.json",
        "n_ok": sum(g.status == "ok" for g in generations),
        "n_failed": sum(g.status == "failed" for g in generations),
        "errors": sorted({g.error for g in generations if g.error})[:20],
        "cost": row.cost,
        "spf": format_seconds(row.cost.seconds_per_frame) if row.cost.seconds_per_frame else "",
        "mem": format_bytes(row.cost.peak_memory_bytes) if row.cost.peak_memory_bytes else "",
    }


def _prepare_out(out: Path) -> None:
    """Create ``out`` or reuse a folder this builder made; never clobber anything else."""
    if out.exists() and not out.is_dir():
        raise BenchError("exists and is not a folder", path=out, fix="pass --out a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise BenchError(
            "folder is not empty and was not built by `auhead-bench leaderboard build`",
            path=out,
            fix="pass --out an empty or new folder",
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in MANAGED:  # a link is never followed: removing what it points at loses data
        if (out / name).is_symlink():
            raise BenchError(
                "is a symbolic link: the build replaces this folder and will not follow it",
                path=out / name,
                fix="remove the link (its target is kept) or pass --out a new folder",
            )
    for name in MANAGED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (out / MARKER).write_text("built by auhead-bench leaderboard build; safe to delete\n")


def _plots(
    accepted: list[LoadedRecord],
    report: Report,
    out: Path,
    pareto: Sequence[tuple[str, str]] | None,
    tradeoff: Sequence[tuple[str, str | None, list[str] | None]] | None,
    warnings: list[str],
    boot: dict[str, Any],
) -> list[dict[str, str]]:
    """Pareto and trade-off figures; a figure that cannot be drawn becomes a warning. Chosen
    without being told, they use only metrics that have values (reference rows aside), so an
    all-empty column never becomes an axis."""
    ids = [c.metric_id for c in report.columns]
    if pareto is None:
        filled = _filled_metrics(report, None)
        pareto = [(filled[0], filled[1])] if len(filled) >= 2 else []
    sweeps: list[tuple[str | None, str, str | None, list[str] | None]]
    if tradeoff is None:
        sweeps = [(method, param, None, None) for method, param in plotting.sweeps(accepted)]
    else:
        sweeps = [(None, param, x, ys) for param, x, ys in tradeoff]
    made: list[dict[str, str]] = []
    used: set[str] = set()
    for x, y in pareto:
        name = slug(f"pareto-{x}-{y}", used)
        try:
            plotting.plot_pareto(
                accepted, x=x, y=y, out=out / "plots" / name, reference_only=False, **boot
            )
        except BenchError as exc:
            warnings.append(f"pareto plot {x} vs {y} skipped: {one_line(exc)}")
            continue
        made.append({"title": f"Pareto front: {x} vs {y}", "name": name})
    for method, param, x, ys in sweeps:
        filled = _filled_metrics(report, method) if method else ids
        x_id = x or (filled[0] if filled else "")
        y_ids = ys or [i for i in filled if i != x_id][:2]
        if not x_id or not y_ids:
            warnings.append(f"trade-off plot over {param} skipped: under 2 metrics have values")
            continue
        name = slug(f"tradeoff-{method}-{param}" if method else f"tradeoff-{param}", used)
        try:
            plotting.plot_tradeoff(
                accepted,
                param=param,
                x=x_id,
                ys=y_ids,
                method=method,
                out=out / "plots" / name,
                **boot,
            )
        except BenchError as exc:
            warnings.append(f"trade-off plot over {param} skipped: {one_line(exc)}")
            continue
        made.append(
            {"title": f"Trade-off over {param}: {x_id} vs {', '.join(y_ids)}", "name": name}
        )
    return made


def _filled_metrics(report: Report, method: str | None) -> list[str]:
    """Metric ids with at least one value among non-reference rows (of ``method`` if given)."""
    rows = [
        r
        for r in report.rows
        if not is_reference(r.record) and (method is None or r.record.method.id == method)
    ]
    return [
        c.metric_id
        for c in report.columns
        if any(r.cells[c.metric_id].value is not None for r in rows)
    ]


def build_site(
    out: Path,
    *,
    results: Path | None = None,
    template: Path | None = None,
    plots: bool = True,
    pareto: Sequence[tuple[str, str]] | None = None,
    tradeoff: Sequence[tuple[str, str | None, list[str] | None]] | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    board: Board | None = None,
    flags: dict[str, Flag] | None = None,
    release: str | None = None,
    releases: Path | None = None,
    min_clips: int = MIN_CLIPS,
    metrics: Sequence[str] | None = None,
    decimals: dict[str, int] | int | None = None,
) -> Site:
    """Validate every record under ``results`` and write the static site to ``out``.

    With a ``board`` (``board.yaml``), records whose protocol differs from it go to an
    "other protocols" table, never ranked. Reported results (``kind: reported``) join the
    tables of their dataset, marked and unranked. ``flags`` grey their records. ``release``
    also writes an immutable ``out/releases/NAME/`` (see ``reporting.release``); the
    releases kept under ``releases`` are copied into the site and listed. ``metrics`` picks
    and orders the columns, ``decimals`` fixes decimals (all or per metric), ``min_clips`` is
    the fewest clips that get a CI (as ``auhead-bench table``).
    """
    from auhead_bench.reporting import board_site
    from auhead_bench.reporting import release as releasing

    results = Path(results) if results is not None else default_results_dir()
    template = Path(template) if template is not None else default_template_dir()
    if not (template / "index.html.j2").is_file():
        raise BenchError(
            "leaderboard template not found (index.html.j2 missing)",
            path=template,
            fix="pass --template the repository's leaderboard/template folder",
        )
    flags = dict(flags or {})
    out = Path(out)
    if release is not None:  # refuse before anything is written
        releasing.check_new(release, out, releases)
    merges: list[str] = []
    reported: list[ReportedEntry] = []
    accepted, rejected = collect(results, merges, reported)
    _prepare_out(out)
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "min_clips": min_clips}
    ranked, others = board_site.split_by_protocol(accepted, board)
    if metrics:  # every id must be in some record; each table shows those its records have
        known = {m for item in accepted for m in item.record.metrics}
        for metric_id in metrics:
            if metric_id not in known:
                raise unknown_metric(metric_id, sorted(known))

    def shown(items: list[LoadedRecord]) -> dict[str, Any]:
        have = {m for item in items for m in item.record.metrics}
        picked = [m for m in metrics if m in have] if metrics else None
        return {"metrics": picked or None, "decimals": decimals}

    report = build_report(ranked, by=(), **shown(ranked), **boot)
    board_site.mark_best(report, board, flags)
    other_report = (
        build_report([i for i, _ in others], by=(), **shown([i for i, _ in others]), **boot)
        if others
        else None
    )
    if other_report is not None:
        board_site.clear_best(other_report)
    site = Site(out=out, accepted=accepted, rejected=rejected, warnings=merges)
    site.ranked = ranked
    site.others = others
    site.reported = reported

    shutil.copytree(template / "assets", out / "assets")
    for sub in ("records", "reproduce", "downloads", "plots"):
        (out / sub).mkdir()
    used: set[str] = set()
    pages = {item.record.record_id: slug(item.record.record_id, used) for item in accepted}
    reported_pages = {e.result.record_id: slug(e.result.record_id, used) for e in reported}
    all_columns = board_site.columns(report, [e.result for e in reported], board)
    anchor_used: set[str] = set()
    anchor_ids = [c["id"] for c in all_columns]
    if other_report is not None:
        anchor_ids += [c.metric_id for c in other_report.columns if c.metric_id not in anchor_ids]
    anchors = {metric_id: slug(metric_id, anchor_used) for metric_id in anchor_ids}
    env = _environment(template)

    record_page = env.get_template("record.html.j2")
    for current in [report] + ([other_report] if other_report is not None else []):
        for row in current.rows:
            page = pages[row.record.record_id]
            context = _record_page(row, current, anchors, page)
            context["flag"] = board_site.flag_view(row.record.record_id, flags)
            context["differences"] = dict(
                (i.record.record_id, d) for i, d in others
            ).get(row.record.record_id, [])
            (out / "records" / f"{page}.html").write_text(
                record_page.render(root="../", **context)
            )
            # compact: the C encoder (indent makes json use its pure-Python one, 4x slower)
            (out / "records" / f"{page}.json").write_text(
                json.dumps(dump_record(row.record), ensure_ascii=False, separators=(",", ":"))
                + "\n"
            )
            (out / "reproduce" / f"{page}.yaml").write_text(context["config_yaml"])
    for entry in reported:
        (out / "records" / f"{reported_pages[entry.result.record_id]}.json").write_text(
            json.dumps(entry.result.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        )

    (out / "downloads" / "leaderboard.csv").write_text(to_csv(report, "main"))
    (out / "downloads" / "leaderboard.tex").write_text(to_latex(report, ["main"]))
    table = to_json(report, ["main"])
    for row in table["rows"]:  # a published file names no path of the machine that built it
        row["source"] = f"records/{pages[row['record_id']]}.json"
    (out / "downloads" / "leaderboard.json").write_text(
        json.dumps(table, indent=2, ensure_ascii=False) + "\n"
    )
    (out / "downloads" / "reported.json").write_text(
        json.dumps(
            [
                {**e.result.model_dump(mode="json"),
                 "source": f"records/{reported_pages[e.result.record_id]}.json"}
                for e in reported
            ],
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    if plots and len(ranked) > 0:
        site.plots = _plots(ranked, report, out, pareto, tradeoff, site.warnings, boot)

    column_ids = [c["id"] for c in all_columns]
    datasets = list(report.datasets)
    datasets += sorted({e.result.dataset for e in reported} - set(datasets))
    reproduced = list(report.rows) + (list(other_report.rows) if other_report else [])

    def views(
        rows: list[Row], current: Report, ids: list[str], notes: NoteBook
    ) -> tuple[list[dict[str, Any]], list[int | None]]:
        """Row views with cells in ``ids`` order, and each column's note mark (a column's
        missing values are explained once, in a note under the table)."""
        made = []
        known = {c.metric_id for c in current.columns}
        header_marks, cell_marks = empty_marks(rows, current.columns, notes)
        for index, row in enumerate(rows):
            view = _row_view(row, index, current, pages, anchors, cell_marks, notes)
            by_id = dict(zip([c.metric_id for c in current.columns], view["cells"], strict=True))
            view["cells"] = [
                by_id[m] if m in known else board_site.filler_cell(view["href"]) for m in ids
            ]
            view["flag"] = board_site.flag_view(row.record.record_id, flags)
            view["submission"] = board_site.submission_view(row)
            made.append(view)
        return made, [header_marks.get(m) for m in ids]

    tables = []
    for dataset in datasets:
        rows = _default_order([r for r in report.rows if r.dataset == dataset], report)
        notes = NoteBook()
        row_views, header_marks = views(rows, report, column_ids, notes)
        tables.append(
            {
                "dataset": dataset,
                "anchor": slug(f"dataset-{dataset}"),
                "rows": row_views,
                "header_marks": header_marks,
                "notes": [{"n": n, "text": text} for text, n in notes.numbers.items()],
                "reported": [
                    {
                        **board_site.reported_view(
                            e.result,
                            reported_pages[e.result.record_id],
                            column_ids,
                            [r for r in reproduced if r.dataset == dataset],
                        ),
                        "flag": board_site.flag_view(e.result.record_id, flags),
                    }
                    for e in reported
                    if e.result.dataset == dataset
                ],
            }
        )
    other_table = None
    if other_report is not None:
        other_ids = [c.metric_id for c in other_report.columns]
        differences = {item.record.record_id: d for item, d in others}
        other_notes = NoteBook()
        other_rows, other_marks = views(list(other_report.rows), other_report, other_ids,
                                        other_notes)
        for view, row in zip(other_rows, other_report.rows, strict=True):
            view["dataset"] = row.dataset
            view["differences"] = differences[row.record.record_id]
        other_table = {
            "columns": [
                {"id": c.metric_id, "arrow": c.arrow, "higher": c.higher_is_better}
                for c in other_report.columns
            ],
            "rows": other_rows,
            "header_marks": other_marks,
            "notes": [{"n": n, "text": text} for text, n in other_notes.numbers.items()],
        }
    releases_info = releasing.publish_existing(out, releases)
    for item in releases_info:
        if item["changed"]:
            site.warnings.append(
                f"release {item['name']}: {len(item['changed'])} file(s) differ from its "
                f"MANIFEST.sha256 (first: {item['changed'][0]}); a release is never rewritten"
            )
    index = env.get_template("index.html.j2").render(
        root="",
        columns=all_columns,
        tables=tables,
        has_time=report.has_time,
        has_memory=report.has_memory,
        plots=site.plots,
        rejected=rejected,
        warnings=site.warnings,
        n_records=len(accepted),
        n_reported=len(reported),
        level=level,
        n_boot=n_boot,
        other_table=other_table,
        board_name=board.name if board is not None else "",
        release=releasing.label(release),
        releases=releases_info,
        min_clips=min_clips,
        reading=reading_notes(report, "[k]: note k under the table"),
        references=reference_notes(report),
        small_n=report.small_n_warning(),
    )
    (out / "index.html").write_text(index)
    if release is not None:
        site.release = releasing.write_release(
            release, out, results=results, board=board, flags=flags, releases=releases
        )
    return site


# ---- preview server ------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    """Static files with headers that keep a browser from guessing types or running inline JS."""

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(site: Path, port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for ``site`` on 127.0.0.1 only: a preview, never a public server."""
    site = Path(site)
    if not (site / "index.html").is_file():
        raise BenchError(
            "no index.html: not a built leaderboard site",
            path=site,
            fix="run `auhead-bench leaderboard build --out SITE` first",
        )
    handler = functools.partial(_Handler, directory=str(site))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise BenchError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror})", fix="pass another --port"
        ) from None
