"""Tables and plots that read well (issue 18): --metrics, --decimals, LaTeX for a paper
column, reference rows explained, Pareto fronts of real methods, no leaked warnings."""

from __future__ import annotations

import json
import re
import subprocess
import warnings

import numpy as np
import optional
import pytest
import synthetic_records as syn
from click.testing import CliRunner

from auhead_bench.errors import BenchError
from auhead_bench.records import dump_record
from auhead_bench.reporting.commands import leaderboard, table
from auhead_bench.reporting.inputs import from_records
from auhead_bench.reporting.leaderboard import build_site
from auhead_bench.reporting.plots import plot_pareto, plot_tradeoff
from auhead_bench.reporting.tables import (
    build_report,
    format_value,
    latex_layout,
    parse_decimals,
    render,
)

RNG = np.random.default_rng(18)
METRICS = ("psnr_rgb", "ssim", "lpips", "csim", "lse_c", "lmd_mouth", "au_mae", "fvd")


def board(n_metrics: int = len(METRICS), methods=("a", "b", "c")) -> list:
    """Methods plus the two reference rows on 12 clips, ``n_metrics`` metrics each."""
    out = []
    for k, name in enumerate(("ground_truth", "static_frame", *methods)):
        metrics = [
            syn.metric(
                m, {0: list(RNG.normal(0.5 + 0.05 * k, 0.05, 12))}, higher_is_better=j % 2 == 0
            )
            for j, m in enumerate(METRICS[:n_metrics])
        ]
        out.append(syn.record(name, metrics))
    return out


def write_run(root, records):
    (root / "records").mkdir(parents=True)
    for record in records:
        (root / "records" / f"{record.record_id}.json").write_text(json.dumps(dump_record(record)))
    return root


# ---- numbers -------------------------------------------------------------------------------


def test_a_real_small_value_never_prints_as_zero():
    assert format_value(0.5258) == "0.5258" and format_value(18.734) == "18.73"
    assert format_value(0.05258) == "0.05258" and format_value(0.0001234) == "0.0001234"
    assert format_value(0.0) == "0.0000" and format_value(-0.00042) == "-0.0004200"
    for exponent in range(1, 7):
        for decimals in (None, 0, 2, 4):
            text = format_value(1.7 * 10**-exponent, decimals)
            assert float(text) != 0, (exponent, decimals, text)
    assert format_value(0.5258, 2) == "0.53" and format_value(0.001, 2) == "0.001000"


def test_decimals_option_parses_one_number_or_one_per_metric():
    assert parse_decimals(None) is None and parse_decimals("3") == 3
    assert parse_decimals("fid=1, csim=3") == {"fid": 1, "csim": 3}
    for bad in ("x", "fid=", "=2", "fid=99"):
        with pytest.raises(BenchError, match="--decimals"):
            parse_decimals(bad)


def test_metrics_filter_orders_columns_and_names_unknown_ids():
    loaded = from_records(board())
    report = build_report(loaded, metrics=["lpips", "psnr_rgb"], by=())
    assert [c.metric_id for c in report.columns] == ["lpips", "psnr_rgb"]
    header = render(report, "md").splitlines()[0]
    assert "lpips" in header and "ssim" not in header
    with pytest.raises(BenchError, match="unknown metric id 'lpip'; did you mean 'lpips'"):
        build_report(loaded, metrics=["lpip"])
    with pytest.raises(BenchError, match="unknown metric id 'nope'"):
        build_report(loaded, decimals={"nope": 2})


