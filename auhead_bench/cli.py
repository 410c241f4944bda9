"""The ``auhead-bench`` command line. Errors the user can fix print as one line, exit code 2."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import click

from auhead_bench.config import INTERMEDIATES, OVERWRITE_POLICIES
from auhead_bench.errors import BenchError, one_line


def _split(value: str | None) -> list[str] | None:
    return [item.strip() for item in value.split(",") if item.strip()] if value else None


INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
TERMINATED_EXIT = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM of a run, raised like Ctrl-C so that every cleanup runs (an external tool's
    process group is killed, its work folder removed) instead of the process just ending."""


def _terminate(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the cleanup finish
    raise Terminated


# Commands imported on first use, so `auhead-bench --help` needs neither pandas nor matplotlib:
# name -> (module, attribute, the short help `--help` shows; a test keeps it the command's own).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "table": (
        "auhead_bench.reporting.commands", "table",
        "Methods x metrics from RUN_DIR... (run folders, record folders or record files).",
    ),
    "plot": ("auhead_bench.reporting.commands", "plot", "Figures from run records (PNG and SVG)."),
    "leaderboard": (
        "auhead_bench.reporting.commands", "leaderboard",
        "Build or preview the static leaderboard site.",
    ),
}


class _Group(click.Group):
    """Turns BenchError into a one-line message instead of a traceback, and Ctrl-C into a
    hint and exit code 130 instead of click's bare "Aborted!" and 1. Commands in
    ``LAZY_COMMANDS`` are imported when used, not when listed."""

    _plugins_loaded = False
    _listing: dict[str, str] | None = None  # plugin command -> help, from the listing cache

    def load_plugin_commands(self) -> None:
        """Add the commands plugins register (once), and cache their names and help so the
        next `--help` lists them without importing any plugin."""
        if self._plugins_loaded:
            return
        from auhead_bench.plugins import add_plugin_commands, command_entry_points

        self._plugins_loaded = True
        eps = command_entry_points()
        before = set(self.commands)
        for error in add_plugin_commands(self, eps):
            logging.getLogger("auhead_bench").warning("%s", error)
        added = {
            name: self.commands[name].short_help or self.commands[name].help or ""
            for name in set(self.commands) - before if not self.commands[name].hidden
        }
        _save_listing(eps, added)

    def _plugin_listing(self) -> dict[str, str]:
        if not self._plugins_loaded and self._listing is None:
            self._listing = _cached_listing()
        if self._listing is None:
            self.load_plugin_commands()
            return {}
        return self._listing

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugin = self._plugin_listing()
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS) | set(plugin))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            import importlib

            module, attr, _ = LAZY_COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        if cmd_name not in self.commands:
            self.load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        stand_ins = {name: text for name, (_, _, text) in LAZY_COMMANDS.items()}
        stand_ins.update(self._listing or {})
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                if not self.commands[name].hidden:
                    rows.append((name, self.commands[name].get_short_help_str(limit)))
            elif name in stand_ins:
                stand_in = click.Command(name, help=stand_ins[name])
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            click.echo(f"error: {one_line(exc)}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt as exc:
            # Records, generations and features are written atomically as each finishes,
            # so re-running with --overwrite only-missing (the default) picks up the rest.
            hint = "; run the same command to resume" if ctx.invoked_subcommand == "run" else ""
            click.echo(f"\ninterrupted{hint}", err=True)
            ctx.exit(TERMINATED_EXIT if isinstance(exc, Terminated) else INTERRUPTED_EXIT)


@click.group(cls=_Group)
@click.version_option(package_name="auhead-bench")
def cli() -> None:
    """Benchmark emotional talking-head generators: methods x datasets x seeds -> records."""


def _run_help() -> str:
    """`run --help`: the overwrite policies come from the one table the runner follows."""
    lines = [
        "Run CONFIG (YAML), or the built-in demo benchmark when no CONFIG is given.",
        "",
        "--sweep OPTION=V1,V2,... makes one work unit (one record) per value for every listed "
        "method that has OPTION; several --sweep flags form a grid. They extend the config's "
        "top-level `sweep:` and override a method's own `sweep:` of the same option.",
        "",
        "\b",
        "--overwrite (config `overwrite:`), per generation and record:",
    ]
    for name, text in OVERWRITE_POLICIES.items():
        lines += textwrap.wrap(
            text,
            width=78,
            initial_indent=f"  {name:<14}",
            subsequent_indent=" " * 16,
            break_on_hyphens=False,
        )
    return "\n".join(lines)


@cli.command(help=_run_help())
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for records/, table.md and table.csv.",
)
@click.option("--methods", help="Comma-separated method ids (overrides the config).")
@click.option("--datasets", help="Comma-separated dataset ids (overrides the config).")
@click.option("--metrics", help="Comma-separated metric ids (overrides the config).")
@click.option("--seeds", help="Comma-separated integer seeds (overrides the config).")
@click.option("--device", help="cpu, cuda, cuda:1 or auto (overrides the config).")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    help="Cache root (default $AUHEAD_BENCH_CACHE or ~/.cache/auhead-bench).",
)
@click.option(
    "--skip-bad-clips/--no-skip-bad-clips",
    default=None,
    help="Leave out unreadable clips instead of stopping.",
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="OPTION=V1,V2,...",
    help="Sweep a method option (repeat for a grid); values are read as YAML scalars.",
)
@click.option(
    "--overwrite",
    type=click.Choice(list(OVERWRITE_POLICIES)),
    help="What to make again (overrides the config; default only-missing). See above.",
)
@click.option(
    "--intermediate",
    type=click.Choice(list(INTERMEDIATES)),
    help="How prepared clips are encoded: x264_crf18 (default) or lossless (FFV1, 21-27x "
    "the disk); overrides the config.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="Where generation and feature work runs (overrides the config; default local).",
)
@click.option(
    "--address",
    "ray_address",
    metavar="ADDRESS",
    help="Ray cluster to join, e.g. auto or ray://HOST:10001 (default: start a local one).",
)
@click.option(
    "--clips-per-task",
    type=click.IntRange(min=1),
    help="Ray: clips of one dataset per task (default 8).",
)
@click.option(
    "--trust-commands",
    is_flag=True,
    help="Run a config made from a submitted record (leaderboard reproduce) although its "
    "method runs the submitter's command; review from_record in it first.",
)
def run(
    config: Path | None,
    out_dir: Path,
    methods: str | None,
    datasets: str | None,
    metrics: str | None,
    seeds: str | None,
    device: str | None,
    cache_dir: Path | None,
    skip_bad_clips: bool | None,
    sweeps: tuple[str, ...],
    overwrite: str | None,
    intermediate: str | None,
    executor: str | None,
    ray_address: str | None,
    clips_per_task: int | None,
    trust_commands: bool,
) -> None:
    from auhead_bench.config import load_config, parse_sweep
    from auhead_bench.runner import Runner
    from auhead_bench.table import availability, summary
    from auhead_bench.untrusted import trusted

    try:
        seed_list = [int(s) for s in _split(seeds)] if seeds else None
    except ValueError:
        raise click.BadParameter(
            f"{seeds!r} is not a comma-separated list of integers", param_hint="--seeds"
        ) from None
    overrides = {
        "methods": _split(methods),
        "datasets": _split(datasets),
        "metrics": _split(metrics),
        "seeds": seed_list,
        "device": device,
        "cache_dir": cache_dir,
        "skip_bad_clips": skip_bad_clips,
        "overwrite": overwrite,
        "intermediate": intermediate,
        "executor": executor,
        "ray_address": ray_address,
        "clips_per_task": clips_per_task,
        "sweep": parse_sweep(sweeps),
    }
    run_config = trusted(load_config(config, overrides), trust_commands, config)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main else None
    try:
        records = Runner(run_config, out_dir, config_path=config).run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    click.echo(summary(records))
    click.echo(availability(records))
    click.echo(f"wrote {len(records)} records to {out_dir / 'records'}; full table: "
               f"{out_dir / 'table.md'}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Installed plugins: distribution, version, hooks and load errors."""
    from auhead_bench.plugins import get_registry

    registry = get_registry()
    rows = [p.as_dict() for p in registry.plugins]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        status = "ok" if not row["errors"] else "BROKEN"
        click.echo(
            f"{row['name']:<22} {row['distribution'] or '?'} {row['version'] or '?'}"
            f"  [{status}]  hooks: {', '.join(row['hooks']) or '-'}"
        )
        for error in row["errors"]:
            click.echo(f"    error: {error}")


KINDS = {"methods": "method", "metrics": "metric", "datasets": "dataset", "extractors": "extractor"}


def _choices(annotation: Any) -> tuple[list[Any] | None, bool]:
    """The values a ``Literal`` (or ``Literal | None``) option allows, and whether None is one."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return list(typing.get_args(annotation)), False
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and typing.get_origin(args[0]) is typing.Literal:
            return list(typing.get_args(args[0])), len(args) < len(typing.get_args(annotation))
    return None, False


def _type_name(annotation: Any) -> str:
    choices, optional = _choices(annotation)
    if choices is not None:
        text = "one of " + ", ".join(repr(c) for c in choices)
        return text + " or None" if optional else text
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _option_rows(model: Any) -> dict[str, Any]:
    """Each field of an options model; a nested options model lists its own under "options"."""
    from pydantic import BaseModel

    options = {}
    for name, field in model.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        row = {
            "type": _type_name(field.annotation),
            "choices": _choices(field.annotation)[0],
            "default": default,
            "required": field.is_required(),
            "description": field.description,
        }
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            row["default"] = None if default is None else default.model_dump(mode="json")
            row["options"] = _option_rows(field.annotation)
        options[name] = row
    return options


def _describe(entry: Any) -> dict[str, Any]:
    cls = entry.cls
    row = {
        "id": cls.id,
        "description": cls.description,
        "version": cls.version,
        "options": _option_rows(cls.Options),
        "plugin": entry.plugin.name,
        "distribution": entry.plugin.distribution,
    }
    if entry.kind == "metric":
        row["higher_is_better"] = cls.higher_is_better
        row["needs"] = list(cls.needs)
    return row


@cli.command("ls")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_plugins(kind: str, as_json: bool) -> None:
    """List METHODS, METRICS, DATASETS or EXTRACTORS with their options."""
    from auhead_bench.plugins import get_registry

    registry = get_registry()
    rows = [_describe(registry.get(KINDS[kind], i)) for i in registry.ids(KINDS[kind])]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        arrow = ""
        if "higher_is_better" in row:
            arrow = " (↑ higher is better)" if row["higher_is_better"] else " (↓ lower is better)"
        click.echo(textwrap.fill(f"{row['id']}{arrow}: {row['description']}", width=100,
                                 subsequent_indent="      "))
        _echo_options(row["options"], "")


def _echo_options(options: dict[str, Any], prefix: str) -> None:
    """``--name: type, default`` and the description; nested options as ``--outer.name``."""
    for name, spec in options.items():
        if "options" in spec:
            click.echo(f"    --{prefix}{name}: {spec['type']} (nested options below)")
        else:
            default = "required" if spec["required"] else f"default {spec['default']!r}"
            click.echo(f"    --{prefix}{name}: {spec['type']}, {default}")
        if spec["description"]:
            click.echo(textwrap.fill(spec["description"], width=100,
                                     initial_indent=" " * 8, subsequent_indent=" " * 8))
        if "options" in spec:
            _echo_options(spec["options"], f"{prefix}{name}.")


@cli.command("label-aus")
@click.argument("config", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for <clip_id>.csv label files (a dataset's au_labels_dir).")
@click.option("--extractor", default=None,
              help="FACS AU extractor id (`auhead-bench ls extractors`; default py-feat's).")
@click.option("--unmapped", type=click.Choice(["zero", "nan"]), default="zero",
              show_default=True,
              help="Value of the FEAFA+ AUs FACS cannot express (jaw thrust, lip slides, "
              "lower lip depress, pucker, cheek puff): 0 (at rest; `train stage1` skips "
              "chunks with NaN) or NaN (not measured).")
def label_aus(config: Path, out_dir: Path, extractor: str | None, unmapped: str) -> None:
    """Per-clip FEAFA+ AU label files for CONFIG's datasets, from py-feat's FACS AUs.

    Runs the extractor through the feature store (cached, shared with runs); resumable: rerun
    the same command and finished clips are kept. Map and limits: auhead_bench/labeling.py.
    """
    from auhead_bench.labeling import DEFAULT_EXTRACTOR, label_clips

    manifest = label_clips(config, out_dir, extractor or DEFAULT_EXTRACTOR, unmapped)
    clips = manifest["clips"]
    failed = {k: v["error"] for k, v in clips.items() if "error" in v}
    click.echo(f"wrote {len(clips) - len(failed)} label files to {out_dir}"
               + (f"; {len(failed)} clip(s) without labels (see {out_dir / 'labels.json'})"
                  if failed else ""))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check run record files as `table` and `leaderboard build` do (schema, provenance, values
    that are the means of their per-clip values, metric ids, one file per record id); exit 1
    if any is invalid."""
    from auhead_bench.records import load_record
    from auhead_bench.validation import accept

    errors: dict[Path, str] = {}
    loaded = []
    files = tuple(dict.fromkeys(files))  # a file named twice is one file
    for path in files:
        try:
            loaded.append((path, load_record(path)))
        except BenchError as exc:
            errors[path] = one_line(exc)
    for path, reason in accept(loaded)[1]:  # the one validation the table and board apply
        errors[path] = f"{path}: {reason}"
    results = [
        {"file": str(p), "valid": p not in errors, "error": errors.get(p)} for p in files
    ]
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            click.echo(f"ok: {r['file']}" if r["valid"] else f"invalid: {r['error']}")
    if not all(r["valid"] for r in results):
        sys.exit(1)


@cli.command()
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option("--metrics", help="Checks or metric ids, comma-separated (default: every check).")
@click.option("--clips", type=click.IntRange(min=1), default=4, show_default=True,
              help="Clips per dataset to compare on.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("parity"),
              show_default=True, help="Folder for the run, the reference tools' files and "
              "parity.json.")
@click.option("--sample", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A file with documented values (syncnet_python's example.avi) to check too.")
@click.option("--device", help="cpu, cuda, cuda:N or auto (default: the config's).")
@click.option("--list", "list_only", is_flag=True, help="List the checks and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print parity.json instead of the table.")
@click.option("--allow-empty", is_flag=True, help="Exit 0 even when a check compared no clip "
              "(both sides left every clip out); such a check is never a pass.")
def parity(
    config: Path | None,
    metrics: str | None,
    clips: int,
    out_dir: Path,
    sample: Path | None,
    device: str | None,
    list_only: bool,
    as_json: bool,
    allow_empty: bool,
) -> None:
    """Our metrics next to the reference tools on the same files; exit 1 if any differs or
    compared no clip (``NOT COMPARED``: both sides left every clip out; see --allow-empty).

    Runs CONFIG's methods (default: the demo) on --clips clips with each checked metric, then
    each reference tool (pytorch-fid, the syncnet_python pipeline, ...) on exactly the files
    our metric scored, and prints |ours - theirs| per check with pass/fail at its tolerance.
    Needs the real weights (`auhead-bench weights pull`) for meaningful numbers.
    """
    from auhead_bench.config import load_config
    from auhead_bench.parity import collect_checks, format_rows, run_parity
    from auhead_bench.plugins import get_registry
    from auhead_bench.untrusted import trusted

    registry = get_registry()
    if list_only:
        for check in collect_checks(registry):
            missing = check.missing()
            note = f"  [install {' '.join(missing)}]" if missing else ""
            click.echo(f"{check.id:<26} {check.metric:<28} {check.reference}{note}")
        return
    # a config made from a record runs its method: refused as `run` refuses it
    run_config = trusted(load_config(config, {"device": device}), False, config)
    report = run_parity(
        run_config, out_dir, wanted=_split(metrics), clips=clips, sample=sample,
        registry=registry, config_path=config, say=lambda m: click.echo(m, err=True),
        allow_empty=allow_empty,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    from auhead_bench.cache import write_json_atomic

    write_json_atomic(out_dir / "parity.json", report.as_dict())
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for line in format_rows(report.rows):
            click.echo(line)
        for s in report.samples:
            verdict = "PASS" if s["passed"] else "FAIL"
            click.echo(f"{verdict:<12} {s['check']:<24} {Path(s['file']).name}: {s['name']} "
                       f"ours {s['ours']:.4f} documented {s['documented']:.4f} "
                       f"(+-{s['tolerance']:g}, {s['source']})")
        verdict = "all checks pass" if report.passed else "some checks did not pass"
        if report.not_compared:
            verdict += (f"; {report.not_compared} compared no clip (NOT COMPARED"
                        + (", allowed by --allow-empty)" if allow_empty else
                           ": pass --allow-empty to accept, or use clips both sides score)"))
        click.echo(f"{verdict}; details in {out_dir / 'parity.json'}")
    if not report.passed:
        sys.exit(1)


@cli.command()
@click.option(
    "--reported",
    is_flag=True,
    help="The schema of reported results (numbers quoted from papers, kind: reported).",
)
def schema(reported: bool) -> None:
    """Print the JSON Schema of run records."""
    if reported:
        from auhead_bench.reporting.reported import json_schema as reported_schema

        click.echo(json.dumps(reported_schema(), indent=2))
        return
    from auhead_bench.records import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@cli.group()
def cache() -> None:
    """Inspect the cache."""


@cache.command("info")
@click.option("--cache-dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def cache_info(cache_dir: Path | None, as_json: bool) -> None:
    """Entries and size per kind."""
    from auhead_bench.cache import DEFAULT_CACHE, Cache

    store = Cache(cache_dir or DEFAULT_CACHE)
    store.repair_index()  # rows a kill or a full disk skipped
    summary = store.summary()
    if as_json:
        click.echo(json.dumps({"root": str(store.root), "kinds": summary}, indent=2))
        return
    click.echo(f"cache: {store.root}")
    for kind, stats in summary.items():
        click.echo(f"  {kind:<12} {stats['entries']:>6} entries  {stats['bytes'] / 1e6:10.1f} MB")


@cli.group()
def weights() -> None:
    """Model weights that plugins declare: list, pull (download once), verify."""


@weights.command("list")
@click.option("--json", "as_json", is_flag=True)
def weights_list(as_json: bool) -> None:
    """Every declared weight file, where it comes from, and whether it is cached here."""
    from auhead_bench.weights import is_cached, local_path, registered_weights

    rows = [
        {"name": s.name, "file": s.filename, "source": s.source, "sha256": s.sha256,
         "licence": s.licence, "description": s.description,
         "cached": is_cached(s), "path": str(local_path(s))}
        for s in registered_weights().values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "cached " if row["cached"] else "missing"
        line = f"{mark}  {row['name']:<30} {row['description']}"
        click.echo(line if len(line) <= 100 else line[:99] + "…")
    click.echo("(--json adds sources, sha256, licences and paths)")


def _specs(names: tuple[str, ...]):
    from auhead_bench.errors import UnknownPluginError
    from auhead_bench.weights import registered_weights

    specs = registered_weights()
    for name in names:
        if name not in specs:
            raise UnknownPluginError("weights", name, specs, "`auhead-bench weights list`")
    return [specs[n] for n in names] if names else list(specs.values())


@weights.command("pull")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download again even if cached.")
def weights_pull(names: tuple[str, ...], force: bool) -> None:
    """Download NAMES (all declared weights without NAMES) into the weights cache."""
    from auhead_bench.weights import pull

    for spec in _specs(names):
        click.echo(f"{spec.name}: {pull(spec, force=force)}")


@weights.command("verify")
@click.argument("names", nargs=-1)
def weights_verify(names: tuple[str, ...]) -> None:
    """Check cached files against their sha256; exit 1 if any is missing or differs."""
    from auhead_bench.metric import NotComputed
    from auhead_bench.weights import locate

    bad = 0
    for spec in _specs(names):
        try:
            click.echo(f"ok       {spec.name}: {locate(spec)}")
        except NotComputed as exc:
            bad += 1
            click.echo(f"problem  {exc}")
    if bad:
        sys.exit(1)


def _listing_path() -> Path:
    from auhead_bench.cache import DEFAULT_CACHE

    return DEFAULT_CACHE / "cli-commands.json"


def _cached_listing() -> dict[str, str] | None:
    """Plugin commands' names and help as last loaded, if the command plugins are unchanged
    (``commands_fingerprint``); None otherwise (then they are loaded and listed again)."""
    from auhead_bench.plugins import command_entry_points, commands_fingerprint

    try:
        saved = json.loads(_listing_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("commands"), dict):
        return None
    if saved.get("key") != commands_fingerprint(command_entry_points()):
        return None
    return {str(k): str(v) for k, v in saved["commands"].items()}


def _save_listing(eps: list[Any], commands: dict[str, str]) -> None:
    import os

    from auhead_bench.plugins import commands_fingerprint

    path = _listing_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.write_text(json.dumps({"key": commands_fingerprint(eps), "commands": commands}))
        os.replace(staged, path)
    except OSError:  # a read-only home: --help just loads the command plugins every time
        pass


def _add_plugin_commands() -> None:
    """Commands that plugins add (``register_commands``), from only the plugin modules that
    declare that hook: listing commands must not import torch or py-feat. `main` leaves this
    to the group, which does it when a command is not found or no cached listing is valid."""
    cli.load_plugin_commands()


PROG_NAME = "auhead-bench"
SCORING_COMMANDS = {"run", "parity"}  # long runs of many frames (see auhead_bench.malloc)


def main() -> None:
    """The command line in this process (scripts and tests call it after their own setup)."""
    # Plugins warn through `logging` (e.g. a dataset skipping a wrongly named file).
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    # The name --help and usage lines show: click would take it from argv[0], which is
    # "python -m auhead_bench.cli" after the huge-pages restart (auhead_bench.malloc) or when
    # run as a module, and users type `auhead-bench`.
    cli(prog_name=PROG_NAME)


def entry() -> None:
    """The `auhead-bench` executable (and `python -m auhead_bench.cli`): scoring commands
    let idle OpenMP workers sleep and restart once with glibc's huge pages for malloc
    (``auhead_bench.malloc``), then ``main``."""
    if len(sys.argv) > 1 and sys.argv[1] in SCORING_COMMANDS:
        # Idle OpenMP workers (torch's) sleep instead of spinning: between the small torch
        # calls of a chunked run they spun on the second core beside dlib, ffmpeg and x264
        # (~9 s of CPU on the cold demo, bench/README.md). Read when torch loads, so set here.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from auhead_bench.malloc import with_huge_pages

        with_huge_pages(sys.argv[1:])
    main()


if __name__ == "__main__":
    entry()
