"""The built leaderboard in a real browser (headless Debian Chromium) opened from file://.

Skips only when the browser or the Python driver is missing; CI installs both
(apt-get install -y chromium; pip install playwright). ``playwright install`` is never needed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import optional
import pytest
import synthetic_records as syn
from optional import needs_file, needs_module

from auhead_bench.records import dump_record
from auhead_bench.reporting.leaderboard import build_site

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    needs_module("playwright", optional.PLAYWRIGHT),
    needs_file(CHROMIUM, optional.CHROMIUM),
]

HOSTILE = "<script>window.__pwned = 1; alert(1)</script>"
HOSTILE_REASON = '<img src=x onerror="window.__pwned = 2; alert(2)">'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    values = [10.0 + i for i in range(12)]
    records = [
        syn.record(
            "mid",
            [
                syn.metric("psnr_rgb", {0: [v + 1 for v in values]}),
                syn.metric("lmd_mouth", {0: [2.0] * 12}, higher_is_better=False),
            ],
        ),
        syn.record(
            HOSTILE,
            [
                syn.metric("psnr_rgb", {0: [v + 3 for v in values]}),
                syn.metric(
                    "lmd_mouth",
                    None,
                    status="failed",
                    reason=HOSTILE_REASON,
                    higher_is_better=False,
                ),
            ],
            method=HOSTILE,
            record_id=HOSTILE,
        ),
        syn.record(
            "low",
            [
                syn.metric("psnr_rgb", {0: values}),
                syn.metric("lmd_mouth", {0: [1.0] * 12}, higher_is_better=False),
            ],
        ),
        syn.record(
            "high",
            [
                syn.metric("psnr_rgb", {0: [v + 2 for v in values]}),
                syn.metric("lmd_mouth", {0: [3.0] * 12}, higher_is_better=False),
            ],
        ),
    ]
    root = tmp_path_factory.mktemp("browser")
    results = root / "results"
    results.mkdir()
    for i, record in enumerate(records):
        (results / f"{i}.json").write_text(json.dumps(dump_record(record)))
    return build_site(root / "site", results=results, plots=False, n_boot=200).out


def labels(page) -> list[str]:
    return page.eval_on_selector_all(
        "table.leaderboard tbody th.label a", "links => links.map(a => a.textContent.trim())"
    )


def test_sorting_and_no_record_script_runs(site: Path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            dialogs, errors = [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(site.joinpath("index.html").as_uri())
            # our script ran (it marks the page) and nothing from a record did
            assert page.evaluate("document.documentElement.classList.contains('js')")
            assert page.evaluate("window.__pwned") is None
            assert dialogs == [] and errors == []
            # the hostile name is shown as text
            assert HOSTILE in labels(page)
            # an empty cell's reason is shown once, as a note of its column, and as text
            assert page.inner_text("section.board").count(HOSTILE_REASON) == 1
            # default: best PSNR first (higher is better)
            assert labels(page) == [HOSTILE, "high", "mid", "low"]

            lmd = page.locator("th.metric", has_text="lmd_mouth")
            lmd.locator("button").click()  # lower is better: smallest first, empty last
            assert labels(page) == ["low", "mid", "high", HOSTILE]
            assert lmd.get_attribute("aria-sort") == "ascending"
            lmd.locator("button").click()  # second click reverses; empty stays last
            assert labels(page) == ["high", "mid", "low", HOSTILE]
            assert lmd.get_attribute("aria-sort") == "descending"

            psnr = page.locator("th.metric", has_text="psnr_rgb")
            psnr.locator("button").click()  # higher is better: largest first
            assert labels(page) == [HOSTILE, "high", "mid", "low"]
            page.locator("th.label button").click()  # method names alphabetically
            assert labels(page) == [HOSTILE, "high", "low", "mid"]

            # a value cell links to its record page; the page renders, escaped, no script
            page.locator("td.metric a").first.click()
            page.wait_for_load_state()
            assert "/records/" in page.url and "#metric-" in page.url
            assert page.evaluate("window.__pwned") is None and dialogs == []
        finally:
            browser.close()


FID_REASON = "FID Inception weights are not in the cache -- fix: auhead-bench weights pull fid"
WIDE_METRICS = ("psnr_rgb", "ssim", "lpips", "csim", "lse_c", "lmd_mouth", "au_mae")


def fid():
    return syn.metric(
        "fid", None, status="not_computed", reason=FID_REASON, higher_is_better=False
    )


@pytest.fixture(scope="module")
def wide_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven metrics with values, one not computed for every row, one row of 3 clips."""
    small = {f"c{i:02d}": syn.CLIPS[f"c{i:02d}"] for i in range(3)}
    records = []
    for k, name in enumerate(("alpha", "beta", "gamma", "delta")):
        metrics = [
            syn.metric(m, {0: [0.5 + 0.01 * (i + j + k) for i in range(12)]})
            for j, m in enumerate(WIDE_METRICS)
        ]
        records.append(syn.record(name, [*metrics, fid()], seeds=(0,)))
    tiny = [syn.metric(m, {0: [0.4, 0.5, 0.6]}, clips=small) for m in WIDE_METRICS]
    records.append(syn.record("tiny", [*tiny, fid()], clips=small))
    root = tmp_path_factory.mktemp("wide")
    results = root / "results"
    results.mkdir()
    for i, record in enumerate(records):
        (results / f"{i}.json").write_text(json.dumps(dump_record(record)))
    return build_site(root / "site", results=results, plots=False, n_boot=200).out


