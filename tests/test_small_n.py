"""Statistics that hold on small n (issue 18): clips are the samples, seeds never are; too few
clips get no CI and no p-value; a p-value is never printed finer than its test resolves."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import synthetic_records as syn
from click.testing import CliRunner
from scipy import stats as scipy_stats

from auhead_bench.records import dump_record
from auhead_bench.reporting.commands import table
from auhead_bench.reporting.inputs import from_records
from auhead_bench.reporting.stats import (
    MIN_CLIPS,
    bootstrap_ci,
    estimate,
    group_estimates,
    paired_comparison,
    sign_flip_p,
)
from auhead_bench.reporting.tables import build_report, ceil_2g, format_p, render

EMOTIONS = ("happy", "sad", "angry", "neutral")


def clips(n: int) -> dict[str, dict]:
    return {f"k{i:03d}": {"emotion": EMOTIONS[i % 4], "intensity": 1 + i % 3} for i in range(n)}


def study(n: int, *, seeds=(0, 1), gain: float = 3.0, noise: float = 0.0, seed: int = 0):
    """A method and the static_frame baseline on ``n`` clips; the method beats the baseline by
    ``gain`` on every clip (plus ``noise``), with per-seed jitter."""
    rng = np.random.default_rng(seed)
    group = clips(n)
    base = rng.normal(20.0, 2.0, n)
    extra = gain + rng.normal(0.0, noise, n) if noise else np.full(n, gain)
    method = {s: list(base + extra + rng.normal(0, 0.1, n)) for s in seeds}
    reference = {s: list(base) for s in seeds}
    return [
        syn.record(
            "static_frame",
            [syn.metric("psnr_rgb", reference, clips=group)],
            clips=group,
            seeds=seeds,
        ),
        syn.record(
            "au_warp", [syn.metric("psnr_rgb", method, clips=group)], clips=group, seeds=seeds
        ),
    ]


def comparison(n: int, **kwargs):
    baseline, method = study(n, **{k: v for k, v in kwargs.items() if k != "min_clips"})
    return paired_comparison(
        method.metrics["psnr_rgb"],
        baseline.metrics["psnr_rgb"],
        min_clips=kwargs.get("min_clips", MIN_CLIPS),
    )


# ---- 3 clips -------------------------------------------------------------------------------


def test_three_clips_two_seeds_show_n3_no_ci_no_p_and_a_warning(tmp_path):
    records = study(3)
    report = build_report(from_records(records), baseline="static_frame")
    cell = report.rows[1].cells["psnr_rgb"]
    assert cell.n == 3  # clips, not clips x seeds (6)
    assert cell.estimate.n_seeds == 2 and cell.estimate.ci_low is None
    assert cell.estimate.too_small and cell.estimate.note == "n too small (3 clips < 10)"
    text = render(report, "md")
    row = next(line for line in text.splitlines() if line.startswith("| au_warp |"))
    assert "n=3, n too small" in row and "[" not in row and "n=6" not in text
    comp_row = [line for line in text.splitlines() if line.startswith("| au_warp |")][1]
    assert "(n too small, n=3)" in comp_row
    assert "p=" not in text and "p<" not in text and "p\\<" not in text.split("|---")[-1]
    assert "warning: n too small" in text
    data = json.loads(render(report, "json"))
    cmp = data["comparisons"][0]["metrics"]["psnr_rgb"]
    assert cmp["p_value"] is None and cmp["ci_low"] is None and cmp["n_pairs"] == 3
    assert data["rows"][1]["metrics"]["psnr_rgb"]["n"] == 3
    # the command prints the warning line on stderr, the table on stdout
    run = tmp_path / "run" / "records"
    run.mkdir(parents=True)
    for r in records:
        (run / f"{r.record_id}.json").write_text(json.dumps(dump_record(r)))
    result = CliRunner().invoke(table, [str(tmp_path / "run"), "--baseline", "static_frame"])
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: n too small: some rows have 3 clip(s)")
    assert "p<0.001" not in result.output


def test_three_clips_with_a_lower_threshold_print_the_floor_never_p_below_it():
    comp = comparison(3, min_clips=3)
    assert comp.p_value == pytest.approx(0.25) and comp.p_floor == pytest.approx(0.25)
    assert comp.p_at_floor and format_p(comp) == "p<=0.25"
    text = render(build_report(from_records(study(3)), baseline="static_frame", min_clips=3), "md")
    assert "p<=0.25" in text.replace("\\<", "<") and "p<0.001" not in text


# ---- 10 clips ------------------------------------------------------------------------------


def test_ten_clips_get_a_ci_and_a_p_value_floored_at_2_over_2_to_the_10():
    comp = comparison(10)
    assert comp.n_pairs == 10 and comp.ci_low is not None and comp.ci_low > 0
    assert comp.p_floor == pytest.approx(2 / 2**10)
    assert comp.p_value == pytest.approx(2 / 2**10)  # every clip better: the extreme pattern
    assert format_p(comp) == "p<=0.002"  # 0.00195 rounded up, never down
    report = build_report(from_records(study(10)), baseline="static_frame")
    cell = report.rows[1].cells["psnr_rgb"]
    assert cell.n == 10 and cell.estimate.ci_low is not None and not cell.estimate.too_small
    assert report.small_n_warning() is None
    assert "n too small" not in render(report, "md", ["main", "compare"]).split("\n\n")[0]


def test_sign_flip_p_is_exact_against_enumerating_every_sign_pattern():
    diffs = np.random.default_rng(3).normal(0.4, 1.0, 10)
    observed = abs(diffs.mean())
    flips = np.array(list(itertools.product((-1.0, 1.0), repeat=10)))
    means = flips @ diffs / 10
    expected = 2 * min((means >= observed - 1e-12).mean(), (means <= -observed + 1e-12).mean())
    # two-sided as scipy defines it: twice the smaller tail at the observed mean
    upper = (means >= diffs.mean() - 1e-12).mean()
    lower = (means <= diffs.mean() + 1e-12).mean()
    p, floor = sign_flip_p(diffs)
    assert p == pytest.approx(min(1.0, 2 * min(upper, lower)))
    assert p == pytest.approx(min(1.0, expected))
    assert floor == pytest.approx(2 / 2**10)


# ---- 100 clips -----------------------------------------------------------------------------


def test_hundred_clips_monte_carlo_p_agrees_with_the_t_test_and_states_its_floor():
    comp = comparison(100, gain=0.25, noise=1.0, seed=5)
    baseline, method = study(100, gain=0.25, noise=1.0, seed=5)
    a = np.array(list(syn_clip_means(method).values()))
    b = np.array(list(syn_clip_means(baseline).values()))
    t_p = scipy_stats.ttest_rel(a, b).pvalue
    assert 0.001 < t_p < 0.2  # a case where the p-value matters
    assert comp.p_value == pytest.approx(t_p, abs=0.015)  # sign-flip ~ paired t at n=100
    assert comp.p_floor == pytest.approx(2 / 10_000) and not comp.p_at_floor
    huge = comparison(100)
    assert huge.p_at_floor and format_p(huge) == "p<=0.0002"
    cell = build_report(from_records(study(100)), by=()).rows[1].cells["psnr_rgb"]
    assert cell.n == 100 and cell.estimate.ci_low < cell.value < cell.estimate.ci_high


def syn_clip_means(record) -> dict[str, float]:
    from auhead_bench.reporting.stats import clip_means

    return clip_means(record.metrics["psnr_rgb"].per_clip)


# ---- seeds are not samples -----------------------------------------------------------------


def test_seeds_never_narrow_an_interval():
    """The same 12 clip values under 1 seed and copied under 4 seeds (a deterministic method
    generated again per seed) give the same n and the same interval."""
    values = list(np.random.default_rng(1).normal(0.5, 0.1, 12))
    one = estimate(syn.metric("m", {0: values}))
    four = estimate(syn.metric("m", {s: values for s in range(4)}))
    assert one.n_clips == four.n_clips == 12
    assert (four.ci_low, four.ci_high) == pytest.approx((one.ci_low, one.ci_high))
    rows = build_report(
        from_records(
            [
                syn.record("det", [syn.metric("m", {0: values})]),
                syn.record("rep", [syn.metric("m", {s: values for s in range(4)})], seeds=range(4)),
            ]
        ),
        by=(),
    ).rows
    assert [r.cells["m"].n for r in rows] == [12, 12]


def test_small_groups_of_a_breakdown_get_no_interval():
    result = syn.metric("m", {0: list(np.linspace(0, 1, 40))}, clips=clips(40))
    groups = group_estimates(result, "emotion")  # 10 clips each
    assert all(g.n_clips == 10 and g.ci_low is not None for g in groups.values())
    by_intensity = group_estimates(result, "intensity", min_clips=14)  # 14, 13, 13 clips
    assert [g.ci_low is None for g in by_intensity.values()] == [False, True, True]


def test_bootstrap_coverage_grows_with_n():
    """The reason for the threshold: on 3 clips a nominal 95% interval misses far more often."""
    rng = np.random.default_rng(11)

    def coverage(n: int, trials: int = 200) -> float:
        hits = 0
        for t in range(trials):
            low, high = bootstrap_ci(rng.normal(0.0, 1.0, (n, 1)), n_boot=400, seed=t)
            hits += low <= 0.0 <= high
        return hits / trials

    small, enough = coverage(3), coverage(20)
    assert small < 0.85 and enough > small + 0.05


def test_ceil_2g_never_rounds_a_floor_down():
    assert ceil_2g(2 / 2**10) == "0.002" and ceil_2g(0.25) == "0.25"
    assert ceil_2g(2 / 2**12) == "0.00049" and ceil_2g(2 / 10_000) == "0.0002"
    for n in range(1, 30):
        assert float(ceil_2g(2 / 2**n)) >= 2 / 2**n


def test_the_runs_summary_counts_clips_and_warns_on_few():
    from auhead_bench.table import summary

    few = summary(study(3))
    assert "n=3" in few and "n=6" not in few
    assert few.splitlines()[-1].startswith("warning: n too small: 3 clip(s), fewer than 10")
    assert "warning" not in summary(study(10))


def test_latex_prints_the_floor_as_p_leq():
    report = build_report(from_records(study(10)), baseline="static_frame")
    tex = render(report, "latex", ["compare"])
    assert "($p\\leq{}$0.002)" in tex and "0.001" not in tex


def test_thousands_of_clips_use_random_sign_flips_without_overflow():
    diffs = np.random.default_rng(4).normal(0.05, 1.0, 3000)
    p, floor = sign_flip_p(diffs)
    assert 0 < p <= 1 and floor == pytest.approx(2 / 10_000)
