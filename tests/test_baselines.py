"""`external`, the presets and `precomputed`, driven by fake inference scripts that write real
videos; and a whole run (two presets + precomputed on a fake MEAD tree) into records."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fake_trees as ft
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError
from rich.console import Console

from auhead_bench import BenchError, media
from auhead_bench.cache import Cache
from auhead_bench.clip import Clip
from auhead_bench.config import RunConfig, load_config
from auhead_bench.errors import ConfigError
from auhead_bench.plan import make_plan
from auhead_bench.plugins import get_registry
from auhead_bench.prepare import prepare_clip
from auhead_bench.runner import Runner
from auhead_bench_methods import precomputed as pre
from auhead_bench_methods.external import (
    PRESET_METHODS,
    External,
    ExternalOptions,
    fill,
    slug,
)
from auhead_bench_methods.presets import PRESETS

SCRIPTS = Path(__file__).parent / "scripts"
PY = sys.executable
DOCS = Path(__file__).parent.parent / "docs" / "datasets-and-baselines.md"


@pytest.fixture(autouse=True)
def work_folders(tmp_path, monkeypatch):
    """Tool work folders (kept after failures) go under the test's tmp_path."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Clip:
    """A prepared (normalised) 32x32 clip with audio, as the runner hands methods."""
    root = tmp_path_factory.mktemp("clip")
    video = ft.write_clip(root / "M003_happy.mp4", count=50, seed=3)
    raw = Clip(id="M003/happy/level_1/001", video=video, identity="M003", emotion="happy",
               intensity=1)
    return prepare_clip(raw, Cache(root / "cache")).clip


def generate(method, options, clip: Clip, tmp_path: Path, seed: int = 0):
    out = tmp_path / "entry" / "video.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    method.setup("cpu")
    return method.generate(clip, options, seed, out), out


def generic(*extra: str) -> list[str]:
    return [PY, str(SCRIPTS / "fake_generic.py"), "--reference", "{reference}",
            "--audio", "{audio}", "--out", "{out}", *extra]