def test_header_matches_cells_reasons_once_per_column_at_1400px(wide_site: Path, tmp_path):
    shots = Path(os.environ.get("AUHEAD_SCREENSHOTS", tmp_path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(wide_site.joinpath("index.html").as_uri())
            shot = shots / "leaderboard-1400.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            intro = page.inner_text("section.intro")
            # the header describes what the cells show: a value, then [low, high]; no ±
            assert "[low, high]" in intro and "95% confidence interval" in intro
            assert "±" not in page.inner_text("body") and "half-width" not in intro
            cis = page.eval_on_selector_all(
                "td.metric:not(.empty) .ci", "els => els.map(e => e.textContent.trim())"
            )
            assert cis and all(re.fullmatch(r"\[-?[\d.]+, -?[\d.]+\]", c) for c in cis), cis
            values = page.eval_on_selector_all(
                "td.metric:not(.empty) .value", "els => els.map(e => e.textContent.trim())"
            )
            assert all(re.fullmatch(r"-?[\d.]+", v) for v in values), values
            # 3 clips: the value and "n too small", no interval; a warning line above
            tiny = page.locator("tr", has=page.locator("a", has_text="tiny"))
            assert tiny.locator(".ci").count() == 0
            assert "n=3, n too small" in tiny.inner_text()
            assert "n too small" in page.inner_text(".small-n")
            # the not-computed column: its reason once, in a note its header points to
            board = page.inner_text("section.board")
            assert board.count("FID Inception weights are not in the cache") == 1
            fid = page.locator("th.metric", has_text="fid")
            assert fid.locator("sup.mark").inner_text() == "[1]"
            empty = page.eval_on_selector_all(
                "td.metric.empty", "els => els.map(e => e.innerText.trim())"
            )
            assert len(empty) == 5 and set(empty) == {"—"}
            # eight metric columns, cost and reproduce fit 1400 px without scrolling
            widths = page.evaluate(
                "(() => { const s = document.querySelector('.scroll');"
                " return [s.scrollWidth, s.clientWidth]; })()"
            )
            assert widths[0] <= widths[1], widths
            # the reading notes explain the CI rule where the table is
            assert "fewer than 10 clips" in page.inner_text("section.reading")
        finally:
            browser.close()