def test_table_command_takes_metrics_and_decimals(tmp_path):
    run = write_run(tmp_path / "run", board(3))
    result = CliRunner().invoke(
        table, [str(run), "--metrics", "ssim,psnr_rgb", "--decimals", "ssim=1,psnr_rgb=3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| method | dataset | ssim ↓ | psnr_rgb ↑ |")
    cells = lines[2].split("|")
    number = r" (\*\*)?\d\.{d} \[\d\.{d}, \d\.{d}\](\*\*)? \(n=12\) "
    assert re.fullmatch(number.replace("{d}", r"\d"), cells[3]), cells[3]
    assert re.fullmatch(number.replace("{d}", r"\d{3}"), cells[4]), cells[4]
    bad = CliRunner().invoke(table, [str(run), "--decimals", "two"])
    assert bad.exit_code == 2 and "--decimals 'two'" in bad.output


# ---- reference rows ------------------------------------------------------------------------


def test_notes_say_what_reference_rows_bound_and_why_csim_differs():
    text = render(build_report(from_records(board(2)), by=()), "md")
    notes = text.split("Reference rows:")[1]
    assert "ground_truth is each clip's own video: the upper bound" in notes
    assert "static_frame holds the reference image" in notes and "lower bound" in notes
    assert "CSIM is ~1 and above ground_truth's" in notes
    tex = render(build_report(from_records(board(2)), by=()), "latex")
    assert "% static\\_frame holds the reference image" in tex
    plain = [r for r in board(2) if r.method.id not in ("ground_truth", "static_frame")]
    assert "Reference rows" not in render(build_report(from_records(plain), by=()), "md")


# ---- LaTeX ---------------------------------------------------------------------------------


def test_latex_layouts_booktabs_and_no_resizebox():
    many = build_report(from_records(board()), by=())
    few = build_report(from_records(board(2)), by=())
    assert latex_layout(many) == "tall" and latex_layout(few) == "wide"
    tall = render(many, "latex", ["main"])
    assert "\\toprule" in tall and "\\resizebox" not in tall and "\\scalebox" not in tall
    assert tall.count("\\\\") > len(METRICS)  # a row (and a CI row) per metric
    header = next(line for line in tall.splitlines() if line.startswith("Metric &"))
    assert header.split(" & ")[1:3] == ["ground\\_truth", "static\\_frame"]
    wide = render(few, "latex", ["main"], layout="wide")
    assert next(x for x in wide.splitlines() if x.startswith("Method &")).startswith(
        "Method & psnr\\_rgb"
    )
    with pytest.raises(BenchError, match="unknown LaTeX layout"):
        render(few, "latex", ["main"], layout="sideways")


def _tabular(tex: str) -> str:
    start = tex.index("{\\footnotesize\\setlength")
    return tex[start : tex.index("\\end{tabular}}", start) + len("\\end{tabular}}")]


def untimed(records: list) -> list:
    for record in records:
        for generation in record.generations:
            generation.seconds = None
    return records


@optional.needs_binary("pdflatex", optional.PDFLATEX)
@pytest.mark.parametrize(
    ("records", "layout"),
    [
        (board(8, ("a",)), "tall"),  # 8 metrics: metrics as rows, 3 method columns
        (board(2, ("a", "b", "c")), "wide"),  # 5 methods: 2 metrics and s/frame as columns
        (untimed(board(3, ("a", "b", "c"))), "wide"),
    ],
)
def test_latex_fits_a_paper_column(tmp_path, records, layout):
    """Typeset in a 10pt two-column article (3.35 in columns, as CVPR/IEEE): a table of three
    columns of numbers is no wider than \\columnwidth at its natural size; auto picks the
    layout that gets there."""
    report = build_report(from_records(records), by=())
    assert latex_layout(report) == layout
    tex = render(report, "latex", ["main"])
    assert "wider than one paper column" not in tex
    doc = (
        "\\documentclass[10pt,twocolumn]{article}\n"
        "\\usepackage[letterpaper,margin=0.75in,columnsep=0.33in]{geometry}\n"
        "\\usepackage{booktabs}\n\\begin{document}\n"
        f"\\setbox0\\hbox{{{_tabular(tex)}}}\n"
        "\\typeout{TABLEWIDTH=\\the\\wd0, COLUMNWIDTH=\\the\\columnwidth}\n"
        "\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc)
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    found = re.search(r"TABLEWIDTH=([\d.]+)pt, COLUMNWIDTH=([\d.]+)pt", done.stdout)
    assert found, done.stdout[-2000:]
    width, column = map(float, found.groups())
    assert 100 < width <= column, f"{width}pt table in a {column}pt column"


def test_latex_says_when_a_table_cannot_fit_one_column():
    tex = render(build_report(from_records(board(8, ("a", "b", "c"))), by=()), "latex", ["main"])
    assert "% 5 columns of numbers: wider than one paper column" in tex


# ---- plots ---------------------------------------------------------------------------------


def test_pareto_front_is_made_of_methods_not_reference_rows(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No artists with labels" and friends fail the test
        paths = plot_pareto(from_records(board(2)), x="psnr_rgb", y="ssim", out=tmp_path / "p")
    svg = paths[1].read_text()
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert {"a", "b", "c"} <= set(labels) and "Pareto front" in labels
    assert "ground_truth" not in svg and "static_frame" not in svg
    # reference rows alone: drawn without a front on request, refused by the leaderboard
    refs = from_records([r for r in board(2) if r.method.id in ("ground_truth", "static_frame")])
    only = plot_pareto(refs, x="psnr_rgb", y="ssim", out=tmp_path / "q")[1].read_text()
    assert "reference rows only: no front" in only and "ground_truth" in only
    assert ">Pareto front<" not in only
    with pytest.raises(BenchError, match="reference rows aside"):
        plot_pareto(refs, x="psnr_rgb", y="ssim", out=tmp_path / "r", reference_only=False)


def test_tradeoff_with_an_empty_panel_leaks_no_warning(tmp_path):
    records = [
        syn.record(
            f"m[s={s}]",
            [
                syn.metric(
                    "fid", {0: [10.0 - s + 0.1 * i for i in range(12)]}, higher_is_better=False
                ),
                syn.metric("acc", {0: [0.1 * s + 0.01 * i for i in range(12)]}),
                syn.metric("empty", None, status="not_computed", reason="weights missing"),
            ],
            method="m",
            options={"s": s},
        )
        for s in (1.0, 2.0, 3.0)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_tradeoff(
            from_records(records), param="s", x="fid", ys=["acc", "empty"], out=tmp_path / "t"
        )


def test_site_plots_skip_reference_sweeps_and_empty_metrics(tmp_path):
    records = board(2)
    for record in records:  # an all-empty first column must not become an axis
        record.metrics = {
            "fid": syn.metric("fid", None, status="not_computed", reason="weights missing"),
            **record.metrics,
        }
    records += [
        syn.record(
            f"static_frame[frame={f}]",
            [syn.metric("psnr_rgb", {0: [1.0 * f] * 12}), syn.metric("ssim", {0: [0.5] * 12})],
            method="static_frame",
            options={"frame": f},
        )
        for f in (0, 5, 15)
    ]
    results = tmp_path / "results"
    results.mkdir()
    for i, record in enumerate(records):
        (results / f"{i}.json").write_text(json.dumps(dump_record(record)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        site = build_site(tmp_path / "site", results=results, n_boot=200)
    assert [p["title"] for p in site.plots] == ["Pareto front: psnr_rgb vs ssim"]
    assert not site.warnings


def test_leaderboard_build_takes_metrics_and_decimals(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for i, record in enumerate(board(3)):
        (results / f"{i}.json").write_text(json.dumps(dump_record(record)))
    out = tmp_path / "site"
    result = CliRunner().invoke(
        leaderboard,
        [
            "build",
            "--results",
            str(results),
            "--out",
            str(out),
            "--no-plots",
            "--no-board",  # synthetic records: not the board's protocol (test_board.py)
            "--metrics",
            "lpips,psnr_rgb",
            "--decimals",
            "2",
            "--n-boot",
            "200",
        ],
    )
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    heads = re.findall(r'<button type="button">(\w+) <span class="arrow">', html)
    assert heads == ["lpips", "psnr_rgb"]
    values = re.findall(r'<span class="value">([^<]+)</span>', html)
    assert values and all(re.fullmatch(r"\d\.\d\d", v) for v in values), values
    data = json.loads((out / "downloads" / "leaderboard.json").read_text())
    assert [c["metric"] for c in data["columns"]] == ["lpips", "psnr_rgb"]