def alive(pid: int) -> bool:
    """True for a running process (zombies waiting to be reaped count as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# ---- external ----------------------------------------------------------------------------


def test_external_runs_the_command_and_normalises_like_the_ground_truth(clip, tmp_path):
    options = ExternalOptions(command=generic("--fps", "30", "--size", "16"))
    generation, out = generate(External(), options, clip, tmp_path)
    info = generation.info
    assert info["original"]["fps"] == 30.0 and info["original"]["size"] == [16, 16]
    assert info["resized_from"] == [16, 16] and info["audio"] == "tool output"
    assert info["attempts"] == 1 and info["seed_passed"] is True
    decoded = media.decode_video(out)
    assert decoded.source_fps == 25.0 and decoded.frames.shape[1:3] == (32, 32)
    assert decoded.has_audio and decoded.sample_rate == 16000
    assert abs(len(decoded.frames) - info["ground_truth_frames"]) <= 1
    original = out.with_name("original.mp4")
    assert original.is_file() and media.decode_video(original).source_fps == 30.0
    assert "wrote" in out.with_name("tool.log").read_text()
    # The tool saw the clip's own inputs, named after the clip.
    assert slug(clip.id) in info["command"] and ".png" in info["command"]


def test_external_string_command_glob_output_vars_and_args(clip, tmp_path):
    tools = tmp_path / "my tools"  # a space: the command is split like a shell line
    tools.mkdir()
    for name in ("fake_generic.py", "fakelib.py"):
        shutil.copy(SCRIPTS / name, tools / name)
    command = (
        f"{PY} '{tools / 'fake_generic.py'}' --reference {{reference}} --audio {{audio}} "
        "--out {out_dir}/{name}-{seed:03d}.mp4"
    )
    options = ExternalOptions(
        command=command,
        cwd=tools,
        output="{out_dir}/*.mp4",
        vars={"name": "take"},
        args={"seed": "{seed}", "no-audio": False},
    )
    generation, out = generate(External(), options, clip, tmp_path, seed=7)
    assert "take-007.mp4" in generation.info["command"]
    assert "--seed 7" in generation.info["command"]
    assert "wrote" in out.with_name("tool.log").read_text()
    assert "(seed 7)" in out.with_name("tool.log").read_text()


def test_unknown_placeholder_and_missing_executable_are_one_line_errors(clip, tmp_path):
    with pytest.raises(ValidationError, match=r"unknown placeholder \{framerate\}") as info:
        ExternalOptions(command=generic("--fps", "{framerate}"))  # caught when the config is read
    assert "{reference}" in str(info.value)
    with pytest.raises(ValidationError, match=r"unknown placeholder \{x\} in args.steps"):
        ExternalOptions(command=generic(), args={"steps": "{x}"})
    with pytest.raises(ValidationError, match="vars may not redefine"):
        ExternalOptions(command=generic(), vars={"seed": 1})
    with pytest.raises(ValidationError, match=r"unknown placeholder \{config\}"):
        ExternalOptions(command=generic("--config", "{config}"))
    missing = ExternalOptions(command=["/no/such/python", "x.py"])
    with pytest.raises(BenchError, match="cannot find the executable"):
        generate(External(), missing, clip, tmp_path)
    with pytest.raises(ValidationError, match="command is empty"):
        ExternalOptions(command="   ")


def test_failure_reports_exit_status_and_stderr_tail(clip, tmp_path):
    options = ExternalOptions(command=[PY, str(SCRIPTS / "fake_fail.py")])
    with pytest.raises(BenchError) as info:
        generate(External(), options, clip, tmp_path)
    message = str(info.value)
    assert "exit code 3" in message and "CUDA out of memory (fake)" in message
    assert "after 1 attempt(s)" in message and "run it by hand" in message
    assert "\n" not in message
    log = Path(info.value.path)
    assert log.is_file() and "loading layer 0" in log.read_text()  # kept for inspection


def test_timeout_kills_the_whole_process_tree(clip, tmp_path):
    pidfile = tmp_path / "child.pid"
    options = ExternalOptions(
        command=[PY, str(SCRIPTS / "fake_hang.py"), "--pidfile", str(pidfile)], timeout_s=1.5
    )
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"timed out after 1.5 s \(process group killed\)"):
        generate(External(), options, clip, tmp_path)
    assert time.monotonic() - started < 15
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_retries_rerun_a_failed_command(clip, tmp_path):
    state = tmp_path / "state"
    command = generic("--state", str(state))
    command[1] = str(SCRIPTS / "fake_flaky.py")
    generation, _ = generate(External(), ExternalOptions(command=command, retries=1), clip,
                             tmp_path)
    assert generation.info["attempts"] == 2
    assert generation.info["failed_attempts"] == ["exit code 1"]
    state.unlink()
    with pytest.raises(BenchError, match="after 1 attempt"):
        generate(External(), ExternalOptions(command=command), clip, tmp_path / "again")


def test_wrong_fps_is_resampled_and_recorded_or_fails_on_request(clip, tmp_path):
    command = generic()
    command[1] = str(SCRIPTS / "fake_wrong_fps.py")
    options = ExternalOptions(command=command, expected_fps=25)
    generation, out = generate(External(), options, clip, tmp_path)
    warnings = " ".join(generation.info["warnings"])
    assert "30.000 fps where external documents 25 fps" in warnings
    assert "video lasts" in warnings  # 25 fps worth of frames played at 30: too short
    assert media.decode_video(out).source_fps == 25.0
    strict = ExternalOptions(command=command, expected_fps=25, on_fps_mismatch="fail")
    with pytest.raises(BenchError, match="30.000 fps where external documents 25 fps"):
        generate(External(), strict, clip, tmp_path / "strict")


def test_no_output_and_no_audio(clip, tmp_path):
    options = ExternalOptions(command=[PY, "-c", "pass"])
    with pytest.raises(BenchError, match="exited 0 but wrote no file matching") as info:
        generate(External(), options, clip, tmp_path)
    assert "out_dir holds: nothing" in str(info.value)
    silent = ExternalOptions(command=generic("--no-audio"))
    generation, out = generate(External(), silent, clip, tmp_path / "silent")
    assert generation.info["audio"] == "driving audio"
    assert any("no audio track" in w for w in generation.info["warnings"])
    assert media.decode_video(out).has_audio


def test_fill_escapes_values_only_in_glob_patterns():
    values = {"out_dir": "/tmp/a[1]", "seed": 3}
    assert fill("{out_dir}/*.mp4", values, "output", for_glob=True) == "/tmp/a[[]1]/*.mp4"
    assert fill("{out_dir}/x-{seed:02d}.mp4", values, "output") == "/tmp/a[1]/x-03.mp4"
    assert fill("{{literal}}", values, "command") == "{literal}"


# ---- presets -------------------------------------------------------------------------------


def fake_checkout(root: Path, entry: str, script: str, files: dict[str, str] | None = None):
    """A folder laid out like the project's checkout, its entry point a fake script."""
    target = root / entry
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCRIPTS / script, target)
    shutil.copy(SCRIPTS / "fakelib.py", target.parent / "fakelib.py")
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_every_preset_is_complete_registered_and_documented():
    docs = DOCS.read_text()
    registry = get_registry()
    values = {name: "x" for name in (
        "python", "repo", "device", "reference", "audio", "video", "out", "out_dir", "work_dir",
        "clip_id", "clip_slug", "reference_stem", "audio_stem", "identity", "emotion",
        "intensity", "config")} | {"seed": 0}
    assert set(PRESETS) == {"memo", "hallo", "hallo2", "sadtalker", "sonic", "echomimic",
                            "aniportrait", "wav2lip"}
    for ident, preset in PRESETS.items():
        assert registry.get("method", ident).cls is PRESET_METHODS[ident]
        for token in preset.command:
            fill(token, values, f"{ident} command")
        fill(preset.output, values, f"{ident} output")
        assert (preset.config_template is None) == ("{config}" not in preset.command)
        assert preset.command[0] == "{python}" and preset.fps > 0 and preset.checked
        assert f"`{ident}`" in docs, f"{ident} is not documented"


