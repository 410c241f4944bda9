"""Click commands: ``table``, ``plot tradeoff|pareto``, ``leaderboard build|serve``.

The lead attaches them to the ``auhead-bench`` group with ``cli.add_command``. Heavy imports
(pandas, matplotlib, jinja2) happen inside the commands so ``auhead-bench --help`` stays fast.
A BenchError becomes the same one-line ``error: ...`` (exit 2) that the core CLI prints, also
when these commands run on their own (tests, other entry points).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from auhead_bench.errors import BenchError, one_line

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A BenchError shown as one line, exit code 2, like the core CLI."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def friendly(func: F) -> F:
    """Turn BenchError into UserError so no traceback reaches the user."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BenchError as exc:
            raise UserError(one_line(exc)) from None

    return wrapper  # type: ignore[return-value]


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


_boot_options = [
    click.option(
        "--n-boot", default=2000, show_default=True, help="Bootstrap resamples for the CIs."
    ),
    click.option("--level", default=0.95, show_default=True, help="Confidence level of the CIs."),
    click.option(
        "--min-clips",
        default=10,
        show_default=True,
        help="Fewest clips that get a CI and a p-value; fewer show 'n too small' (README: "
        "Reports says why 10).",
    ),
]
_display_options = [
    click.option(
        "--metrics",
        "metrics",
        help="Metric ids to show, comma-separated, in this order (default: every metric).",
    ),
    click.option(
        "--decimals",
        help="Fixed decimals: N for every metric, or METRIC=N,... per metric (default: 4 "
        "significant digits, so a small value never prints as 0.0000).",
    ),
]


def boot_options(func: F) -> F:
    for option in reversed(_boot_options):
        func = option(func)
    return func


def display_options(func: F) -> F:
    for option in reversed(_display_options):
        func = option(func)
    return func


def _write(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as exc:
        raise BenchError(f"cannot write ({exc.strerror})", path=out) from None
    click.echo(f"wrote {out}", err=True)


# ---- table ---------------------------------------------------------------------------------


@click.command("table")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "latex", "json"]),
    default="md",
    show_default=True,
)
@click.option(
    "--view",
    "views",
    multiple=True,
    type=click.Choice(["main", "compare", "emotion", "intensity"]),
    help="Sections to show (repeatable). Default: every section the records support; CSV: main.",
)
@click.option(
    "--baseline",
    help="Experiment (e.g. static_frame) to test every method against, paired by clip: the "
    "difference with its bootstrap CI and an exact sign-flip p-value (none under --min-clips).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write to this file instead of stdout."
)
@click.option(
    "--layout",
    type=click.Choice(["auto", "wide", "tall"]),
    default="auto",
    show_default=True,
    help="LaTeX main table: methods as rows (wide) or metrics as rows (tall, for many "
    "metrics in a paper column); auto picks the narrower.",
)
@display_options
@boot_options
@friendly
def table(
    run_dirs: tuple[Path, ...],
    fmt: str,
    views: tuple[str, ...],
    baseline: str | None,
    out: Path | None,
    layout: str,
    metrics: str | None,
    decimals: str | None,
    n_boot: int,
    level: float,
    min_clips: int,
) -> None:
    """Methods x metrics from RUN_DIR... (run folders, record folders or record files).

    Each cell: value [CI low, high] (bootstrap over clips), n (independent clips), the
    spread over seeds where there are several; with fewer than --min-clips clips no CI and no
    p-value ("n too small", and a warning on stderr). A column's missing values and skipped
    clips point to a numbered note with the whole reason. Best real method per column in
    bold (reference rows such as ground_truth never are).

    A file that is not a readable record (a folder or FIFO named *.json, bad JSON, an invalid
    record) is listed on stderr as "skipped FILE: reason" and left out; the exit code is 0 when
    at least one record was read, 2 when none was.
    """
    from auhead_bench.reporting.inputs import Skipped, load_runs
    from auhead_bench.reporting.tables import build_report, parse_decimals, render

    skipped: list[Skipped] = []
    notes: list[str] = []
    loaded = load_runs(run_dirs, skipped, notes)
    for item in skipped:
        click.echo(f"skipped {item.path}: {item.reason}", err=True)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    by = [v for v in ("emotion", "intensity") if not views or v in views]
    report = build_report(
        loaded,
        baseline=baseline,
        by=by,
        n_boot=n_boot,
        level=level,
        min_clips=min_clips,
        metrics=_split(metrics) or None,
        decimals=parse_decimals(decimals),
    )
    warning = report.small_n_warning()
    if warning:
        click.echo(warning, err=True)
    _write(render(report, fmt, list(views) or None, layout), out)


