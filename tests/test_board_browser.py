"""The board's new parts in a real browser (headless Debian Chromium, from file://):
reported rows marked and never ranked, the "other protocols" table, a flagged row, the
release label, and the pull-request comment's Markdown as GitHub-flavoured HTML.

Skips only when the browser or the Python driver is missing (never under CI=true).
Set AUHEAD_BOARD_SCREENSHOT=docs/images/leaderboard-board.png to also save a screenshot of
the board (its reproduced rows are synthetic test records, named synthetic_*).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import synthetic_records as syn
from board_fixtures import BOARD, ranked_record, write_record
from test_leaderboard_browser import ARGS, CHROMIUM, pytestmark  # noqa: F401 - the skips

from auhead_bench.reporting.board import load_flags
from auhead_bench.reporting.check import check_paths, markdown
from auhead_bench.reporting.leaderboard import build_site

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("board-browser")
    results = root / "results"
    # the shipped reported rows (the AUHead paper's) beside synthetic reproduced records
    import shutil

    shutil.copytree(REPO / "leaderboard" / "results" / "reported", results / "reported")
    write_record(results, "memo.json",
                 ranked_record("synthetic_memo", 22.0, 2.0, fid=11.5, method="memo"))
    write_record(results, "hallo.json",
                 ranked_record("synthetic_hallo", 21.0, 2.5, fid=14.0, method="hallo"))
    write_record(results, "sonic.json",
                 ranked_record("synthetic_sonic", 23.0, 1.5, fid=9.0, method="sonic"))
    other = ranked_record("synthetic_fvd_first", 22.5, 1.8)
    other.metrics["fvd_i3d_16f_allwin_full"] = syn.metric(
        "fvd_i3d_16f_allwin_full", None, higher_is_better=False, distribution={0: 300.0}
    )
    metric = BOARD.metric("fvd_i3d_16f_allwin_full")
    other.metrics["fvd_i3d_16f_allwin_full"].options = {**metric.options, "clips": "first"}
    other.metrics["fvd_i3d_16f_allwin_full"].protocol = {"version": "1"}
    write_record(results, "other.json", other)
    flags = root / "flags.yaml"
    flags.write_text("synthetic_sonic__mead:\n  reason: videos not provided on request\n"
                     "  link: https://github.com/example/auhead-bench/issues/1\n")
    kw = {"results": results, "board": BOARD, "flags": load_flags(flags), "plots": False,
          "n_boot": 200, "releases": root / "archive"}
    build_site(root / "old", release="v1", **kw)  # an earlier release, kept in the archive
    site = build_site(root / "site", release="v2", **kw)
    # the PR comment for a submission, rendered as GitHub renders Markdown (tables, details)
    from markdown_it import MarkdownIt

    sub = root / "sub"
    write_record(sub, "new.json", ranked_record("synthetic_new", 22.2, 1.9, fid=12.0))
    text = markdown(check_paths([sub], results=results, board=BOARD), BOARD)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    comment = root / "comment.html"
    comment.write_text(f"<!DOCTYPE html><meta charset=utf-8><body>{html}</body>")
    return {"index": site.index, "comment": comment}


def browse(url: str, work) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            work(page)
            assert errors == []
        finally:
            browser.close()


def row_labels(page, dataset: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#dataset-{dataset} table.leaderboard tbody tr",
        "rows => rows.map(r => r.querySelector('th').innerText.split('\\n')[0].trim())",
    )


def test_reported_rows_are_marked_and_never_ranked(built):
    def work(page):
        mead = page.locator("#dataset-mead")
        reported = mead.locator("tbody.reported tr")
        assert reported.count() == 2  # AUHead (MEMO) and the authors' MEMO
        text = reported.first.inner_text()
        assert "REPORTED" in text.upper() and "arXiv 2602.09534" in text
        assert mead.locator("tbody.reported td.best").count() == 0
        memo = mead.locator("tbody.reported tr", has_text="MEMO, as reproduced").inner_text()
        assert "Δ -0.38 vs reproduced 11.5 (synthetic_memo)" in memo
        # sorting moves the ranked rows only; the reported rows stay below them, unranked
        before = row_labels(page, "mead")
        assert before == ["synthetic_sonic", "synthetic_memo", "synthetic_hallo",
                          "REPORTED AUHead (MEMO), as reported",
                          "REPORTED MEMO, as reproduced by the AUHead authors"]
        header = mead.locator("th.metric", has_text="psnr_rgb").locator("button")
        header.click()  # the default order is best PSNR first: this reverses it
        after = row_labels(page, "mead")
        assert after[:3] == ["synthetic_hallo", "synthetic_memo", "synthetic_sonic"]
        assert after[3:] == before[3:]
        # the shipped CREMA-D row has a table of its own, with no reproduced row to rank
        crema = page.locator("#dataset-crema_d")
        assert crema.locator("tbody.reported tr").count() == 1
        assert crema.locator("td.best").count() == 0

    browse(built["index"].as_uri(), work)


def test_other_protocols_flag_and_release(built):
    def work(page):
        other = page.locator("#other-protocols")
        assert other.is_visible()
        assert "metrics.fvd_i3d_16f_allwin_full.options.clips is \"first\"" in other.inner_text()
        assert other.locator("td.best").count() == 0
        assert page.locator("#dataset-mead", has_text="synthetic_fvd_first").count() == 0
        flagged = page.locator("tr.flagged")
        assert flagged.count() == 1
        assert "flagged: videos not provided on request" in flagged.inner_text()
        opacity = flagged.evaluate("el => getComputedStyle(el).opacity")
        assert float(opacity) < 1
        assert flagged.locator("td.best").count() == 0
        assert page.locator(".release-label").inner_text() == "Release v2"
        earlier = page.locator(".release .earlier a")
        assert earlier.count() == 1 and earlier.inner_text() == "v1"
        if os.environ.get("AUHEAD_BOARD_SCREENSHOT"):
            page.locator("#dataset-mead").screenshot(path=os.environ["AUHEAD_BOARD_SCREENSHOT"])
        earlier.click()
        page.wait_for_load_state()
        assert page.url.endswith("releases/v1/release.json")

    browse(built["index"].as_uri(), work)


def test_pr_comment_markdown_renders(built):
    def work(page):
        assert page.locator("h2").inner_text() == "auhead-bench leaderboard check"
        table = page.locator("table").first
        assert table.locator("th").all_inner_texts()[:3] == ["metric", "value", "rank"]
        row = table.locator("tr", has_text="psnr_rgb").inner_text()
        assert "2 of 4" in row and "synthetic_sonic 23 (Δ -0.8)" in row
        page.locator("summary").click()
        joined = page.locator("details table")
        assert joined.is_visible()
        assert joined.locator("strong").inner_text() == "synthetic_new (new)"

    browse(built["comment"].as_uri(), work)