def test_preset_options_check_the_checkout_python_and_commit(tmp_path):
    repo = fake_checkout(tmp_path / "SadTalker", "inference.py", "fake_sadtalker.py")
    options_cls = PRESET_METHODS["sadtalker"].Options
    options = options_cls(repo=repo, python=PY)
    assert options.repo_commit is None  # not a git checkout
    with pytest.raises(ValidationError, match="has no inference.py; point repo at a SadTalker"):
        options_cls(repo=tmp_path, python=PY)
    with pytest.raises(ValidationError, match="python executable '/nope/python' not found"):
        options_cls(repo=repo, python="/nope/python")
    config = RunConfig(
        methods=[{"id": "hallo", "options": {"repo": str(repo), "python": PY}}],
        datasets=["demo"], metrics=["psnr_rgb"],
    )
    wrong = r"methods\[0\]\.options\.repo: .*has no scripts/inference.py"
    with pytest.raises(ConfigError, match=wrong):
        make_plan(config, get_registry())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    from auhead_bench_methods.external import git_commit

    git_commit.cache_clear()
    assert options_cls(repo=repo, python=PY).repo_commit == head.strip()
    with pytest.raises(ValidationError, match="not the pinned repo_commit"):
        options_cls(repo=repo, python=PY, repo_commit="0" * 40)


def test_sadtalker_preset_runs_from_its_checkout(clip, tmp_path):
    repo = fake_checkout(tmp_path / "SadTalker", "inference.py", "fake_sadtalker.py")
    method = PRESET_METHODS["sadtalker"]()
    options = method.Options(repo=repo, python=PY, extra_args=["--still"])
    generation, out = generate(method, options, clip, tmp_path)
    info = generation.info
    assert info["tool"] == "sadtalker" and info["seed_passed"] is False
    assert info["warnings"] == [] and info["original"]["fps"] == 25.0
    assert "--result_dir" in info["command"] and info["command"].endswith("--still")
    assert media.decode_video(out).frames.shape[1:3] == (32, 32)
    assert method.fingerprint()["preset"]["output"] == "{out_dir}/*.mp4"


