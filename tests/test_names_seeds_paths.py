"""What a researcher publishes from a small study: methods called by their names, a
deterministic method generated once whatever the seeds, no absolute path of this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auhead_bench import Clip, Generation, Method, Options
from auhead_bench.cli import cli
from auhead_bench.config import load_config
from auhead_bench.errors import ConfigError
from auhead_bench.plan import make_plan
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.private_paths import PathScrubber
from auhead_bench.runner import Runner

TEST_PLUGIN = PluginInfo("tests", "tests", "tests", "0")


class NoisyOptions(Options):
    gain: int = 0


class NoisyCopy(Method):
    """A stochastic test method: copies the ground truth, counting (clip, seed) calls."""

    id = "noisy_copy"
    description = "test method whose output would depend on the seed"
    Options = NoisyOptions
    calls: list[tuple[str, int]] = []

    def generate(self, clip: Clip, options: NoisyOptions, seed: int, out_path: Path):
        NoisyCopy.calls.append((clip.id, seed))
        out_path.write_bytes(clip.video.read_bytes())
        return Generation()


class SteadyCopy(NoisyCopy):
    id = "steady_copy"
    description = "test method that does not use its seed"
    deterministic = True
    calls: list[tuple[str, int]] = []

    def generate(self, clip: Clip, options: NoisyOptions, seed: int, out_path: Path):
        SteadyCopy.calls.append((clip.id, seed))
        out_path.write_bytes(clip.video.read_bytes())
        return Generation()


@pytest.fixture
def registry():
    NoisyCopy.calls, SteadyCopy.calls = [], []
    reg = load_plugins()
    reg.add("method", NoisyCopy, TEST_PLUGIN)
    reg.add("method", SteadyCopy, TEST_PLUGIN)
    return reg


@pytest.fixture
def study(video_factory, tmp_path) -> Path:
    """Three clips with a labels CSV in a data folder beside the config."""
    for i, name in enumerate(("a", "b", "c")):
        video_factory(f"data/{name}.mp4", seed=i + 1)
    (tmp_path / "data" / "labels.csv").write_text(
        "clip_id,emotion\na,happy\nb,sad\nc,angry\n"
    )
    return tmp_path / "data"


def write_config(tmp_path: Path, data: Path, **fields) -> Path:
    config = {
        "name": "small-study",
        "datasets": [{"id": "folder", "options": {"root": str(data),
                                                  "labels": str(data / "labels.csv")}}],
        "methods": ["ground_truth"],
        "metrics": ["psnr_rgb"],
        "seeds": [0, 1],
        "cache_dir": str(tmp_path / "cache"),
    }
    config.update(fields)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---- deterministic methods ------------------------------------------------------------------


def test_deterministic_method_is_generated_and_scored_for_one_seed(registry, study, tmp_path):
    path = write_config(tmp_path, study, methods=["steady_copy", "noisy_copy"])
    records = Runner(load_config(path), tmp_path / "out", registry=registry,
                     config_path=path).run()
    steady, noisy = records
    assert sorted(SteadyCopy.calls) == [("a", 0), ("b", 0), ("c", 0)]
    assert len(NoisyCopy.calls) == 6
    assert steady.deterministic and steady.seeds == [0]
    assert not noisy.deterministic and noisy.seeds == [0, 1]
    assert steady.metrics["psnr_rgb"].n == 3  # clips, never clip x seed
    assert list(steady.metrics["psnr_rgb"].per_seed) == ["0"]
    assert {v.seed for v in steady.metrics["psnr_rgb"].per_clip} == {0}
    assert noisy.metrics["psnr_rgb"].n == 6


def test_reference_and_baseline_methods_declare_determinism():
    registry = load_plugins()

    def deterministic(ident: str, **options) -> bool:
        cls = registry.get("method", ident).cls
        return cls.is_deterministic(cls.Options(**options))

    assert deterministic("ground_truth") and deterministic("static_frame")
    assert deterministic("au_warp")
    external = {"command": ["tool", "{reference}", "{audio}", "{out}"]}
    assert deterministic("external", **external)
    assert not deterministic("external", command=[*external["command"], "--seed", "{seed}"])


def test_precomputed_is_deterministic_unless_its_pattern_names_the_seed(tmp_path):
    registry = load_plugins()
    cls = registry.get("method", "precomputed").cls
    (tmp_path / "out").mkdir()
    assert cls.is_deterministic(cls.Options(folder=tmp_path / "out"))
    assert not cls.is_deterministic(cls.Options(folder=tmp_path / "out",
                                                pattern="{clip_id}_{seed}.mp4"))


# ---- names ------------------------------------------------------------------------------------


def test_name_is_used_for_the_method_and_its_sweep_points(registry, study, tmp_path):
    methods = [
        {"id": "noisy_copy", "name": "Ours (v2)"},
        {"id": "static_frame", "name": "still", "sweep": {"frame": [None, 3]}},
        {"id": "noisy_copy", "sweep": {"gain": [1, 2]}},
    ]
    path = write_config(tmp_path, study, methods=methods, seeds=[0])
    plan = make_plan(load_config(path), registry, path)
    assert [u.experiment for u in plan.units] == [
        "Ours (v2)", "still[frame=null]", "still[frame=3]",
        "noisy_copy[gain=1]", "noisy_copy[gain=2]",
    ]
    # The name is display only: the record id is the options' (renaming keeps the cache).
    unnamed = write_config(tmp_path, study, methods=["noisy_copy"], seeds=[0])
    assert make_plan(load_config(unnamed), registry, unnamed).units[0].record_id == \
        plan.units[0].record_id


def test_name_reaches_progress_records_and_tables(registry, study, tmp_path, capsys):
    path = write_config(tmp_path, study, seeds=[0], methods=[
        "ground_truth", {"id": "noisy_copy", "name": "ours", "sweep": {"gain": [1, 2]}}])
    out = tmp_path / "out"
    records = Runner(load_config(path), out, registry=registry, config_path=path).run()
    assert [r.experiment for r in records] == ["ground_truth", "ours[gain=1]", "ours[gain=2]"]
    assert records[1].method.options == {"gain": 1}  # the spec keeps the full options
    err = capsys.readouterr().err
    assert "ours[gain=1] on folder: 3/3 generated" in err
    assert "ours[gain=2] on folder: 3/3 generated" in err
    table = (out / "table.md").read_text()
    assert "ours[gain=1]" in table and "ours[gain=2]" in table


def test_two_methods_with_one_name_are_refused(registry, study, tmp_path):
    path = write_config(tmp_path, study, methods=[
        {"id": "noisy_copy", "name": "x"}, {"id": "static_frame", "name": "x"}])
    with pytest.raises(ConfigError, match="called 'x'.*distinct `name:`"):
        make_plan(load_config(path), registry, path)


def test_a_name_must_be_one_printable_line(study, tmp_path):
    path = write_config(tmp_path, study, methods=[{"id": "ground_truth", "name": "a\nb"}])
    with pytest.raises(ConfigError, match="printable"):
        load_config(path)


# ---- no private path published -----------------------------------------------------------


def test_scrubber_rewrites_paths_in_values_and_messages(tmp_path):
    config_dir, cache = tmp_path / "study", tmp_path / "cache"
    scrub = PathScrubber(config_dir, [(cache, "$AUHEAD_BENCH_CACHE")])
    assert scrub.path(str(config_dir / "data" / "a.mp4")) == "data/a.mp4"
    assert scrub.path(str(config_dir)) == "."
    assert scrub.text(f"cannot read {cache}/x/y.mp4 (3/50 frames)") == \
        "cannot read $AUHEAD_BENCH_CACHE/x/y.mp4 (3/50 frames)"
    other = scrub.path("/srv/private/clips")
    assert other.startswith("<path:") and other.endswith("/clips") and "srv" not in other
    assert scrub.path("/srv/private/clips") == other  # stable: the same folder stays the same
    kept = "see https://github.com/x/y and n/a, 1/5"
    assert scrub.text(kept) == kept
    assert scrub.text(scrub.text(f"{cache}/a")) == "$AUHEAD_BENCH_CACHE/a"  # idempotent


def outputs_holding(root: Path, text: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and text.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


@pytest.mark.slow
def test_no_output_of_a_study_holds_the_machines_paths(study, tmp_path):
    """Run (config beside the data), tables in every format, both plots and the site: no file
    written holds the temp folder's path; the record says where the data was, relatively."""
    methods = ["ground_truth", "static_frame",
               {"id": "static_frame", "name": "held", "sweep": {"frame": [0, 2, 4]}}]
    path = write_config(tmp_path, study, methods=methods, metrics=["psnr_rgb", "ssim_gauss11_rgb"])
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    reports = tmp_path / "reports"
    reports.mkdir()
    for fmt, suffix in (("md", "md"), ("csv", "csv"), ("latex", "tex"), ("json", "json")):
        done = runner.invoke(cli, ["table", str(out), "--format", fmt, "--baseline",
                                   "static_frame", "--out", str(reports / f"t.{suffix}")])
        assert done.exit_code == 0, done.output
    for args in (["tradeoff", "--param", "frame", "--x", "psnr_rgb", "--y", "ssim_gauss11_rgb"],
                 ["pareto", "--x", "psnr_rgb", "--y", "ssim_gauss11_rgb"]):
        done = runner.invoke(cli, ["plot", args[0], str(out), *args[1:], "--out",
                                   str(reports / args[0])])
        assert done.exit_code == 0, done.output
    site = tmp_path / "site"
    done = runner.invoke(cli, ["leaderboard", "build", "--results", str(out / "records"),
                               "--out", str(site)])
    assert done.exit_code == 0, done.output
    private = str(tmp_path)
    leaks = {name: outputs_holding(root, private) for name, root in
             (("run", out), ("reports", reports), ("site", site))}
    assert leaks == {"run": [], "reports": [], "site": []}
    record = json.loads(next((out / "records").glob("ground_truth__*.json")).read_text())
    assert record["dataset"]["options"]["root"] == "data"
    assert record["dataset"]["options"]["labels"] == "data/labels.csv"
