"""Tables, statistics and plots from run records built in memory (no runner, no video)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import synthetic_records as syn
from click.testing import CliRunner

from auhead_bench.errors import BenchError
from auhead_bench.records import dump_record
from auhead_bench.reporting.commands import UserError, plot, table
from auhead_bench.reporting.inputs import from_records, load_runs
from auhead_bench.reporting.plots import pareto_front, plot_pareto, plot_tradeoff
from auhead_bench.reporting.stats import estimate, group_estimates, paired_comparison
from auhead_bench.reporting.tables import build_report, render
from auhead_bench.table import markdown, write_tables

RNG = np.random.default_rng(7)
BASE = RNG.normal(20.0, 2.0, size=12)  # per-clip PSNR of a baseline


def methods() -> list:
    """Three methods on the same 12 clips; 'good' beats 'base' on every clip."""
    return [
        syn.record(
            "base",
            [
                syn.metric("psnr_rgb", {0: list(BASE)}),
                syn.metric("lmd_mouth", {0: list(BASE / 10)}, higher_is_better=False),
                syn.metric(
                    "fid",
                    None,
                    status="not_computed",
                    reason="weights missing -- fix: pull",
                    higher_is_better=False,
                ),
            ],
            seconds=1.0,
        ),
        syn.record(
            "good",
            [
                syn.metric("psnr_rgb", {0: list(BASE + 3)}),
                syn.metric("lmd_mouth", {0: list(BASE / 10 - 0.5)}, higher_is_better=False),
                syn.metric("fid", None, distribution={0: 12.0}, higher_is_better=False),
            ],
            seconds=2.0,
            info={"peak_memory_bytes": 3 * 2**30},
        ),
        syn.record(
            "faceless",
            [
                syn.metric(
                    "psnr_rgb",
                    {0: [None, None, None, *(BASE[3:] + 1)]},
                    reason="no face found (3/12)",
                ),
                syn.metric("lmd_mouth", {0: list(BASE / 10 + 1)}, higher_is_better=False),
                syn.metric("fid", None, distribution={0: 30.0}, higher_is_better=False),
            ],
        ),
    ]


def write_run(root: Path, records: list) -> Path:
    (root / "records").mkdir(parents=True)
    for record in records:
        path = root / "records" / f"{record.record_id}.json"
        path.write_text(json.dumps(dump_record(record)))
    return root


# ---- statistics ----------------------------------------------------------------------------


def test_bootstrap_ci_brackets_the_record_value_and_is_reproducible():
    result = syn.metric("psnr_rgb", {0: list(BASE)})
    first, second = estimate(result), estimate(result)
    assert first == second  # fixed seed: a table never changes between builds
    assert first.value == result.value
    assert first.ci_low < result.value < first.ci_high
    # about 2 standard errors either side for a mean of 12 values
    se = BASE.std(ddof=1) / np.sqrt(len(BASE))
    assert first.half_width == pytest.approx(1.96 * se, rel=0.25)
    wider = estimate(result, level=0.99)
    assert wider.ci_low < first.ci_low and wider.ci_high > first.ci_high


def test_identical_clips_give_a_zero_width_interval():
    result = syn.metric("ssim", {0: [0.5] * 12})
    est = estimate(result)
    assert est.ci_low == pytest.approx(0.5) and est.ci_high == pytest.approx(0.5)


def test_seeds_give_mean_and_std_and_resample_clips_together():
    noise = RNG.normal(0, 0.1, size=12)
    result = syn.metric("psnr_rgb", {0: list(BASE), 1: list(BASE + noise), 2: list(BASE - 1)})
    est = estimate(result)
    per_seed = [v for v in result.per_seed.values() if v is not None]
    assert est.value == pytest.approx(np.mean(per_seed))
    assert est.seed_std == pytest.approx(np.std(per_seed, ddof=1))
    assert est.n_seeds == 3 and est.n_clips == 12
    # seeds of a clip move together: three copies of the same seed give the one-seed CI
    same = syn.metric("psnr_rgb", {0: list(BASE), 1: list(BASE), 2: list(BASE)})
    one = syn.metric("psnr_rgb", {0: list(BASE)})
    assert estimate(same).ci_low == pytest.approx(estimate(one).ci_low)


def test_distribution_metric_has_seed_spread_but_no_clip_ci():
    est = estimate(syn.metric("fid", None, distribution={0: 10.0, 1: 12.0}))
    assert est.value == 11.0 and est.ci_low is None
    assert est.seed_std == pytest.approx(np.std([10, 12], ddof=1))
    assert "distribution metric" in est.note


def test_paired_comparison_finds_a_consistent_improvement_and_honours_direction():
    base, good = (r.metrics for r in methods()[:2])
    psnr = paired_comparison(good["psnr_rgb"], base["psnr_rgb"])
    assert psnr.diff == pytest.approx(3.0) and psnr.n_pairs == 12
    assert psnr.ci_low == pytest.approx(3.0) and psnr.p_value < 0.01 and psnr.better is True
    lmd = paired_comparison(good["lmd_mouth"], base["lmd_mouth"])
    assert lmd.diff == pytest.approx(-0.5) and lmd.better is True  # lower is better
    same = paired_comparison(base["psnr_rgb"], base["psnr_rgb"])
    assert same.p_value == 1.0 and same.better is None


def test_group_estimates_are_the_mean_of_each_groups_clips():
    result = syn.metric("psnr_rgb", {0: list(BASE)})
    groups = group_estimates(result, "emotion")
    assert list(groups) == ["angry", "happy", "neutral", "sad"]
    happy = [v for v, c in zip(BASE, syn.CLIPS.values(), strict=True) if c["emotion"] == "happy"]
    assert groups["happy"].value == pytest.approx(np.mean(happy))
    assert groups["happy"].n_clips == 3
    assert list(group_estimates(result, "intensity")) == [1, 2, 3]  # numeric order


# ---- tables --------------------------------------------------------------------------------


def report(**kwargs):
    return build_report(from_records(methods()), **kwargs)


def test_markdown_marks_direction_best_ci_n_and_reasons():
    text = render(report(by=()), "md")
    header = text.splitlines()[0]
    assert "psnr_rgb ↑" in header and "lmd_mouth ↓" in header and "fid ↓" in header
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()[2:5]}
    good, base, faceless = rows["good"], rows["base"], rows["faceless"]
    assert good.split("|")[3].strip().startswith("**")  # highest PSNR is bold
    assert good.split("|")[4].strip().startswith("**")  # lowest LMD is bold: direction honoured
    assert "**" not in base.split("|")[3]
    assert "(n=12)" in base
    # the reason is a numbered note, whole, marked once on its column's header
    assert "fid ↓ [1]" in header and "| — |" in base and "not computed" not in base
    assert "[1] fid: not computed: weights missing -- fix: pull" in text
    assert "3 skipped [2]" in faceless and "n=9, n too small" in faceless
    assert "[2] clips skipped: no face found (3/12)" in text
    assert "**12.00**" in good  # fid: no per-clip values, so no ± but still best
    assert "s/frame ↓" in header and "peak mem ↓" in header
    assert "| 0.04 | 3.00 GiB |" in good  # 2 s / 50 frames; peak memory from info


def test_best_needs_two_competitors_and_is_per_dataset():
    a = syn.record("a", [syn.metric("m", {0: [1.0] * 12})], dataset="d1")
    b = syn.record("b", [syn.metric("m", {0: [2.0] * 12})], dataset="d2")
    text = render(build_report(from_records([a, b]), by=()), "md")
    assert "**" not in text.split("\n\n")[0]


def test_csv_is_one_machine_readable_row_per_record():
    frame = pd.read_csv(io.StringIO(render(report(by=()), "csv")))
    assert list(frame["method"]) == ["base", "good", "faceless"]
    good = frame.set_index("method").loc["good"]
    assert good["psnr_rgb"] == pytest.approx(BASE.mean() + 3)
    assert good["psnr_rgb_ci_low"] < good["psnr_rgb"] < good["psnr_rgb_ci_high"]
    assert good["psnr_rgb_n"] == 12 and good["seconds_per_frame"] == pytest.approx(2.0 / 50)
    base = frame.set_index("method").loc["base"]
    assert base["fid_status"] == "not_computed" and "weights missing" in base["fid_reason"]


def test_csv_neutralises_formulas_from_record_strings():
    evil = syn.record("=HYPERLINK(1)", [syn.metric("m", {0: [1.0] * 12})], method="evil")
    frame = pd.read_csv(io.StringIO(render(build_report(from_records([evil]), by=()), "csv")))
    assert frame["method"][0] == "'=HYPERLINK(1)"


def test_latex_escapes_and_bolds():
    tex = render(report(by=()), "latex")
    assert r"psnr\_rgb $\uparrow$" in tex and r"lmd\_mouth $\downarrow$" in tex
    assert r"\textbf{" in tex and "[" in tex.split(r"\midrule")[1]  # CI bounds, not ±
    assert r"fid $\downarrow$\textsuperscript{a}" in tex and "weights missing" in tex
    assert r"\textsuperscript{a}fid: not computed: weights missing" in tex
    odd = syn.record("a&b_$%", [syn.metric("m", {0: [1.0] * 12})], method="odd")
    assert r"a\&b\_\$\%" in render(build_report(from_records([odd]), by=()), "latex")


def test_json_has_every_number_and_the_comparisons():
    data = json.loads(render(report(baseline="base"), "json"))
    rows = {r["label"]: r for r in data["rows"]}
    cell = rows["good"]["metrics"]["psnr_rgb"]
    assert cell["best"] and cell["ci_low"] < cell["value"] < cell["ci_high"] and cell["n"] == 12
    comps = {c["label"]: c for c in data["comparisons"]}
    assert comps["good"]["metrics"]["psnr_rgb"]["diff"] == pytest.approx(3.0)
    assert "base" not in comps
    assert {b["by"] for b in data["breakdowns"]} == {"emotion", "intensity"}


def test_breakdown_views_and_their_absence():
    text = render(report(), "md", ["emotion"])
    assert "### psnr_rgb ↑ by emotion" in text and "### lmd_mouth ↓ by emotion" in text
    assert "| method | dataset | angry | happy | neutral | sad |" in text
    assert "by intensity" not in text  # only the view asked for
    unlabelled = syn.record(
        "x", [syn.metric("m", {0: [1.0, 2.0]}, clips={"a": {}, "b": {}})], clips={"a": {}, "b": {}}
    )
    with pytest.raises(BenchError, match="no clip in these records has a 'emotion' label"):
        render(build_report(from_records([unlabelled])), "md", ["emotion"])


def test_unknown_baseline_names_the_choices():
    with pytest.raises(BenchError, match="baseline 'nope' matches no record.*base, faceless"):
        report(baseline="nope")


def test_runner_entry_points_still_work(tmp_path):
    records = methods()
    assert markdown(records).startswith("| method | dataset |")
    write_tables(records, tmp_path)
    for name in ("table.md", "table.csv", "table.tex", "table.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "by emotion" in (tmp_path / "table.md").read_text()


# ---- the table command ---------------------------------------------------------------------


def test_table_command_formats(tmp_path):
    run = write_run(tmp_path / "run", methods())
    runner = CliRunner()
    md = runner.invoke(table, [str(run)])
    assert md.exit_code == 0 and "psnr_rgb ↑" in md.output and "by intensity" in md.output
    csv = runner.invoke(table, [str(run), "--format", "csv"])
    assert csv.exit_code == 0 and csv.stdout.startswith("method,")
    out = tmp_path / "t.tex"
    latex = runner.invoke(table, [str(run), "--format", "latex", "--out", str(out)])
    assert latex.exit_code == 0 and r"\begin{tabular}" in out.read_text()
    comp = runner.invoke(table, [str(run), "--baseline", "base", "--view", "compare"])
    assert comp.exit_code == 0 and "Paired comparison against base" in comp.output
    both = runner.invoke(
        table, [str(run), "--format", "csv", "--view", "main", "--view", "emotion"]
    )
    assert both.exit_code == 2 and "a CSV file holds one table" in both.output


def test_table_command_one_line_errors(tmp_path):
    run = write_run(tmp_path / "run", methods())
    bad = run / "records" / "broken.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(table, [str(run)])
    assert result.exit_code == 0  # the bad file is named and skipped; the rest is tabled
    assert f"skipped {bad}: not valid JSON" in result.output.splitlines()[0]
    assert "| good |" in result.output
    empty = CliRunner().invoke(table, [str(tmp_path / "missing")])
    assert empty.exit_code == 2 and "no such file or folder" in empty.output


def test_rows_with_the_same_experiment_from_two_runs_stay_apart(tmp_path):
    one = syn.record("m", [syn.metric("x", {0: [1.0] * 12})])
    two = syn.record("m", [syn.metric("x", {0: [2.0] * 12})])  # same experiment and id
    write_run(tmp_path / "a", [one])
    write_run(tmp_path / "b", [two])
    loaded = load_runs([tmp_path / "a", tmp_path / "b", tmp_path / "a"])
    assert [item.label for item in loaded] == ["m (a)", "m (b)"]


# ---- plots ---------------------------------------------------------------------------------


def sweep() -> list:
    """AUHead-like sweep over s_au: FID falls then rises, emotion accuracy rises."""
    records = []
    for s_au, fid, acc in ((1.0, 20.0, 0.4), (2.0, 18.0, 0.5), (3.5, 17.0, 0.62), (5.0, 19, 0.7)):
        records.append(
            syn.record(
                f"auhead[s_au={s_au}]" if s_au != 3.5 else "auhead",
                [
                    syn.metric(
                        "fid", None, distribution={0: fid, 1: fid + 0.5}, higher_is_better=False
                    ),
                    syn.metric("emotion_acc", {0: list(acc + RNG.normal(0, 0.05, 12))}),
                    syn.metric(
                        "au_mae",
                        {0: list(1 - acc + RNG.normal(0, 0.05, 12))},
                        higher_is_better=False,
                    ),
                ],
                method="auhead",
                options={"s_au": s_au, "steps": 25},
                seeds=(0, 1),
                record_id=f"auhead-{s_au}",
            )
        )
    return records


def test_tradeoff_writes_png_and_svg_with_the_chosen_point(tmp_path):
    loaded = from_records(sweep())
    paths = plot_tradeoff(
        loaded, param="s_au", x="fid", ys=["emotion_acc", "au_mae"], out=tmp_path / "fig"
    )
    assert [p.name for p in paths] == ["fig.png", "fig.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    assert "s_au=3.5" in svg and "chosen" in svg and "fid (↓ better)" in svg
    again = plot_tradeoff(
        loaded, param="s_au", x="fid", ys=["emotion_acc", "au_mae"], out=tmp_path / "fig2"
    )
    assert again[1].read_text() == svg  # same records, same SVG bytes


def test_plot_commands_and_their_errors(tmp_path):
    run = write_run(tmp_path / "run", sweep())
    runner = CliRunner()
    ok = runner.invoke(
        plot,
        [
            "tradeoff",
            str(run),
            "--param",
            "s_au",
            "--x",
            "fid",
            "--y",
            "emotion_acc",
            "--chosen",
            "2",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (run / "plots" / "tradeoff-s_au.png").is_file()
    bad_x = runner.invoke(
        plot, ["tradeoff", str(run), "--param", "s_au", "--x", "fdi", "--y", "au_mae"]
    )
    assert bad_x.exit_code == 2 and bad_x.output.count("\n") == 1
    assert "unknown metric id 'fdi'; did you mean 'fid'?" in bad_x.output
    assert "metrics in these records: fid, emotion_acc, au_mae" in bad_x.output
    bad_param = runner.invoke(
        plot, ["tradeoff", str(run), "--param", "cfg", "--x", "fid", "--y", "au_mae"]
    )
    assert bad_param.exit_code == 2 and "no record has the method option 'cfg'" in bad_param.output
    assert "s_au, steps" in bad_param.output
    bad_chosen = runner.invoke(
        plot,
        ["tradeoff", str(run), "--param", "s_au", "--x", "fid", "--y", "au_mae", "--chosen", "7"],
    )
    assert bad_chosen.exit_code == 2 and "no record has s_au=7" in bad_chosen.output
    assert "1.0, 2.0, 3.5, 5.0" in bad_chosen.output
    pareto = runner.invoke(
        plot, ["pareto", str(run), "--x", "fid", "--y", "emotion_acc", "--out", str(tmp_path / "p")]
    )
    assert pareto.exit_code == 0 and (tmp_path / "p.svg").is_file()


def test_pareto_front_honours_directions():
    points = [(1.0, 1.0), (2.0, 2.0), (3.0, 1.5), (0.5, 3.0)]
    assert pareto_front(points, x_higher=True, y_higher=True) == [1, 2, 3]
    assert pareto_front(points, x_higher=False, y_higher=False) == [0, 3]
    assert pareto_front(points, x_higher=False, y_higher=True) == [3]  # dominates all


def test_pareto_plot_draws_record_strings_literally(tmp_path):
    records = methods()
    records.append(
        syn.record(
            "$\\alpha$ <b>",
            [
                syn.metric("psnr_rgb", {0: list(BASE)}),
                syn.metric("lmd_mouth", {0: list(BASE / 9)}, higher_is_better=False),
            ],
            method="odd",
        )
    )
    paths = plot_pareto(from_records(records), x="psnr_rgb", y="lmd_mouth", out=tmp_path / "p.png")
    assert "$\\alpha$ &lt;b&gt;" in paths[1].read_text()


def test_user_error_is_one_line():
    error = UserError("x.json: broken -- fix: rewrite")
    assert error.exit_code == 2


# ---- hostile input (issue 14) --------------------------------------------------------------


def test_table_lists_hostile_files_and_tables_the_rest(tmp_path):
    run = write_run(tmp_path / "run", methods())
    expected = syn.hostile_files(run / "records")
    try:
        result = CliRunner().invoke(table, [str(run), "--view", "main"])
        assert result.exit_code == 0, result.output
        for name, word in expected.items():
            lines = result.output.splitlines()
            line = next(x for x in lines if x.startswith("skipped ") and name in x)
            assert word in line, line
        assert "| good |" in result.output and "Traceback" not in result.output
        only_bad = CliRunner().invoke(table, [str(run / "records" / "deep.json")])
        assert only_bad.exit_code == 2 and "no readable run record" in only_bad.output
    finally:
        syn.release_fifos(run / "records")


def test_validate_reports_hostile_files_as_invalid_without_a_traceback(tmp_path):
    from auhead_bench.cli import cli

    expected = syn.hostile_files(tmp_path)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dump_record(methods()[0])))
    try:
        files = [str(tmp_path / name) for name in expected] + [str(good)]
        result = CliRunner().invoke(cli, ["validate", *files])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.output.splitlines()
        assert f"ok: {good}" in lines
        for name, word in expected.items():
            line = next(x for x in lines if x.startswith("invalid: ") and name in x)
            assert word in line, line
    finally:
        syn.release_fifos(tmp_path)


def test_nan_and_inf_are_refused_by_the_schema():
    from pydantic import ValidationError

    from auhead_bench.records import MetricResult

    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValidationError, match="finite number"):
            MetricResult(metric_id="m", higher_is_better=True, status="ok", value=bad)
    data = dump_record(methods()[0])
    data["metrics"]["psnr_rgb"]["per_clip"][0]["value"] = float("nan")
    from auhead_bench.records import RunRecord

    with pytest.raises(ValidationError):
        RunRecord.model_validate(data)


# ---- tables people read (issue 14) ---------------------------------------------------------


def test_long_reasons_are_whole_numbered_notes_never_cut():
    reason = (
        "FID Inception weights (pt_inception-2015-12-05-6726825d.pth) are not in the cache "
        "and this machine cannot download them -- fix: auhead-bench weights pull fid"
    )
    records = [
        syn.record("a", [syn.metric("fid", None, status="not_computed", reason=reason)]),
        syn.record("b", [syn.metric("fid", None, status="not_computed", reason=reason)]),
    ]
    text = render(build_report(from_records(records), by=()), "md")
    assert "(FID I" not in text and "..." not in text and "…" not in text
    assert "fid ↑ [1]" in text and text.count("| — |") == 2  # one note for the column
    assert text.count(reason) == 1 and f"[1] fid: not computed: {reason}" in text
    tex = render(build_report(from_records(records), by=()), "latex")
    assert "auhead-bench weights pull fid" in tex


def test_reference_rows_are_never_bold():
    truth = syn.record("ground_truth", [syn.metric("psnr_rgb", {0: [100.0] * 12})])
    a = syn.record("a", [syn.metric("psnr_rgb", {0: list(BASE + 1)})])
    b = syn.record("b", [syn.metric("psnr_rgb", {0: list(BASE)})])
    rows = {r.label: r for r in build_report(from_records([truth, a, b]), by=()).rows}
    assert not rows["ground_truth"].cells["psnr_rgb"].best
    assert rows["a"].cells["psnr_rgb"].best and not rows["b"].cells["psnr_rgb"].best
    text = render(build_report(from_records([truth, a, b])), "md")
    assert "**100.00" not in text and "| ground_truth | synthetic | 100.00" in text
    assert "reference rows ground_truth never are" in text
    # one real method alone is not "best" either: nothing to beat
    alone = build_report(from_records([truth, a]), by=()).rows
    assert not any(r.cells["psnr_rgb"].best for r in alone)


def test_an_asymmetric_interval_is_shown_with_its_bounds():
    skewed = [1.0] * 11 + [60.0]  # one outlier: the CI reaches far above the mean only
    rec = syn.record("skew", [syn.metric("m", {0: skewed})])
    report_ = build_report(from_records([rec]), by=())
    est = report_.rows[0].cells["m"].estimate
    assert est.ci_high - est.value > 1.5 * (est.value - est.ci_low)  # really asymmetric
    text = render(report_, "md")
    cell = text.splitlines()[2].split("|")[3]
    assert "±" not in text
    assert f"{est.value:.4f} [{est.ci_low:.4f}, {est.ci_high:.4f}] (n=12)" in cell
    assert json.loads(render(report_, "json"))["rows"][0]["metrics"]["m"]["ci_high"] == (
        pytest.approx(est.ci_high)
    )


def test_one_clip_has_no_interval():
    one = {"c00": {"emotion": "happy"}}
    rec = syn.record("solo", [syn.metric("m", {0: [3.0]}, clips=one)], clips=one)
    for min_clips in (2, 10):  # even a threshold of 2 never gives one clip an interval
        report_ = build_report(from_records([rec]), min_clips=min_clips)
        est = report_.rows[0].cells["m"].estimate
        assert est.ci_low is None and est.note == f"n too small (1 clip < {min_clips})"
    text = render(report_, "md")
    assert "| solo | synthetic | 3.0000 (n=1, n too small) |" in text
    assert "[3.0000, 3.0000]" not in text
    by_emotion = group_estimates(rec.metrics["m"], "emotion", min_clips=2)
    assert by_emotion["happy"].ci_low is None


def test_clips_left_out_by_skip_bad_clips_are_counted_in_table_md(tmp_path):
    rec = syn.record("a", [syn.metric("m", {0: [1.0] * 12})])
    rec.skipped_clips = {"c99": "video unreadable: moov atom not found", "c98": "no audio"}
    write_tables([rec], tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "Clips left out by --skip-bad-clips: a (synthetic): 2 [1]." in text
    assert "[1] c99: video unreadable: moov atom not found; c98: no audio" in text
    data = json.loads((tmp_path / "table.json").read_text())
    assert data["rows"][0]["skipped_clips"] == rec.skipped_clips
    assert pd.read_csv(tmp_path / "table.csv")["clips_left_out"][0] == 2


def test_row_order_is_the_same_in_the_runs_table_and_the_table_command(tmp_path):
    records = methods()  # plan order: base, good, faceless (not alphabetical)
    run = write_run(tmp_path / "run", records)
    manifest = {"records": [f"records/{r.record_id}.json" for r in records]}
    (run / "run.json").write_text(json.dumps(manifest))
    write_tables(records, run)  # what the runner writes
    own = (run / "table.md").read_text().split("\n\n")[0]
    shown = CliRunner().invoke(table, [str(run), "--view", "main"]).stdout.split("\n\n")[0]
    assert own == shown
    assert [line.split("|")[1].strip() for line in own.splitlines()[2:]] == [
        "base",
        "good",
        "faceless",
    ]