def test_aniportrait_preset_fills_its_config_and_keeps_the_result_cell(clip, tmp_path):
    template = yaml.safe_dump({
        "pretrained_vae_path": "./pretrained_model/sd-vae-ft-mse",
        "weight_dtype": "fp16",
        "test_cases": {"./configs/ref_images/lyl.png": ["./configs/audio/lyl.wav"]},
    })
    repo = fake_checkout(
        tmp_path / "AniPortrait", "scripts/audio2vid.py", "fake_aniportrait.py",
        {"configs/prompts/animation_audio.yaml": template},
    )
    method = PRESET_METHODS["aniportrait"]()
    options = method.Options(repo=repo, python=PY, extra_args=["-W", "32", "-H", "32"],
                             keep_work=True)
    generation, out = generate(method, options, clip, tmp_path, seed=5)
    info = generation.info
    assert info["original"]["size"] == [3 * 34 + 2, 36] and info["panel"]["index"] == 2
    assert info["original"]["fps"] == 30.0 and info["warnings"] == []
    written = yaml.safe_load(Path(info["command"].split("--config ")[1].split()[0]).read_text())
    assert list(written["test_cases"].values())[0][0].endswith(f"{slug(clip.id)}.wav")
    assert written["pretrained_vae_path"] == "./pretrained_model/sd-vae-ft-mse"
    # The kept cell is the result (the inverted reference), not the reference or the pose.
    reference = media.read_image(clip.reference).astype(float)
    result = media.decode_video(out).frames.astype(float)
    assert np.abs(result[0] - (255 - reference)).mean() < 12
    assert np.abs(result[0] - reference).mean() > 40
    assert list((repo / "output").glob("*/*--seed_5-32x32/*.mp4"))


# ---- precomputed ---------------------------------------------------------------------------


def test_precomputed_matches_files_and_fingerprints_the_folder(clip, tmp_path):
    folder = tmp_path / "outputs"
    source = ft.write_clip(folder / f"{slug(clip.id)}.mp4", count=30, seed=1)
    options = pre.PrecomputedOptions(folder=folder, pattern="{clip_slug}.mp4")
    generation, out = generate(pre.Precomputed(), options, clip, tmp_path)
    assert generation.info["source"] == source.name
    assert out.with_name("original.mp4").read_bytes() == source.read_bytes()
    assert media.decode_video(out).frames.shape[1:3] == (32, 32)
    digest = options.outputs_sha256
    assert digest and len(digest) == 64
    ft.write_clip(source, count=30, seed=2)  # replaced in place: a new key, not stale scores
    assert pre.PrecomputedOptions(folder=folder).outputs_sha256 != digest
    with pytest.raises(ValidationError, match="changed since outputs_sha256"):
        pre.PrecomputedOptions(folder=folder, outputs_sha256=digest)
    with pytest.raises(ValidationError, match=r"unknown placeholder \{take\}"):
        pre.PrecomputedOptions(folder=folder, pattern="{take}.mp4")
    with pytest.raises(ValidationError, match="is not a folder"):
        pre.PrecomputedOptions(folder=tmp_path / "none")
    other = Clip(id="W009/sad/level_1/001", video=clip.video, audio=clip.audio,
                 reference=clip.reference)
    with pytest.raises(BenchError, match="no output for clip W009/sad/level_1/001") as info:
        generate(pre.Precomputed(), options, other, tmp_path / "missing")
    assert "check-outputs" in str(info.value)


def mead_config(tmp_path: Path, methods: list, **extra) -> dict:
    return {
        "name": "baselines",
        "datasets": [{"id": "mead", "options": {
            "root": str(tmp_path / "MEAD"), "identities": "all", "crop_size": None}}],
        "methods": methods,
        "metrics": ["psnr_rgb", "ssim_gauss11_rgb"],
        "seeds": [0],
        "cache_dir": str(tmp_path / "cache"),
        **extra,
    }


def test_missing_and_extra_outputs_are_reported_before_anything_runs(tmp_path, caplog):
    ft.make_mead(tmp_path / "MEAD", identities=("M003",), emotions=("sad",), levels=(1, 2))
    folder = tmp_path / "outputs"
    ft.write_clip(folder / "M003/sad/level_1/001.mp4")
    ft.write_clip(folder / "M003/sad/level_9/009.mp4")  # not a clip of this run
    data = mead_config(tmp_path, [{"id": "precomputed", "options": {"folder": str(folder)}}])
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(data))
    config = load_config(config_path)
    reports = pre.check_outputs(config, make_plan(config, get_registry()))
    assert [(r.expected, r.missing, r.extra) for r in reports] == [
        (2, ["M003/sad/level_2/002.mp4"], ["M003/sad/level_9/009.mp4"])
    ]
    runner = Runner(config, tmp_path / "out", console=Console(file=io.StringIO()))
    with pytest.raises(BenchError, match="1 of 2 expected outputs are missing") as info:
        runner.run()
    assert "M003/sad/level_2/002.mp4" in str(info.value) and "on_missing" in str(info.value)
    assert not (tmp_path / "cache" / "generations").exists()  # stopped before any generation
    from auhead_bench.cli import cli

    get_registry().pm.hook.register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["check-outputs", str(config_path)])
    assert result.exit_code == 1, result.output
    assert "1/2 outputs found" in result.output and "missing 1: M003/sad/level_2/002.mp4" in (
        result.output
    ) and "extra 1: M003/sad/level_9/009.mp4" in result.output