# ---- plot ----------------------------------------------------------------------------------


@click.group("plot")
def plot() -> None:
    """Figures from run records (PNG and SVG)."""


def _prefix(out: Path | None, run_dirs: tuple[Path, ...], name: str) -> Path:
    if out is not None:
        return out
    first = run_dirs[0]
    base = first if first.is_dir() else first.parent
    return base / "plots" / name


@plot.command("tradeoff")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--param", required=True, help="The method option swept (e.g. s_au).")
@click.option("--x", "x", required=True, help="Metric id on the x axis (e.g. fid).")
@click.option("--y", "y", required=True, help="Metric ids, comma-separated: one panel each.")
@click.option("--method", help="Only this method id (default: every method with --param).")
@click.option("--dataset", help="Only this dataset id.")
@click.option(
    "--chosen",
    help="Option value to mark as chosen (YAML: 3.5, null). Default: the record run with "
    "the method's default options.",
)
@click.option("--title", help="Figure title.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Output path without suffix; .png and .svg are written. "
    "Default: RUN_DIR/plots/tradeoff-PARAM.",
)
@boot_options
@friendly
def tradeoff(
    run_dirs: tuple[Path, ...],
    param: str,
    x: str,
    y: str,
    method: str | None,
    dataset: str | None,
    chosen: str | None,
    title: str | None,
    out: Path | None,
    n_boot: int,
    level: float,
    min_clips: int,
) -> None:
    """Trade-off over a method option (the paper's Figure 3): x metric against each y metric.

    Records of the same method and dataset that differ only in --param form a curve; each
    point carries its CI on both axes; the chosen setting is circled.
    """
    from auhead_bench.reporting.inputs import load_runs
    from auhead_bench.reporting.plots import _UNSET, parse_option_value, plot_tradeoff

    loaded = load_runs(run_dirs)
    paths = plot_tradeoff(
        loaded,
        param=param,
        x=x,
        ys=_split(y),
        out=_prefix(out, run_dirs, f"tradeoff-{param}"),
        chosen=_UNSET if chosen is None else parse_option_value(chosen),
        method=method,
        dataset=dataset,
        title=title,
        n_boot=n_boot,
        level=level,
        min_clips=min_clips,
    )
    for path in paths:
        click.echo(f"wrote {path}")


@plot.command("pareto")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--x", "x", required=True, help="Metric id on the x axis.")
@click.option("--y", "y", required=True, help="Metric id on the y axis.")
@click.option("--dataset", help="Only this dataset id (default: one panel per dataset).")
@click.option("--title", help="Figure title.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Output path without suffix; .png and .svg are written. "
    "Default: RUN_DIR/plots/pareto-X-Y.",
)
@boot_options
@friendly
def pareto(
    run_dirs: tuple[Path, ...],
    x: str,
    y: str,
    dataset: str | None,
    title: str | None,
    out: Path | None,
    n_boot: int,
    level: float,
    min_clips: int,
) -> None:
    """Methods on two metrics with CIs; the Pareto front (each metric's direction) joined.

    Reference rows (ground_truth, static_frame) are left out: a front of bounds says nothing
    about the methods. Records of reference methods alone are drawn without a front.
    """
    from auhead_bench.reporting.inputs import load_runs
    from auhead_bench.reporting.plots import plot_pareto

    loaded = load_runs(run_dirs)
    paths = plot_pareto(
        loaded,
        x=x,
        y=y,
        out=_prefix(out, run_dirs, f"pareto-{x}-{y}"),
        dataset=dataset,
        title=title,
        n_boot=n_boot,
        level=level,
        min_clips=min_clips,
    )
    for path in paths:
        click.echo(f"wrote {path}")


# ---- leaderboard ---------------------------------------------------------------------------


@click.group("leaderboard")
def leaderboard() -> None:
    """Build or preview the static leaderboard site."""


