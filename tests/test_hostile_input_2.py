"""Issue 20, hostile input second round: each input a 134-case battery found crashing,
hanging or silently wrong is now one line naming it and the fix, or a flag, or right."""

from __future__ import annotations

import time

import pytest

from auhead_bench.errors import BenchError, ConfigError

# ---- YAML: one loader, duplicate keys and alias bombs refused ----------------------------

LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
        for i in range(8)
    ]
)


def test_a_duplicate_key_in_a_run_config_names_the_line(tmp_path):
    """`metrics:` twice kept the last list silently."""
    from auhead_bench.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "methods: [ground_truth]\ndatasets: [demo]\nmetrics: [psnr_rgb]\n"
        "seeds: [0]\nmetrics: [ssim_gauss11_rgb]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 5: key 'metrics' is given twice in one mapping (first on line 3)" in message
    # Merge keys (<<) may still override what they merge, as YAML means them to.
    path.write_text(
        "base: &b {id: ground_truth}\nmethods: [{<<: *b, id: static_frame}]\n"
        "datasets: [demo]\nmetrics: [psnr_rgb]\n"
    )
    with pytest.raises(ConfigError, match="base: unknown field"):
        load_config(path)  # read fine; only the unknown top-level key is refused


def test_an_alias_bomb_in_an_external_config_set_is_refused_at_once(tmp_path):
    """Nine anchors of nine aliases in config_set ran fill_deep over ~387 M strings."""
    from auhead_bench.config import load_config

    bomb = "\n".join("      " + line for line in LAUGHS.splitlines())
    path = tmp_path / "run.yaml"
    path.write_text(
        "methods:\n  - id: external\n    options:\n      command: [echo, '{out}']\n"
        "      config_template: t.yaml\n      config_set:\n"
        + bomb.replace("      a:", "      x.a:", 1)
        + "\ndatasets: [demo]\nmetrics: [psnr_rgb]\n"
    )
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - started < 5
    assert str(path) in str(info.value)
    assert "larger than 100000 values once its aliases (*name) are expanded" in str(info.value)


def test_a_tool_config_template_goes_through_the_same_loader(tmp_path):
    from auhead_bench_methods.external import write_config

    template = tmp_path / "t.yaml"
    template.write_text("steps: 1\nsteps: 2\n")
    with pytest.raises(BenchError, match=r"line 2: key 'steps' is given twice"):
        write_config(template, {}, {}, tmp_path / "out.yaml")
    template.write_text(LAUGHS)
    with pytest.raises(BenchError, match="aliases"):
        write_config(template, {}, {}, tmp_path / "out.yaml")


# ---- datasets: patterns under the root, safe clip ids, max_clips -------------------------


def _config(tmp_path, dataset: dict | None = None, **kwargs):
    from auhead_bench.config import RunConfig

    return RunConfig(
        methods=kwargs.pop("methods", ["ground_truth"]),
        datasets=[{"id": "folder", "options": {"root": str(tmp_path / "data"), **(dataset or {})}}],
        metrics=kwargs.pop("metrics", ["psnr_rgb"]),
        device="cpu",
        cache_dir=tmp_path / "cache",
        **kwargs,
    )


def test_an_absolute_folder_pattern_is_one_line(tmp_path, video_factory):
    """root.glob('/abs/*.mp4') raised NotImplementedError: Non-relative patterns."""
    from auhead_bench_datasets.folder import Folder, FolderOptions

    video_factory("data/a.mp4")
    options = FolderOptions(root=tmp_path / "data", pattern=str(tmp_path / "data" / "*.mp4"))
    with pytest.raises(BenchError) as info:
        Folder(options, tmp_path / "c").clips()
    assert "pattern" in str(info.value) and "relative to root" in str(info.value)
    assert str(tmp_path / "data") in str(info.value)


def test_a_pattern_climbing_out_of_the_root_is_refused(tmp_path, video_factory):
    """`../outside/*.mp4` read videos outside the root as clips `../outside/x`."""
    from auhead_bench_datasets.folder import Folder, FolderOptions

    video_factory("data/a.mp4")
    video_factory("outside/x.mp4")
    options = FolderOptions(root=tmp_path / "data", pattern="../outside/*.mp4")
    with pytest.raises(BenchError, match=r"'\.\.'"):
        Folder(options, tmp_path / "c").clips()


