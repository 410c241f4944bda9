"""The board: reported rows, board.yaml protocol, other protocols, flags, releases, limits."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import synthetic_records as syn
from board_fixtures import BOARD, conform, ranked_record, reported_row, write_record
from click.testing import CliRunner

from auhead_bench.errors import BenchError
from auhead_bench.plugins import load_plugins
from auhead_bench.records import RunRecord, Submission, dump_record, load_record
from auhead_bench.reporting import limits
from auhead_bench.reporting.board import load_board, load_flags, protocol_differences
from auhead_bench.reporting.commands import leaderboard
from auhead_bench.reporting.leaderboard import (
    build_site,
    collect,
    default_results_dir,
)
from auhead_bench.reporting.release import MANIFEST, verify

REPO = Path(__file__).resolve().parents[1]


def board_results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    write_record(results, "memo.json", ranked_record("memo", 22.0, 2.0, fid=11.5))
    write_record(results, "auhead.json", ranked_record("auhead", 23.0, 1.5, fid=10.0))
    write_record(results, "hallo.json", ranked_record("hallo", 21.0, 2.5, fid=14.0))
    other = ranked_record("fvdfirst", 30.0, 0.5)
    other.metrics["fvd_i3d_16f_allwin_full"] = syn.metric(
        "fvd_i3d_16f_allwin_full", None, higher_is_better=False, distribution={0: 300.0}
    )
    metric = BOARD.metric("fvd_i3d_16f_allwin_full")
    other.metrics["fvd_i3d_16f_allwin_full"].options = {**metric.options, "clips": "first"}
    write_record(results, "other.json", other)
    write_record(results / "reported", "memo_reported.json", reported_row())
    return results


# ---- reported results ----------------------------------------------------------------------


def test_shipped_reported_rows_validate_and_cite():
    reported: list = []
    accepted, rejected = collect(default_results_dir(), [], reported)
    assert rejected == []
    rows = {e.result.record_id: e.result for e in reported}
    assert {"reported:2602.09534:auhead_memo:mead", "reported:2602.09534:auhead_memo:crema_d",
            "reported:2602.09534:memo:mead"} <= set(rows)
    for result in rows.values():
        assert result.verified is False and result.citation.arxiv == "2602.09534"
        for metric_id, metric in result.metrics.items():
            assert BOARD.metric(metric_id) is not None, metric_id
            # no metric id is known to be the paper's protocol: each is stated as paper-stated
            assert metric.protocol == "paper-stated" and metric.stated
    mead = rows["reported:2602.09534:auhead_memo:mead"].metrics
    assert {m.paper_name: m.value for m in mead.values()} == {
        "Sync": 6.63, "PSNR": 23.35, "SSIM": 0.740, "FID": 10.97, "M-LMD": 1.86, "F-LMD": 2.16,
    }
    assert rows["reported:2602.09534:memo:mead"].metrics["fid_inception_pool3_full"].value == 11.12


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"verified": True}, "verified"),
        ({"citation": {"paper": "p", "arxiv": "not-an-id", "table": "1", "quoted_from": "x"}},
         "citation.arxiv"),
        ({"metrics": {}}, "metrics"),
        ({"verified": None}, "verified"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_reported_result_is_rejected_with_its_reason(tmp_path, change, word):
    results = board_results(tmp_path)
    write_record(results, "bad_reported.json", reported_row(record_id="bad", **change))
    site = build_site(tmp_path / "site", results=results, board=BOARD, plots=False, n_boot=200)
    reasons = {str(r.path): r.reason for r in site.rejected}
    assert list(reasons) == ["bad_reported.json"]
    reason = reasons["bad_reported.json"]
    assert "reported result" in reason and word in reason
    assert len(site.reported) == 1 and len(site.accepted) == 4


def test_site_marks_reported_rows_unranked_with_delta(tmp_path):
    results = board_results(tmp_path)
    site = build_site(tmp_path / "site", results=results, board=BOARD, plots=False, n_boot=200)
    html = site.index.read_text()
    body = html[html.index('<tbody class="reported">'):]
    body = body[: body.index("</tbody>")]
    assert "reported" in body and "arXiv 2602.09534" in body and "Table 1" in body
    # reported minus reproduced: 11.12 - 11.5
    assert "Δ -0.38 vs reproduced 11.5 (memo)" in body
    assert "protocol not verified to match" in body
    assert "best" not in body  # never bold
    assert 'href="https://arxiv.org/abs/2602.09534"' in body
    # only reproduced rows are ranked: the best FID (auhead, 10.0) is bold, the reported
    # 11.12 is not, nor is the shipped AUHead (MEMO) row's 10.97
    ranked = html[html.index("<tbody>"): html.index('<tbody class="reported">')]
    assert ranked.count("metric best") == 3  # psnr, lmd, fid: auhead is best on each
    published = json.loads((site.out / "downloads" / "reported.json").read_text())
    assert published[0]["verified"] is False


def test_no_delta_without_a_reproduced_record_of_the_same_method(tmp_path):
    results = tmp_path / "results"
    write_record(results, "hallo.json", ranked_record("hallo", 21.0, 2.5, fid=14.0))
    write_record(results, "r.json", reported_row())
    html = build_site(tmp_path / "s", results=results, board=BOARD, plots=False,
                      n_boot=200).index.read_text()
    assert "Δ" not in html and "11.12" in html


# ---- board.yaml and other protocols --------------------------------------------------------


def test_board_yaml_names_real_metrics_with_their_options_and_versions():
    registry = load_plugins()
    board = load_board()
    for metric in board.metrics:
        cls = registry.get("metric", metric.id).cls
        defaults = cls.Options().model_dump(mode="json")
        assert set(metric.options) == set(defaults), metric.id  # every option named
        assert metric.options == defaults, metric.id  # the board ranks the defaults
        assert metric.version == cls.version, metric.id
    assert {d.id for d in board.datasets} <= set(registry.ids("dataset"))


def test_protocol_differences_name_the_field():
    record = ranked_record("m", 20.0, 2.0)
    assert protocol_differences(record, BOARD) == []
    changed = record.model_copy(deep=True)
    changed.metrics["psnr_rgb"].options["align"] = "pad"
    changed.preparation["intermediate"] = "lossless"
    changed.dataset.options["identities"] = ["M003"]
    lines = protocol_differences(changed, BOARD)
    assert lines == [
        'dataset.options.identities is ["M003"] (the board ranks null or '
        '["M003", "M030", "W009", "W015"])',
        'preparation.intermediate is "lossless" (the board ranks "x264_crf18")',
        'metrics.psnr_rgb.options.align is "pad" (the board ranks "truncate")',
    ]
    reordered = record.model_copy(deep=True)
    reordered.dataset.options["identities"] = ["W015", "W009", "M030", "M003"]
    assert protocol_differences(reordered, BOARD) == []
    elsewhere = conform(syn.record("x", [syn.metric("psnr_rgb", {0: [1.0] * 12})]))
    elsewhere.dataset.id = "hdtf"
    assert protocol_differences(elsewhere, BOARD)[0].startswith("dataset.id is 'hdtf'")
    old = record.model_copy(deep=True)
    old.preparation = {}
    assert "preparation.framing is missing" in " ".join(protocol_differences(old, BOARD))


def test_other_protocols_table_is_never_ranked(tmp_path):
    results = board_results(tmp_path)
    site = build_site(tmp_path / "site", results=results, board=BOARD, plots=False, n_boot=200)
    assert [i.record.experiment for i, _ in site.others] == ["fvdfirst"]
    html = site.index.read_text()
    other = html[html.index('id="other-protocols"'):]
    other = other[: other.index("</section>")]
    assert "fvdfirst" in other and "metrics.fvd_i3d_16f_allwin_full.options.clips" in other
    assert "best" not in other  # psnr 30 would be the best of all: it is not ranked
    ranked = html[: html.index('id="other-protocols"')]
    assert "fvdfirst" not in ranked
    page = next((site.out / "records").glob("fvdfirst*.html")).read_text()
    assert "another protocol" in page


def test_without_a_board_everything_is_ranked(tmp_path):
    results = board_results(tmp_path)
    site = build_site(tmp_path / "site", results=results, plots=False, n_boot=200)
    assert site.others == [] and len(site.ranked) == 4


# ---- flags ---------------------------------------------------------------------------------


def test_flagged_entry_stays_greyed_with_reason_and_is_never_bold(tmp_path):
    results = board_results(tmp_path)
    flags_file = tmp_path / "flags.yaml"
    flags_file.write_text(
        "auhead__mead:\n  reason: 'videos <b>not</b> provided on request'\n"
        "  link: https://github.com/example/auhead-bench/issues/1\n"
    )
    flags = load_flags(flags_file)
    site = build_site(tmp_path / "site", results=results, board=BOARD, flags=flags,
                      plots=False, n_boot=200)
    html = site.index.read_text()
    row = html[html.index('<tr class="flagged">'):]
    row = row[: row.index("</tr>")]
    assert "auhead" in row and "videos &lt;b&gt;not&lt;/b&gt; provided on request" in row
    assert 'href="https://github.com/example/auhead-bench/issues/1"' in row
    assert "metric best" not in row  # auhead has the best values but is flagged
    ranked = html[html.index("<tbody>"): html.index('<tbody class="reported">')]
    assert ranked.count("metric best") == 3  # memo is now best on all three


def test_bad_flags_file_is_one_line(tmp_path):
    bad = tmp_path / "flags.yaml"
    bad.write_text("x:\n  reason: ok\n  link: javascript:alert(1)\n")
    with pytest.raises(BenchError, match="invalid flag for 'x' at link"):
        load_flags(bad)
    assert load_flags(None) == load_flags(REPO / "leaderboard" / "flags.yaml")


# ---- releases ------------------------------------------------------------------------------


def test_release_is_written_once_and_listed_later(tmp_path):
    results = board_results(tmp_path)
    archive = tmp_path / "archive"
    kw = {"results": results, "board": BOARD, "plots": False, "n_boot": 200, "releases": archive}
    site = build_site(tmp_path / "site", release="v1", **kw)
    folder = site.out / "releases" / "v1"
    assert site.release == folder
    for name in ("records", "table/leaderboard.json", "schema/run-record.json",
                 "schema/reported-result.json", "board.yaml", "flags.yaml", "release.json",
                 MANIFEST):
        assert (folder / name).exists(), name
    assert verify(folder) == [] and (archive / "v1" / MANIFEST).is_file()
    manifest = (folder / MANIFEST).read_text()
    assert re.search(r"^[0-9a-f]{64}  records/memo__mead\.json$", manifest, re.M)
    assert "Release v1" in site.index.read_text()
    before = (folder / MANIFEST).read_bytes()
    with pytest.raises(BenchError, match="release v1 already exists"):
        build_site(tmp_path / "site", release="v1", **kw)
    with pytest.raises(BenchError, match="release v1 already exists"):  # the archive has it
        build_site(tmp_path / "fresh", release="v1", **kw)
    assert (folder / MANIFEST).read_bytes() == before
    # a later build on a fresh machine publishes v1 again, unchanged, and links to it
    later = build_site(tmp_path / "fresh", release="v2", **kw)
    html = later.index.read_text()
    assert "Release v2" in html and 'href="releases/v1/release.json"' in html
    assert verify(later.out / "releases" / "v1") == []
    # an ordinary rebuild keeps every release
    again = build_site(tmp_path / "fresh", **kw)
    assert "Unreleased build" in again.index.read_text()
    assert (again.out / "releases" / "v2" / MANIFEST).is_file()
    with pytest.raises(BenchError, match="not a plain name"):
        build_site(tmp_path / "x", release="../v3", **kw)


def test_release_command_refuses_a_second_build(tmp_path):
    results = board_results(tmp_path)
    args = ["build", "--results", str(results), "--out", str(tmp_path / "site"), "--no-plots",
            "--n-boot", "200", "--release", "v1", "--releases", str(tmp_path / "archive")]
    first = CliRunner().invoke(leaderboard, args)
    assert first.exit_code == 0, first.output
    assert "release v1 written" in first.output
    second = CliRunner().invoke(leaderboard, args)
    assert second.exit_code == 2 and "already exists" in second.output


# ---- size limits ---------------------------------------------------------------------------


def test_oversized_records_are_rejected_and_the_rest_build(tmp_path, monkeypatch):
    results = board_results(tmp_path)
    big = dump_record(ranked_record("bigstring", 20.0, 2.0))
    big["method"]["options"]["note"] = "x" * (limits.MAX_STRING_CHARS + 1)
    write_record(results, "big_string.json", big)
    key = dump_record(ranked_record("bigkey", 20.0, 2.0))
    key["extractors"]["k" * (limits.MAX_STRING_CHARS + 5)] = {}
    write_record(results, "big_key.json", key)
    quoted = dump_record(ranked_record("quoted", 20.0, 2.0))  # no quote-free run: the walk
    quoted["method"]["options"]["note"] = 'a"' * (limits.MAX_STRING_CHARS // 2 + 1)
    write_record(results, "big_quoted.json", quoted)
    site = build_site(tmp_path / "site", results=results, board=BOARD, plots=False, n_boot=200)
    reasons = {str(r.path): r.reason for r in site.rejected}
    assert "string at method.options.note is 10,002 characters" in reasons["big_quoted.json"]
    assert reasons["big_string.json"].startswith(
        "string at method.options.note is 10,001 characters (limit 10,000)"
    )
    assert "a key under extractors" in reasons["big_key.json"]
    assert len(site.accepted) == 4
    monkeypatch.setattr(limits, "MAX_RECORD_BYTES", 1000)
    site = build_site(tmp_path / "site", results=results, board=BOARD, plots=False, n_boot=200)
    assert all("MiB (limit 0 MiB)" in r.reason or "limit" in r.reason for r in site.rejected)
    assert len(site.accepted) == 0


# ---- the record's submission fields --------------------------------------------------------


def test_submission_field_is_optional_and_backward_compatible(tmp_path):
    record = ranked_record("m", 20.0, 2.0)
    assert "submission" not in dump_record(record)  # an unsubmitted record dumps as before
    path = write_record(tmp_path, "r.json", record)
    assert load_record(path) == record
    record.submission = Submission(generated_by="Lab A", evaluated_by="Lab B")
    path = write_record(tmp_path, "s.json", record)
    assert load_record(path).submission.evaluated_by == "Lab B"
    assert isinstance(load_record(path), RunRecord)
    assert os.path.getsize(path) > 0


# ---- leaderboard check ---------------------------------------------------------------------


def submission_folder(tmp_path: Path) -> Path:
    sub = tmp_path / "sub"
    write_record(sub, "new.json", ranked_record("newmethod", 21.5, 1.9, fid=12.0))
    return sub


def test_check_valid_submission_prints_markdown_and_exits_0(tmp_path):
    results = board_results(tmp_path)
    sub = submission_folder(tmp_path)
    out = CliRunner().invoke(
        leaderboard, ["check", str(sub / "new.json"), "--results", str(results),
                      "--markdown", str(tmp_path / "comment.md")]
    )
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert text.startswith("## auhead-bench leaderboard check")
    assert "| psnr_rgb ↑ | 21.5 | 3 of 4 | memo 22 (Δ -0.5) | hallo 21 (Δ +0.5) |" in text
    # the FID reported for MEMO is not the submitted method's: no reported column entry
    assert "| fid_inception_pool3_full ↓ | 12 | 3 of 4 |" in text
    assert "| **newmethod (new)** |" in text
    assert (tmp_path / "comment.md").read_text() == text


def test_check_names_the_differing_fvd_option_and_exits_1(tmp_path):
    results = board_results(tmp_path)
    other = results / "other.json"  # the FVD clips=first record, checked as a submission
    out = CliRunner().invoke(leaderboard, ["check", str(other), "--results", str(results)])
    assert out.exit_code == 1
    assert (f"other protocol {other}: metrics.fvd_i3d_16f_allwin_full.options.clips is "
            '"first" (the board ranks "all")') in out.stderr
    allowed = CliRunner().invoke(
        leaderboard, ["check", str(other), "--results", str(results), "--allow-other-protocols"]
    )
    assert allowed.exit_code == 0


def test_check_rejects_one_line_each_and_goes_on(tmp_path):
    results = board_results(tmp_path)
    sub = submission_folder(tmp_path)
    (sub / "broken.json").write_text("{")
    tampered = dump_record(ranked_record("tampered", 20.0, 2.0))
    tampered["metrics"]["psnr_rgb"]["value"] = 99.0
    write_record(sub, "tampered.json", tampered)
    write_record(sub, "dup.json", ranked_record("memo", 20.0, 2.0))  # memo__mead is on the board
    (sub / "notes.txt").write_text("hi")
    out = CliRunner().invoke(leaderboard, ["check", str(sub), str(sub / "notes.txt"),
                                           "--results", str(results)])
    assert out.exit_code == 1
    lines = [line for line in out.stderr.splitlines() if line.startswith("rejected ")]
    assert len(lines) == 4, out.stderr
    joined = "\n".join(lines)
    assert "broken.json: not valid JSON" in joined
    assert ("tampered.json: metrics.'psnr_rgb'.value is not the mean of its per_seed values"
            in joined)
    assert "dup.json: duplicate record_id 'memo__mead' (already on the board): adds no metric" in (
        joined
    )
    assert "notes.txt: not a results file" in joined
    assert "newmethod" in out.stdout  # the good one is still compared


def test_check_a_file_already_under_results_is_not_its_own_duplicate(tmp_path):
    results = board_results(tmp_path)
    path = write_record(results / "new", "new.json", ranked_record("newm", 21.5, 1.9, fid=12.0))
    out = CliRunner().invoke(leaderboard, ["check", str(path), "--results", str(results)])
    assert out.exit_code == 0, out.output
    assert "3 of 4" in out.stdout  # ranked among the four others, not against itself


def test_site_shows_who_generated_and_who_evaluated(tmp_path):
    results = tmp_path / "results"
    record = ranked_record("memo", 22.0, 2.0)
    record.submission = Submission(generated_by="Lab <A>", evaluated_by="Lab B")
    write_record(results, "memo.json", record)
    site = build_site(tmp_path / "s", results=results, board=BOARD, plots=False, n_boot=200)
    assert "generated by Lab &lt;A&gt; · evaluated by Lab B" in site.index.read_text()
    page = next((site.out / "records").glob("memo*.html")).read_text()
    assert "Evaluated by</dt><dd>Lab B" in page


def test_check_ranks_against_unflagged_rows_only(tmp_path):
    results = board_results(tmp_path)
    sub = submission_folder(tmp_path)
    flags = tmp_path / "flags.yaml"
    flags.write_text("auhead__mead:\n  reason: under review\n")
    out = CliRunner().invoke(leaderboard, ["check", str(sub), "--results", str(results),
                                           "--flags", str(flags)])
    assert out.exit_code == 0, out.output
    assert "| psnr_rgb ↑ | 21.5 | 2 of 3 | memo 22 (Δ -0.5) | hallo 21 (Δ +0.5) |" in out.stdout


def test_check_a_reported_result(tmp_path):
    results = board_results(tmp_path)
    sub = tmp_path / "sub"
    good = write_record(sub, "paper.json", reported_row(record_id="reported:x:hallo:mead",
                                                         method="hallo", label="Hallo, paper"))
    out = CliRunner().invoke(leaderboard, ["check", str(good), "--results", str(results)])
    assert out.exit_code == 0, out.output
    assert "### Reported: Hallo, paper on mead" in out.stdout
    assert "| fid_inception_pool3_full | FID | 11.12 | paper-stated: frame FID |" in out.stdout
    row = reported_row(record_id="reported:y")
    row["metrics"]["sync_paper"] = row["metrics"].pop("fid_inception_pool3_full")
    bad = write_record(sub, "unknown_metric.json", row)
    out = CliRunner().invoke(leaderboard, ["check", str(bad), "--results", str(results)])
    assert out.exit_code == 1
    assert "metrics.sync_paper: not a metric the board ranks" in out.stderr
    dup = write_record(sub, "dup.json", reported_row())  # the id the board already has
    out = CliRunner().invoke(leaderboard, ["check", str(dup), "--results", str(results)])
    assert out.exit_code == 1 and "already on the board" in out.stderr


def test_schema_command_prints_the_reported_schema():
    from auhead_bench.cli import cli

    out = CliRunner().invoke(cli, ["schema", "--reported"])
    assert out.exit_code == 0
    schema = json.loads(out.output)
    assert schema["properties"]["verified"]["const"] is False and "verified" in schema["required"]


def test_a_reported_result_must_say_it_is_not_verified(tmp_path):
    from auhead_bench.reporting.reported import reported_from_data

    row = reported_row()
    del row["verified"]
    with pytest.raises(BenchError, match="invalid reported result at verified: Field required"):
        reported_from_data(row, tmp_path / "r.json")


def test_commands_have_help():
    for name in ("check", "submit", "build"):
        out = CliRunner().invoke(leaderboard, [name, "--help"])
        assert out.exit_code == 0 and "Usage:" in out.output, name


def test_a_flagged_reported_row_and_a_changed_release_are_shown(tmp_path):
    results = board_results(tmp_path)
    flags = tmp_path / "flags.yaml"
    flags.write_text("reported:test:memo:mead:\n  reason: number not in the paper's v2\n")
    kw = {"results": results, "board": BOARD, "flags": load_flags(flags), "plots": False,
          "n_boot": 200, "releases": tmp_path / "archive"}
    site = build_site(tmp_path / "site", release="v1", **kw)
    html = site.index.read_text()
    assert '<tr class="reported flagged"' in html and "number not in the paper&#39;s v2" in html
    table = site.out / "releases" / "v1" / "table" / "leaderboard.csv"
    table.chmod(0o644)
    table.write_text("tampered\n")
    again = build_site(tmp_path / "site", **kw)
    assert any("release v1: 1 file(s) differ from its MANIFEST.sha256 (first: "
               "table/leaderboard.csv)" in w for w in again.warnings)


def test_hostile_strings_in_a_reported_result_are_text(tmp_path):
    results = tmp_path / "results"
    hostile = "<script>window.__pwned = 1</script>"
    row = reported_row(label=hostile, note=hostile, protocol=hostile)
    row["citation"]["paper"] = hostile
    row["metrics"]["fid_inception_pool3_full"]["stated"] = hostile
    write_record(results, "r.json", row)
    html = build_site(tmp_path / "s", results=results, board=BOARD, plots=False,
                      n_boot=200).index.read_text()
    assert hostile not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    from auhead_bench.reporting.check import check_paths, markdown

    text = markdown(check_paths([results / "r.json"], results=None, board=BOARD), BOARD)
    assert "<script>" not in text
