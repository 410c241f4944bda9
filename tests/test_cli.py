"""The command line: machine-readable listings, validation, schema, one-line errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from auhead_bench.cli import cli
from auhead_bench.records import RunRecord


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_ls_metrics_json_has_directions_and_needs():
    result = invoke("ls", "metrics", "--json")
    assert result.exit_code == 0
    metrics = {m["id"]: m for m in json.loads(result.output)}
    assert metrics["psnr_rgb"]["higher_is_better"] is True
    assert metrics["lmd_mouth_dlib68"]["higher_is_better"] is False
    assert metrics["lmd_mouth_dlib68"]["needs"] == ["face_track"]
    assert metrics["psnr_rgb"]["distribution"] == "auhead-bench"


def test_ls_text_fits_a_terminal():
    for kind in ("methods", "metrics", "datasets", "extractors"):
        result = invoke("ls", kind)
        assert result.exit_code == 0 and result.output.strip()
        assert max(len(line) for line in result.output.splitlines()) <= 120


def test_ls_datasets_shows_options():
    datasets = {d["id"]: d for d in json.loads(invoke("ls", "datasets", "--json").output)}
    assert datasets["folder"]["options"]["root"]["required"] is True
    assert datasets["demo"]["options"]["max_clips"]["default"] is None


def test_schema_is_the_record_schema():
    schema = json.loads(invoke("schema").output)
    assert schema["title"] == "RunRecord"
    assert set(RunRecord.model_fields) <= set(schema["properties"])


def test_validate_reports_each_bad_file_on_one_line(tmp_path):
    files = {
        "notjson.json": "{not json",
        "list.json": "[]",
        "oldschema.json": json.dumps({"schema_version": "0"}),
        "missingfields.json": json.dumps({"schema_version": "1", "record_id": "x"}),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = CliRunner().invoke(cli, ["validate", "--json", *map(str, sorted(tmp_path.iterdir()))])
    assert result.exit_code == 1
    rows = {r["file"].split("/")[-1]: r for r in json.loads(result.output)}
    assert not any(r["valid"] for r in rows.values())
    assert "not valid JSON" in rows["notjson.json"]["error"]
    assert "schema_version '0' is not supported" in rows["oldschema.json"]["error"]
    assert "invalid record at" in rows["missingfields.json"]["error"]
    for row in rows.values():
        assert row["file"] in row["error"] and "\n" not in row["error"]


def test_unknown_id_on_the_command_line_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path), "--metrics", "ssim"])
    assert result.exit_code == 2
    assert "did you mean" in result.output and "Traceback" not in result.output


def test_bad_seeds_option():
    result = CliRunner().invoke(cli, ["run", "--out", "x", "--seeds", "1,a"])
    assert result.exit_code == 2 and "--seeds" in result.output


def test_plugins_text_lists_builtins():
    result = invoke("plugins")
    assert "methods_reference" in result.output and "auhead-bench" in result.output


def test_ctrl_c_during_run_says_how_to_resume_and_exits_130(monkeypatch, tmp_path):
    from auhead_bench.runner import Runner

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "run", interrupted)
    result = CliRunner().invoke(
        cli, ["run", "--out", str(tmp_path / "out"), "--metrics", "psnr_rgb",
              "--cache-dir", str(tmp_path / "cache")],
    )
    assert result.exit_code == 130, result.output
    assert "interrupted; run the same command to resume" in result.output
    assert "Aborted!" not in result.output


def test_ls_shows_option_descriptions_and_literal_choices(monkeypatch):
    from typing import Literal

    import pluggy
    from pydantic import Field

    from auhead_bench import Method, Options
    from auhead_bench.plugins import PluginInfo, Registry

    class TidyOptions(Options):
        mode: Literal["fast", "exact"] = Field("fast", description="How hard to try.")
        level: Literal[1, 2] | None = None

    class Tidy(Method):
        id = "tidy"
        description = "A method with described Literal options."
        Options = TidyOptions

        def generate(self, clip, options, seed, out_path):
            return None

    registry = Registry(pluggy.PluginManager("auhead_bench"), [])
    registry.add("method", Tidy, PluginInfo("tests", "tests", "tests", "0"))
    monkeypatch.setattr("auhead_bench.plugins.get_registry", lambda: registry)
    text = invoke("ls", "methods").output
    assert "--mode: one of 'fast', 'exact', default 'fast'" in text
    assert "How hard to try." in text
    assert "--level: one of 1, 2 or None, default None" in text
    row = json.loads(invoke("ls", "methods", "--json").output)[0]
    assert row["options"]["mode"]["choices"] == ["fast", "exact"]
    assert row["options"]["mode"]["description"] == "How hard to try."
    # the built-in precomputed method's Literal option, through the real registry
    monkeypatch.undo()
    assert "--on_missing: one of 'error', 'fail_clip', default 'error'" in invoke(
        "ls", "methods").output