def test_clip_ids_that_climb_or_are_absolute_are_refused_for_every_dataset(tmp_path):
    """Whatever a dataset plugin returns, an id reaching a {clip_id} path template stays in."""
    from auhead_bench.clip import Clip, check_clip_ids

    ok = [Clip(id="M003/angry/001", video=tmp_path / "a.mp4")]
    check_clip_ids("d", ok)
    for bad in ("../outside/x", "/etc/x", "a/../../b", "a\\b", "a//b", "", "a/./b", "x\0"):
        with pytest.raises(BenchError, match="clip id"):
            check_clip_ids("d", [Clip(id=bad, video=tmp_path / "a.mp4")])


def test_a_duplicate_clip_id_names_both_files(tmp_path, video_factory):
    from auhead_bench.runner import Runner

    video_factory("data/a.mp4")
    video_factory("data/a.mov")
    config = _config(tmp_path, {"pattern": "*.*"})
    with pytest.raises(BenchError) as info:
        Runner(config, tmp_path / "out").run()
    assert str(tmp_path / "data" / "a.mp4") in str(info.value)
    assert str(tmp_path / "data" / "a.mov") in str(info.value)


@pytest.mark.parametrize("limit", [0, -1])
def test_max_clips_below_one_is_a_config_error(tmp_path, video_factory, limit):
    """max_clips: -1 silently dropped the last clip (clips[:-1])."""
    from auhead_bench.plan import make_plan
    from auhead_bench.plugins import get_registry

    video_factory("data/a.mp4")
    with pytest.raises(ConfigError, match="max_clips"):
        make_plan(_config(tmp_path, {"max_clips": limit}), get_registry())


# ---- media -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_driving_audio_with_non_finite_samples_is_a_media_error(tmp_path, cache_dir, bad):
    """A float WAV holding NaN crashed PyAV's AAC encoder (avcodec_send_frame() returned 22)."""
    import soundfile
    from conftest import make_audio, make_frames

    from auhead_bench import media
    from auhead_bench.cache import Cache
    from auhead_bench.clip import Clip
    from auhead_bench.errors import MediaError
    from auhead_bench.prepare import prepare_clip

    media.write_video(tmp_path / "v.mp4", make_frames(10, 32), make_audio(0.4))
    audio = make_audio(0.4)
    audio[100:110] = bad
    soundfile.write(tmp_path / "nan.wav", audio, media.SAMPLE_RATE, subtype="FLOAT")
    clip = Clip(id="c", video=tmp_path / "v.mp4", audio=tmp_path / "nan.wav")
    with pytest.raises(MediaError) as info:
        prepare_clip(clip, Cache(cache_dir))
    assert str(tmp_path / "nan.wav") in str(info.value)
    assert "non-finite" in str(info.value)


# ---- records, tables and the leaderboard: one validation ----------------------------------


def _write(folder, name: str, record) -> object:
    import json

    from auhead_bench.records import dump_record

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(dump_record(record) if not isinstance(record, dict) else record))
    return path


def _record(experiment: str = "m", value: float = 1.0, metric_id: str = "psnr_rgb"):
    import synthetic_records as syn

    return syn.record(experiment, [syn.metric(metric_id, {0: [value] * 12})])


def test_validate_and_the_leaderboard_share_one_validation(tmp_path):
    """validate accepted a record whose value is not the mean of its per-seed values (then
    table printed it) while leaderboard build rejected it."""
    from click.testing import CliRunner

    from auhead_bench.cli import cli
    from auhead_bench.records import dump_record
    from auhead_bench.reporting.leaderboard import build_site

    tampered = dump_record(_record())
    tampered["metrics"]["psnr_rgb"]["value"] = 99.0
    path = _write(tmp_path / "results", "tampered.json", tampered)
    good = _write(tmp_path / "results", "good.json", _record("g"))
    result = CliRunner().invoke(cli, ["validate", str(path), str(good)])
    assert result.exit_code == 1
    assert "value is not the mean of its per_seed values" in result.output
    assert f"ok: {good}" in result.output
    site = build_site(tmp_path / "site", results=tmp_path / "results", plots=False, n_boot=100)
    assert [str(r.path) for r in site.rejected] == ["tampered.json"]
    # table refuses it too, naming the file and the reason
    run = tmp_path / "run" / "records"
    _write(run, "tampered.json", tampered)
    _write(run, "good.json", _record("g"))
    from auhead_bench.reporting.commands import table

    shown = CliRunner().invoke(table, [str(tmp_path / "run")])
    assert shown.exit_code == 0, shown.output
    assert "is not the mean of its per_seed values" in shown.output
    assert "| g |" in shown.output and "99" not in shown.output