# ---- a whole run -----------------------------------------------------------------------------


def test_two_presets_and_precomputed_run_end_to_end_into_records_and_a_table(tmp_path):
    root = ft.make_mead(tmp_path / "MEAD", identities=("M003", "W009"), emotions=("angry",),
                        levels=(1, 3))
    sadtalker = fake_checkout(tmp_path / "SadTalker", "inference.py", "fake_sadtalker.py")
    hallo = fake_checkout(tmp_path / "hallo", "scripts/inference.py", "fake_hallo.py",
                          {"configs/inference/default.yaml": "fps: 25\n"})
    folder = tmp_path / "precomputed"
    ids = ["M003/angry/level_1/001", "M003/angry/level_3/002", "W009/angry/level_1/003"]
    folder.mkdir()
    for clip_id in ids:  # the ground truth itself; the fourth clip has no output
        identity, emotion, level, number = clip_id.split("/")
        source = root / identity / "video/front" / emotion / level / f"{number}.mp4"
        shutil.copy(source, folder / f"{slug(clip_id)}.mp4")
    data = mead_config(tmp_path, [
        {"id": "sadtalker", "options": {"repo": str(sadtalker), "python": PY}},
        {"id": "hallo", "options": {"repo": str(hallo), "python": PY}},
        {"id": "precomputed", "options": {
            "folder": str(folder), "pattern": "{clip_slug}.mp4", "on_missing": "fail_clip"}},
        {"id": "external", "options": {"command": [PY, str(SCRIPTS / "fake_fail.py")]}},
    ])
    config_path = tmp_path / "compare.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "results"
    console = io.StringIO()
    records = Runner(load_config(config_path), out, config_path=config_path,
                     console=Console(file=console, width=200)).run()
    by_method = {r.method.id: r for r in records}
    assert set(by_method) == {"sadtalker", "hallo", "precomputed", "external"}
    for ident in ("sadtalker", "hallo"):
        record = by_method[ident]
        assert [g.status for g in record.generations] == ["ok"] * 4
        assert record.generations[0].info["tool"] == ident
        assert record.metrics["psnr_rgb"].status == "ok" and record.metrics["psnr_rgb"].n == 4
    # Hallo's stand-in darkens the face, SadTalker's does not: the table tells them apart.
    assert (by_method["sadtalker"].metrics["psnr_rgb"].value
            > by_method["hallo"].metrics["psnr_rgb"].value)
    precomputed = by_method["precomputed"]
    statuses = {g.clip_id: g.status for g in precomputed.generations}
    assert statuses == {**dict.fromkeys(ids, "ok"), "W009/angry/level_3/004": "failed"}
    assert precomputed.metrics["psnr_rgb"].value > 30  # the ground truth, re-encoded
    assert precomputed.metrics["ssim_gauss11_rgb"].n == 3
    failed = by_method["external"]
    assert {g.status for g in failed.generations} == {"failed"}
    assert "exit code 3" in failed.generations[0].error
    assert failed.metrics["psnr_rgb"].status == "failed"
    assert records[0].dataset.fingerprint["clips"] == 4
    table = (out / "table.md").read_text()
    for name in ("sadtalker", "hallo", "precomputed", "external"):
        assert name in table
    assert len(list((out / "records").glob("*.json"))) == 4
    saved = json.loads(next((out / "records").glob("precomputed*.json")).read_text())
    assert saved["method"]["options"]["outputs_sha256"] == by_method[
        "precomputed"].method.options["outputs_sha256"]
    assert "failed on clip" in console.getvalue()