def _pairs(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        parts = _split(value)
        if len(parts) != 2:
            raise BenchError(
                f"--pareto {value!r} is not two metric ids", fix="e.g. --pareto fid,lse_c"
            )
        out.append((parts[0], parts[1]))
    return out


def _tradeoffs(values: tuple[str, ...]) -> list[tuple[str, str | None, list[str] | None]]:
    out = []
    for value in values:
        param, _, rest = value.partition(":")
        x, _, ys = rest.partition(":")
        if not param or (rest and not (x and ys)):
            raise BenchError(
                f"--tradeoff {value!r} is not PARAM or PARAM:X:Y1,Y2",
                fix="e.g. --tradeoff s_au:fid:emotion_acc,au_mae",
            )
        out.append((param, x or None, _split(ys) or None))
    return out


def board_options(func: F) -> F:
    """--board / --no-board / --flags, shared by build and check."""
    func = click.option(
        "--flags",
        "flags_path",
        type=click.Path(path_type=Path),
        help="Flags file: record id -> reason, link (default: the repository's "
        "leaderboard/flags.yaml, if present).",
    )(func)
    func = click.option(
        "--no-board", is_flag=True, help="Rank every record (no protocol check)."
    )(func)
    return click.option(
        "--board",
        "board_path",
        type=click.Path(path_type=Path),
        help="The board's protocol (default: the repository's leaderboard/board.yaml).",
    )(func)


def _board(path: Path | None, no_board: bool) -> Any:
    from auhead_bench.reporting.board import load_board

    return None if no_board else load_board(path)


@leaderboard.command("build")
@click.option(
    "--results",
    type=click.Path(path_type=Path),
    help="Folder of published run records (default: the repository's leaderboard/results).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Site folder to write.")
@click.option(
    "--template",
    type=click.Path(path_type=Path),
    help="Site template folder (default: the repository's leaderboard/template).",
)
@click.option(
    "--pareto",
    "pareto_pairs",
    multiple=True,
    help="X,Y metric pair for a Pareto plot (repeatable; default: the first two metrics).",
)
@click.option(
    "--tradeoff",
    "tradeoffs",
    multiple=True,
    help="PARAM or PARAM:X:Y1,Y2 for a trade-off plot (repeatable; default: every method "
    "option swept over 3+ values).",
)
@click.option("--no-plots", is_flag=True, help="Leave plots out (faster).")
@click.option("--strict", is_flag=True, help="Exit 1 when any record is rejected.")
@board_options
@click.option(
    "--release",
    help="Also write an immutable release SITE/releases/NAME/ (records, table, schemas, "
    "board, sha256 manifest); refused if NAME was released before.",
)
@click.option(
    "--releases",
    "releases_dir",
    type=click.Path(path_type=Path),
    help="Archive of releases, copied into every site and kept by --release (default: the "
    "repository's leaderboard/releases).",
)
@display_options
@boot_options
@friendly
def build(
    results: Path | None,
    out: Path,
    template: Path | None,
    pareto_pairs: tuple[str, ...],
    tradeoffs: tuple[str, ...],
    no_plots: bool,
    strict: bool,
    board_path: Path | None,
    no_board: bool,
    flags_path: Path | None,
    release: str | None,
    releases_dir: Path | None,
    metrics: str | None,
    decimals: str | None,
    n_boot: int,
    level: float,
    min_clips: int,
) -> None:
    """Validate every record and write a static site that opens from disk.

    Invalid records (and files named *.json that are not regular files: folders, FIFOs) are
    listed as "rejected FILE: reason" and left out; the rest still build and the exit code is
    0 (1 with --strict).
    """
    from auhead_bench.reporting.board import load_flags
    from auhead_bench.reporting.leaderboard import build_site
    from auhead_bench.reporting.release import default_releases_dir
    from auhead_bench.reporting.tables import parse_decimals

    site = build_site(
        out,
        results=results,
        template=template,
        plots=not no_plots,
        pareto=_pairs(pareto_pairs) or None,
        tradeoff=_tradeoffs(tradeoffs) or None,
        n_boot=n_boot,
        level=level,
        board=_board(board_path, no_board),
        flags=load_flags(flags_path),
        release=release,
        releases=releases_dir if releases_dir is not None else default_releases_dir(),
        min_clips=min_clips,
        metrics=_split(metrics) or None,
        decimals=parse_decimals(decimals),
    )
    for item in site.rejected:
        click.echo(f"rejected {item.path}: {item.reason}", err=True)
    for warning in site.warnings:
        click.echo(f"note: {warning}", err=True)
    for item, differences in site.others:
        click.echo(f"other protocol {item.path.name if item.path else item.record.record_id}: "
                   f"{differences[0]}" + (f" (+{len(differences) - 1} more)"
                                          if len(differences) > 1 else ""), err=True)
    click.echo(
        f"built {site.index} from {len(site.accepted)} records "
        f"({len(site.rejected)} rejected, {len(site.plots)} plots"
        + (f", {len(site.others)} under other protocols" if site.others else "")
        + (f", {len(site.reported)} reported" if site.reported else "")
        + ")"
    )
    if site.release is not None:
        click.echo(f"release {site.release.name} written to {site.release}")
    if strict and site.rejected:
        raise SystemExit(1)


@leaderboard.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--results",
    type=click.Path(path_type=Path),
    help="The board's results folder to compare with (default: the repository's "
    "leaderboard/results); the checked files themselves are left out of it.",
)
@board_options
@click.option(
    "--markdown",
    "markdown_out",
    type=click.Path(path_type=Path),
    help="Also write the comparison (the pull-request comment) to this file.",
)
@click.option(
    "--allow-other-protocols",
    is_flag=True,
    help="Exit 0 when the only finding is a record under another protocol.",
)
@friendly
def check(
    paths: tuple[Path, ...],
    results: Path | None,
    board_path: Path | None,
    no_board: bool,
    flags_path: Path | None,
    markdown_out: Path | None,
    allow_other_protocols: bool,
) -> None:
    """Check submitted results (files or folders) as CI does on a pull request.

    Each file: size limits, schema, every number recomputed from its per-clip values (as
    `build` does), duplicates against the board, then the protocol of board.yaml (dataset
    split, preparation, metric options). Prints a Markdown comparison with the board (the
    rows each record would join, its rank per metric, deltas to the closest entries) on
    stdout; on stderr one line per rejected file ("rejected FILE: reason") and per field
    that differs from the board ("other protocol FILE: field ..."). Exit 1 when any file is
    rejected or under another protocol (0 with --allow-other-protocols for the latter).
    """
    from auhead_bench.reporting.board import load_flags
    from auhead_bench.reporting.check import check_paths, markdown
    from auhead_bench.reporting.leaderboard import default_results_dir

    board = _board(board_path, no_board)
    outcome = check_paths(
        paths,
        results=results if results is not None else default_results_dir(),
        board=board,
        flagged=frozenset(load_flags(flags_path)),  # flagged rows are not ranked against
    )
    text = markdown(outcome, board)
    click.echo(text, nl=False)
    if markdown_out is not None:
        _write(text, markdown_out)
    for item in outcome.rejected:
        click.echo(f"rejected {item.path}: {item.rejected}", err=True)
    for item in outcome.other:
        for line in item.differences:
            click.echo(f"other protocol {item.path}: {line}", err=True)
    if outcome.rejected or (outcome.other and not allow_other_protocols):
        raise SystemExit(1)