@pytest.mark.parametrize("metric_id", ["=1+1", "@SUM(A1)", "-2", "Psnr RGB", "a" * 200])
def test_metric_ids_outside_the_id_grammar_are_refused(tmp_path, metric_id):
    """A record could name a metric '=1+1': it became a CSV header and a page anchor."""
    from auhead_bench.validation import record_problems

    problems = record_problems(_record(metric_id=metric_id))
    assert any("is not a metric id" in p for p in problems), problems
    assert record_problems(_record(metric_id="lse_c_syncnet_python")) == []


def test_a_plugin_id_outside_the_grammar_is_a_load_error():
    from auhead_bench import PerClipMetric
    from auhead_bench.plugins import _check_class

    class Bad(PerClipMetric):
        id = "=HYPERLINK(x)"
        description = "bad"
        higher_is_better = True

        def score(self, view):  # pragma: no cover - never called
            return 0.0

    with pytest.raises(TypeError, match="id"):
        _check_class("metric", Bad)


def test_csv_headers_are_neutralised_like_cells(tmp_path):
    """Cells were neutralised, headers ('=1+1', '=1+1_ci_low') were not."""
    from auhead_bench.reporting.inputs import from_records
    from auhead_bench.reporting.tables import build_report, to_csv
    from auhead_bench.table import write_tables

    record = _record(metric_id="=1+1")
    write_tables([record], tmp_path)
    header = (tmp_path / "table.csv").read_text().splitlines()[0].split(",")
    assert "'=1+1" in header and "'=1+1_ci_low" in header
    assert not any(h[:1] and h[:1] in "=+-@" for h in header)
    text = to_csv(build_report(from_records([record]), by=()))
    assert not any(h[:1] and h[:1] in "=+-@" for h in text.splitlines()[0].split(","))


def test_the_site_csv_neutralises_headers(tmp_path, monkeypatch):
    """The site's downloads/leaderboard.csv: records with such ids are now refused; were one
    let through, its header would still be neutralised."""
    from auhead_bench.reporting import leaderboard

    _write(tmp_path / "results", "bad.json", _record("bad", metric_id="=1+1"))
    site = leaderboard.build_site(
        tmp_path / "site", results=tmp_path / "results", plots=False, n_boot=100
    )
    assert [r.path.name for r in site.rejected] == ["bad.json"]
    assert "is not a metric id" in site.rejected[0].reason
    from auhead_bench import validation

    monkeypatch.setattr(validation, "record_problems", lambda record: [])
    site = leaderboard.build_site(
        tmp_path / "site", results=tmp_path / "results", plots=False, n_boot=100
    )
    header = (site.out / "downloads" / "leaderboard.csv").read_text().splitlines()[0]
    assert not any(h[:1] and h[:1] in "=+-@" for h in header.split(","))


def test_table_with_two_conflicting_records_of_one_id_in_a_run_refuses_one(tmp_path):
    """Two files of one run with the same record id and other values were two rows."""
    from click.testing import CliRunner

    from auhead_bench.reporting.commands import table

    run = tmp_path / "run" / "records"
    _write(run, "a.json", _record("m", 1.0))
    _write(run, "b.json", _record("m", 2.0))
    shown = CliRunner().invoke(table, [str(tmp_path / "run")])
    assert shown.exit_code == 0, shown.output
    assert f"skipped {run / 'b.json'}: duplicate record_id 'm__synthetic'" in shown.output
    assert "| m | synthetic | 1.0000" in shown.output and "2.0000" not in shown.output


