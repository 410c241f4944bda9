"""The built leaderboard in a real browser (headless Debian Chromium) opened from file://.

Skips only when the browser or the Python driver is missing; CI installs both
(apt-get install -y chromium; pip install playwright). ``playwright install`` is never needed.
"""

from __future__ import annotations

import json
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
            assert HOSTILE_REASON in page.inner_text("table.leaderboard")
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