@leaderboard.command("submit")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="New folder for the bundle (e.g. leaderboard/results/YOUR-LAB).")
@click.option("--generated-by", help="Who ran the method and generated the videos.")
@click.option("--evaluated-by", help="Who ran the metrics on them.")
@click.option("--allow-partial", is_flag=True,
              help="Bundle a run with failed or skipped metrics (they are listed).")
@friendly
def submit(
    run_dir: Path,
    out: Path,
    generated_by: str | None,
    evaluated_by: str | None,
    allow_partial: bool,
) -> None:
    """Write what a leaderboard pull request adds, from a finished RUN_DIR.

    The bundle: records/ (the run's records, each stating who generated and who evaluated),
    config.yaml (the run config), submission.yaml (who, the weights each method used with
    their sha256, from provenance) and videos.sha256 (every generated video's sha256). A run
    with failed or skipped metrics is refused, each missing part on its own line, unless
    --allow-partial. Check the bundle with `auhead-bench leaderboard check OUT`.
    """
    from auhead_bench.reporting.submit import PartialRunError
    from auhead_bench.reporting.submit import submit as make_bundle

    try:
        bundle = make_bundle(
            run_dir,
            out,
            generated_by=generated_by,
            evaluated_by=evaluated_by,
            allow_partial=allow_partial,
        )
    except PartialRunError as exc:
        for line in exc.missing:
            click.echo(f"missing: {line}", err=True)
        raise
    for line in bundle.missing:
        click.echo(f"partial: {line}", err=True)
    click.echo(f"wrote {len(bundle.records)} record(s) and the bundle to {bundle.out}")
    click.echo(f"next: auhead-bench leaderboard check {bundle.out}")


@leaderboard.command("serve")
@click.argument("site", type=click.Path(path_type=Path))
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@friendly
def serve(site: Path, port: int) -> None:
    """Preview a built SITE at http://127.0.0.1:PORT/ (local only; Ctrl-C stops)."""
    from auhead_bench.reporting.leaderboard import make_server

    server = make_server(site, port)
    host, bound = server.server_address[:2]
    click.echo(f"serving {site} at http://{host}:{bound}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = (table, plot, leaderboard)