def test_leaderboard_build_refuses_a_symlinked_records_folder(tmp_path):
    """SITE/records a symlink: OSError 'Cannot call rmtree on a symbolic link'; and
    following it would have deleted what it points at."""
    from auhead_bench.reporting.leaderboard import build_site

    _write(tmp_path / "results", "good.json", _record("g"))
    site = tmp_path / "site"
    build_site(site, results=tmp_path / "results", plots=False, n_boot=100)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    import shutil

    shutil.rmtree(site / "records")
    (site / "records").symlink_to(precious)
    with pytest.raises(BenchError) as info:
        build_site(site, results=tmp_path / "results", plots=False, n_boot=100)
    assert str(site / "records") in str(info.value) and "symbolic link" in str(info.value)
    assert (precious / "keep.txt").read_text() == "mine"


# ---- weights -------------------------------------------------------------------------------


def test_weights_root_that_is_a_regular_file_is_one_line(tmp_path, monkeypatch):
    """AUHEAD_BENCH_WEIGHTS naming a file: `weights pull` raised NotADirectoryError and
    `weights verify` said 'missing: run pull', which led to that crash."""
    from click.testing import CliRunner

    from auhead_bench.cli import cli

    root = tmp_path / "weights.txt"
    root.write_text("not a folder")
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(root))
    for command in (["weights", "pull", "torchvision_alexnet"], ["weights", "verify"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
        assert f"{root}: AUHEAD_BENCH_WEIGHTS names a file, not a folder" in result.output


def test_a_failed_weights_load_never_advises_weights_only_false(tmp_path, monkeypatch):
    """torch's message says to re-run with weights_only=False: for an untrusted file that
    advice runs the payload. The error names the re-pull command instead."""
    import torch

    from auhead_bench.weights import load_state_dict

    class Payload:
        def __reduce__(self):
            return (print, ("payload ran",))

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "w"))
    path = tmp_path / "w" / "lpips_alex_v01" / "alex.pth"
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.zeros(2), "x": Payload()}, path)
    with pytest.raises(BenchError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert "weights_only" not in message and "Re-running" not in message
    assert "auhead-bench weights pull lpips_alex_v01 --force" in message
    assert "\n" not in message


# ---- methods -------------------------------------------------------------------------------


def test_precomputed_outputs_of_clips_with_identical_inputs_are_not_shared(
    tmp_path, video_factory
):
    """Clips a and b with the same files: b was scored from a.mp4 (PSNR 100) and its own
    b.mp4 was never read. The file a clip reads is now in its generation key."""
    import shutil

    from auhead_bench.runner import Runner

    first = video_factory("data/a.mp4")
    shutil.copyfile(first, tmp_path / "data" / "b.mp4")
    (tmp_path / "outputs").mkdir()
    shutil.copyfile(first, tmp_path / "outputs" / "a.mp4")
    video_factory("outputs/b.mp4", seed=7)  # another video for b
    method = {"id": "precomputed", "options": {"folder": str(tmp_path / "outputs")}}
    (record,) = Runner(_config(tmp_path, methods=[method]), tmp_path / "out").run()
    generations = {g.clip_id: g for g in record.generations}
    assert generations["a"].key != generations["b"].key
    assert generations["b"].info["source"] == "b.mp4"
    values = {c.clip_id: c.value for c in record.metrics["psnr_rgb"].per_clip}
    assert values["b"] < values["a"] - 5


SCRIPTS = __import__("pathlib").Path(__file__).parent / "scripts"


def _alive(pid: int) -> bool:
    """A running process (a zombie waiting for a reaper counts as gone)."""
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_sigterm_of_a_run_kills_the_tool_group_and_removes_its_work_folder(
    tmp_path, video_factory
):
    """SIGTERM of `auhead-bench run`: the tool's process group ran on as an orphan and its
    auhead_bench_* work folder stayed in the temp dir."""
    import os
    import signal
    import subprocess
    import sys

    import yaml

    video_factory("data/a.mp4")
    pidfile = tmp_path / "child.pid"
    command = [sys.executable, str(SCRIPTS / "fake_hang.py"), "--pidfile", str(pidfile)]
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "methods": [{"id": "external", "options": {"command": command}}],
        "datasets": [{"id": "folder", "options": {"root": str(tmp_path / "data")}}],
        "metrics": ["psnr_rgb"], "device": "cpu", "cache_dir": str(tmp_path / "cache"),
    }))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    run = subprocess.Popen(
        [sys.executable, "-m", "auhead_bench.cli", "run", str(config), "--out",
         str(tmp_path / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    child = None
    try:
        deadline = time.monotonic() + 120
        while not pidfile.is_file() or not pidfile.read_text().strip():
            assert run.poll() is None, run.stdout.read().decode()
            assert time.monotonic() < deadline, "the tool never started"
            time.sleep(0.1)
        child = int(pidfile.read_text())
        assert list(temp.glob("auhead_bench_*"))  # the tool's work folder, while it runs
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=60)[0].decode()
        assert run.returncode == 143, output
        assert "interrupted; run the same command to resume" in output
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the tool's child outlived the run"
        assert list(temp.glob("auhead_bench_*")) == []
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)  # the orphan this test's tool started


def test_a_failed_tool_leaves_no_work_folder_and_keeps_its_log(tmp_path, monkeypatch):
    """A failed or timed-out tool left its auhead_bench_* work folder in the temp dir."""
    import sys
    import tempfile

    from conftest import make_audio, make_frames

    from auhead_bench import media
    from auhead_bench.clip import Clip
    from auhead_bench_methods.external import External, ExternalOptions

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    media.write_video(tmp_path / "v.mp4", make_frames(10, 32), make_audio(0.4))
    clip = Clip(id="a", video=tmp_path / "v.mp4")
    method = External()
    method.setup("cpu")
    script = "import sys; print('model exploded', file=sys.stderr); sys.exit(3)"
    for options in (
        ExternalOptions(command=[sys.executable, "-c", script]),
        ExternalOptions(
            command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5
        ),
    ):
        with pytest.raises(BenchError) as info:
            method.generate(clip, options, 0, tmp_path / "e" / "video.mp4")
        assert "run it by hand" in str(info.value) and "keep_work: true" in str(info.value)
        assert list(temp.glob("auhead_bench_*")) == []
        assert info.value.path is not None
    log = __import__("pathlib").Path(info.value.path)
    assert log.parent == temp / "auhead-bench-tool-logs" and log.is_file()
    # keep_work keeps it, as before
    kept = ExternalOptions(command=[sys.executable, "-c", script], keep_work=True)
    with pytest.raises(BenchError):
        method.generate(clip, kept, 0, tmp_path / "e" / "video.mp4")
    assert len(list(temp.glob("auhead_bench_*"))) == 1


def test_the_default_tool_timeout_follows_the_clip_and_is_listed(tmp_path):
    """timeout_s defaulted to 3600: one hung tool held a run for an hour per clip."""
    from click.testing import CliRunner
    from conftest import make_audio, make_frames

    from auhead_bench import media
    from auhead_bench.cli import cli
    from auhead_bench.clip import Clip
    from auhead_bench_methods.external import ExternalOptions, tool_timeout

    media.write_video(tmp_path / "v.mp4", make_frames(50, 32), make_audio(2.0))
    options = ExternalOptions(command=["x", "{out}"])
    assert options.timeout_s == "auto"
    assert tool_timeout(options.timeout_s, Clip(id="a", video=tmp_path / "v.mp4")) == 420.0
    assert tool_timeout(None, Clip(id="a", video=tmp_path / "v.mp4")) is None
    listing = CliRunner().invoke(cli, ["ls", "methods"]).output
    assert '"auto" (the default): 300 s plus 60 s per second of the clip' in listing
    with pytest.raises(ValueError, match="timeout_s must be above 0"):
        ExternalOptions(command=["x"], timeout_s=0)


def test_a_reproduce_config_never_carries_a_records_command(tmp_path, monkeypatch):
    """Following the page's steps for an untrusted `external` record ran `touch MARKER`."""
    import yaml
    from click.testing import CliRunner

    from auhead_bench.cli import cli
    from auhead_bench.config import load_config
    from auhead_bench.reporting.leaderboard import build_site
    from auhead_bench.untrusted import trusted

    record = _record("evil")
    record.method.id = "external"
    marker = tmp_path / "MARKER"
    record.method.options = {"command": ["touch", str(marker)], "retries": 0}
    _write(tmp_path / "results", "evil.json", record)
    site = build_site(tmp_path / "site", results=tmp_path / "results", plots=False, n_boot=100)
    (path,) = (site.out / "reproduce").glob("*.yaml")
    config = yaml.safe_load(path.read_text())
    assert config["methods"] == [{"id": "external", "options": {"retries": 0}}]
    assert config["from_record"] == {
        "record_id": record.record_id,
        "note": "the command is the submitter's: review it",
        "method": "external",
        "options": {"command": ["touch", str(marker)]},
    }
    page = next((site.out / "records").glob("*.html")).read_text()
    assert "the command is the submitter&#39;s: review it" in page
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--trust-commands" in result.output
    assert "the submitter's command" in result.output and str(path) in result.output
    assert not marker.exists()
    # With --trust-commands (after review) the command is put back where it was.
    restored = trusted(load_config(path), True, path)
    assert restored.methods[0].options == {"retries": 0, "command": ["touch", str(marker)]}
    assert restored.from_record is None


def test_a_generation_longer_or_shorter_than_the_ground_truth_is_flagged(
    tmp_path, video_factory
):
    """A generated video twice the ground truth's length was cut to it without a flag."""
    import shutil

    from auhead_bench.runner import Runner

    video_factory("data/a.mp4", frames=20)
    video_factory("data/b.mp4", frames=20, seed=1)
    (tmp_path / "outputs").mkdir()
    video_factory("outputs/a.mp4", frames=40)  # twice as long
    shutil.copyfile(tmp_path / "data" / "b.mp4", tmp_path / "outputs" / "b.mp4")
    method = {"id": "precomputed", "options": {"folder": str(tmp_path / "outputs")}}
    (record,) = Runner(_config(tmp_path, methods=[method]), tmp_path / "out").run()
    generations = {g.clip_id: g for g in record.generations}
    assert "length_mismatch" in generations["a"].flags
    assert "40 frames where the ground truth has 20" in generations["a"].info["length_mismatch"]
    assert "length_mismatch" not in generations["b"].flags


def test_psnr_states_its_per_frame_cap_in_card_and_protocol(tmp_path):
    """The 100 dB cap per frame moved static_frame ~2.3 dB with whether its reference was
    exactly frame 0, unstated. The card's reference (skimage per frame pair, as EAT) takes
    the log per frame, so the computation stays; the card and protocol now state the cap and
    its effect, and the metric is checked to be exactly that."""
    import re
    from pathlib import Path

    import numpy as np
    from conftest import make_frames

    from auhead_bench.clip import Clip
    from auhead_bench.views import ClipView, VideoView
    from auhead_bench_metrics.pixel import PSNR, PSNR_CAP_DB

    truth = make_frames(25, 32)
    noisy = np.clip(truth.astype(int) + np.random.default_rng(0).integers(-6, 7, truth.shape),
                    0, 255).astype(np.uint8)
    generated = noisy.copy()
    generated[0] = truth[0]  # one identical frame, as static_frame on its reference frame
    metric = PSNR(PSNR.Options())

    def score(frames):
        view = ClipView(
            clip=Clip(id="c", video=tmp_path / "v.mp4"),
            generated=VideoView.from_arrays(frames),
            ground_truth=VideoView.from_arrays(truth),
        )
        return metric.score(view).value

    mse = ((noisy.astype(float) - truth) ** 2).reshape(25, -1).mean(axis=1)
    per_frame = 10 * np.log10(255.0**2 / mse)
    assert score(noisy) == pytest.approx(per_frame.mean(), abs=1e-3)
    assert score(generated) == pytest.approx((PSNR_CAP_DB + per_frame[1:].sum()) / 25, abs=1e-3)
    assert metric.protocol()["cap_db"] == 100.0
    card = Path(__file__).parent.parent / "docs" / "metrics.md"
    text = card.read_text().split("### `psnr_rgb`")[1].split("### ")[0]
    assert "each frame\n  capped at 100 dB (`protocol.cap_db`)" in text
    assert re.search(r"one identical frame among T adds about \(100 - x\)/T dB", text)
