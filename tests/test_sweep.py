"""Sweeps (YAML and --sweep) expand into work units; each overwrite policy does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auhead_bench import Clip, Generation, Method, Options
from auhead_bench.cache import Cache
from auhead_bench.cli import cli
from auhead_bench.config import load_config, parse_sweep
from auhead_bench.errors import ConfigError
from auhead_bench.plan import make_plan
from auhead_bench.plugins import PluginInfo, get_registry, load_plugins
from auhead_bench.records import load_record, without_measurements
from auhead_bench.runner import Runner
from auhead_bench.stages import NOT_CACHED

TEST_PLUGIN = PluginInfo("tests", "tests", "tests", "0")


class CountingOptions(Options):
    gain: int = 0


class CountingCopy(Method):
    """Copies the ground truth; counts its setups and generations, fails when told to."""

    id = "counting_copy"
    description = "test method"
    Options = CountingOptions
    setups: list[str] = []
    calls: list[tuple[str, int, int]] = []
    fail = False

    def setup(self, device: str) -> None:
        CountingCopy.setups.append(device)

    def generate(self, clip: Clip, options: CountingOptions, seed: int, out_path: Path):
        CountingCopy.calls.append((clip.id, seed, options.gain))
        if CountingCopy.fail:
            raise RuntimeError("simulated crash")
        out_path.write_bytes(clip.video.read_bytes())
        return Generation(info={"gain": options.gain})


@pytest.fixture
def registry():
    CountingCopy.setups, CountingCopy.calls, CountingCopy.fail = [], [], False
    reg = load_plugins()
    reg.add("method", CountingCopy, TEST_PLUGIN)
    return reg


@pytest.fixture
def clips(video_factory, tmp_path) -> Path:
    video_factory("data/a.mp4", seed=1)
    video_factory("data/b.mp4", seed=2)
    return tmp_path / "data"


def write_config(tmp_path: Path, clips: Path, **fields) -> Path:
    data = {
        "name": "sweep",
        "datasets": [{"id": "folder", "options": {"root": str(clips)}}],
        "methods": ["ground_truth"],
        "metrics": ["psnr_rgb"],
        "cache_dir": str(tmp_path / "cache"),
    }
    data.update(fields)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def plan_of(path: Path, registry=None, **overrides):
    config = load_config(path, overrides)
    return make_plan(config, registry or get_registry(), path)


def experiments(plan) -> list[str]:
    return [unit.experiment for unit in plan.units]


def error_of(path: Path, registry=None, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        plan_of(path, registry, **overrides)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


# ---- expansion ------------------------------------------------------------------------------


def test_yaml_sweep_gives_one_record_per_value(clips, tmp_path):
    methods = ["ground_truth", {"id": "static_frame", "sweep": {"frame": [None, 3, 10]}}]
    path = write_config(tmp_path, clips, methods=methods)
    out = tmp_path / "out"
    records = Runner(load_config(path), out, config_path=path).run()
    assert [r.experiment for r in records] == [
        "ground_truth",
        "static_frame[frame=null]",  # a sweep point is named, its default value too
        "static_frame[frame=3]",
        "static_frame[frame=10]",
    ]
    assert [r.method.options for r in records[1:]] == [{"frame": None}, {"frame": 3}, {"frame": 10}]
    assert len({r.record_id for r in records}) == 4
    assert sorted(p.stem for p in (out / "records").glob("*.json")) == sorted(
        r.record_id for r in records
    )
    # Each point really ran with its own option: different held frames, different videos.
    shas = [{g.content_sha256 for g in r.generations} for r in records[1:]]
    assert shas[0].isdisjoint(shas[1]) and shas[1].isdisjoint(shas[2])
    # Stable: the same config plans the same names and record ids.
    again = plan_of(path)
    assert [u.record_id for u in again.units] == [r.record_id for r in records]


def test_top_level_sweep_applies_to_methods_that_have_the_option(clips, tmp_path):
    path = write_config(
        tmp_path, clips, methods=["ground_truth", "static_frame"], sweep={"frame": [0, 5]}
    )
    assert experiments(plan_of(path)) == [
        "ground_truth",
        "static_frame[frame=0]",
        "static_frame[frame=5]",
    ]


def test_method_sweep_beats_top_level_sweep_and_fixed_options(clips, tmp_path):
    methods = [{"id": "static_frame", "options": {"frame": 1}, "sweep": {"frame": [7, 8]}}]
    path = write_config(tmp_path, clips, methods=methods, sweep={"frame": [2]})
    assert experiments(plan_of(path)) == ["static_frame[frame=7]", "static_frame[frame=8]"]


def test_grid_of_two_options(clips, tmp_path):
    sweep = {"strength": [0.0, 0.5], "au_source": ["labels", "audio"]}  # the first varies slowest
    methods = [{"id": "au_warp", "sweep": sweep}]
    path = write_config(tmp_path, clips, methods=methods)
    assert experiments(plan_of(path)) == [
        'au_warp[au_source="labels",strength=0.0]',
        'au_warp[au_source="audio",strength=0.0]',
        'au_warp[au_source="labels",strength=0.5]',
        'au_warp[au_source="audio",strength=0.5]',
    ]


def test_cli_sweep_overrides_and_extends_the_yaml(clips, tmp_path):
    methods = [
        {"id": "static_frame", "sweep": {"frame": [3, 4]}},
        {"id": "au_warp", "sweep": {"strength": [0.0, 2.0]}},
    ]
    path = write_config(tmp_path, clips, methods=methods)
    plan = plan_of(path, sweep=parse_sweep(["frame=1,2", "au_source=labels,audio"]))
    assert experiments(plan) == [
        "static_frame[frame=1]",  # the command line replaced the YAML's 3, 4
        "static_frame[frame=2]",
        'au_warp[au_source="labels",strength=0.0]',  # ... and added a grid axis to au_warp
        'au_warp[au_source="labels",strength=2.0]',
        'au_warp[au_source="audio",strength=0.0]',
        'au_warp[au_source="audio",strength=2.0]',
    ]


def test_cli_values_are_read_as_yaml_scalars():
    assert parse_sweep(["s_au=1,2,3.5", "frame=null,10", "mode=ddim"]) == {
        "s_au": [1, 2, 3.5],
        "frame": [None, 10],
        "mode": ["ddim"],
    }


def test_run_command_with_sweep_and_overwrite(clips, tmp_path):
    path = write_config(tmp_path, clips, methods=["static_frame"])
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--sweep", "frame=1,2", "--overwrite", "always"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = {load_record(p).experiment for p in (out / "records").glob("*.json")}
    assert names == {"static_frame[frame=1]", "static_frame[frame=2]"}
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["config"]["overwrite"] == "always"
    assert manifest["config"]["sweep"] == {"frame": [1, 2]}


# ---- mistakes -------------------------------------------------------------------------------


def test_top_level_option_no_method_has(clips, tmp_path):
    path = write_config(tmp_path, clips, methods=["ground_truth", "static_frame"])
    message = error_of(path, sweep={"fram": [1]})
    assert "sweep.fram: no listed method has the option 'fram'" in message
    assert "static_frame: frame" in message


def test_method_sweep_of_an_unknown_option(clips, tmp_path):
    path = write_config(tmp_path, clips, methods=[{"id": "static_frame", "sweep": {"fram": [1]}}])
    message = error_of(path)
    assert "methods[0].sweep.fram: method 'static_frame' has no option 'fram'" in message
    assert "options of method 'static_frame': frame" in message


def test_bad_sweep_values_name_method_option_and_value(clips, tmp_path):
    path = write_config(tmp_path, clips, methods=["static_frame"], sweep={"frame": [1, "three"]})
    message = error_of(path)
    assert "sweep.frame: bad value \"three\" for option 'frame' of method 'static_frame'" in message
    path = write_config(tmp_path, clips, methods=[{"id": "au_warp", "sweep": {"strength": [5]}}])
    message = error_of(path)
    assert "methods[0].sweep.strength: bad value 5 for option 'strength' of method 'au_warp'" in (
        message
    )
    assert "less than or equal to 3" in message


def test_bad_cli_sweep_is_one_line(clips, tmp_path):
    path = write_config(tmp_path, clips, methods=["static_frame"])
    for bad in ("frame", "frame=", "frame=1,,2", "=1"):
        result = CliRunner().invoke(cli, ["run", str(path), "--out", "x", "--sweep", bad])
        assert result.exit_code == 2 and "--sweep" in result.output
        assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["run", str(path), "--out", "x", "--sweep", "nope=1"])
    assert result.exit_code == 2 and str(path) in result.output and "sweep.nope" in result.output


def test_empty_sweep_duplicates_and_repeated_seeds(clips, tmp_path):
    path = write_config(tmp_path, clips, methods=["static_frame"], sweep={"frame": []})
    assert "sweep: frame: the list of values is empty" in error_of(path)
    path = write_config(tmp_path, clips, methods=["static_frame"], sweep={"frame": [3, 3.0]})
    assert "listed twice with the same options (static_frame[frame=3])" in error_of(path)
    path = write_config(tmp_path, clips, seeds=[0, 1, 0])
    assert "seeds: seed 0 is listed twice" in error_of(path)


# ---- overwrite policies ---------------------------------------------------------------------


def counting_config(tmp_path, clips, **fields):
    fields.setdefault("methods", ["counting_copy"])
    return load_config(write_config(tmp_path, clips, **fields))


def entries(cache: Path) -> dict[Path, tuple[int, int]]:
    """Generation entries with (inode, mtime): a replaced entry changes both."""
    return {
        p: (p.stat().st_ino, (p / "video.mp4").stat().st_mtime_ns)
        for p in (cache / "generations").glob("*/*")
    }


def test_only_missing_reuses_the_cache(clips, tmp_path, registry):
    config = counting_config(tmp_path, clips)
    Runner(config, tmp_path / "one", registry=registry).run()
    assert len(CountingCopy.calls) == 2
    before = entries(tmp_path / "cache")
    Runner(config, tmp_path / "two", registry=registry).run()
    assert len(CountingCopy.calls) == 2 and entries(tmp_path / "cache") == before


def test_only_cache_scores_cached_generations_and_makes_none(clips, tmp_path, registry):
    config = counting_config(tmp_path, clips, overwrite="only-cache")
    (record,) = Runner(config, tmp_path / "out", registry=registry).run()
    assert CountingCopy.setups == [] and CountingCopy.calls == []
    assert [(g.status, g.error) for g in record.generations] == [("failed", NOT_CACHED)] * 2
    psnr = record.metrics["psnr_rgb"]
    assert psnr.status == "failed" and psnr.n == 0 and NOT_CACHED in psnr.reason
    # Once generated, only-cache scores them, still without calling the method.
    Runner(counting_config(tmp_path, clips), tmp_path / "fill", registry=registry).run()
    calls = len(CountingCopy.calls)
    (record,) = Runner(config, tmp_path / "out", registry=registry).run()
    assert len(CountingCopy.calls) == calls
    assert record.metrics["psnr_rgb"].status == "ok" and record.metrics["psnr_rgb"].n == 2


def test_always_regenerates_and_replaces_cache_entries(clips, tmp_path, registry):
    cache = tmp_path / "cache"
    (first,) = Runner(counting_config(tmp_path, clips), tmp_path / "one", registry=registry).run()
    before = entries(cache)
    config = counting_config(tmp_path, clips, overwrite="always")
    (second,) = Runner(config, tmp_path / "two", registry=registry).run()
    assert len(CountingCopy.calls) == 4
    after = entries(cache)
    assert after.keys() == before.keys()  # the same keys, each entry made anew
    assert all(after[p][0] != before[p][0] and after[p][1] != before[p][1] for p in before)
    assert list((cache / "tmp").iterdir()) == []  # the old entries are gone, not left aside
    assert without_measurements(first) == without_measurements(second)
    assert Cache(cache).summary()["generations"]["entries"] == 2


def test_always_keeps_the_old_entry_when_regeneration_fails(clips, tmp_path, registry):
    Runner(counting_config(tmp_path, clips), tmp_path / "one", registry=registry).run()
    before = entries(tmp_path / "cache")
    CountingCopy.fail = True
    config = counting_config(tmp_path, clips, overwrite="always")
    (record,) = Runner(config, tmp_path / "two", registry=registry).run()
    assert {g.status for g in record.generations} == {"failed"}
    assert "simulated crash" in record.generations[0].error
    assert entries(tmp_path / "cache") == before


def test_never_keeps_existing_records_and_runs_the_rest(clips, tmp_path, registry):
    out = tmp_path / "out"
    (old,) = Runner(counting_config(tmp_path, clips), out, registry=registry).run()
    old_file = out / "records" / f"{old.record_id}.json"
    old_text, old_stamp = old_file.read_text(), old_file.stat().st_mtime_ns
    # The same output folder, a new sweep point and another metric: only the new unit runs.
    config = counting_config(
        tmp_path,
        clips,
        methods=[{"id": "counting_copy", "sweep": {"gain": [0, 1]}}],
        metrics=["psnr_rgb", "ssim_gauss11_rgb"],
        overwrite="never",
    )
    records = Runner(config, out, registry=registry).run()
    assert [r.experiment for r in records] == ["counting_copy", "counting_copy[gain=1]"]
    assert [gain for _, _, gain in CountingCopy.calls] == [0, 0, 1, 1]
    assert old_file.read_text() == old_text and old_file.stat().st_mtime_ns == old_stamp
    assert list(records[0].metrics) == ["psnr_rgb"]  # kept as it was
    assert list(records[1].metrics) == ["psnr_rgb", "ssim_gauss11_rgb"]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["records"] == [f"records/{r.record_id}.json" for r in records]
    assert "counting_copy[gain=1]" in (out / "table.md").read_text()
    # Everything recorded: nothing is generated, the records come back as they were.
    again = Runner(config, out, registry=registry).run()
    assert len(CountingCopy.calls) == 4 and again == records


def test_cache_remove_and_replace(tmp_path):
    cache = Cache(tmp_path / "cache")
    cache.write_json("scores", "ab" * 32, {"v": 1})
    with cache.put("scores", "ab" * 32, replace=True) as folder:
        (folder / "value.json").write_text('{"v": 2}')
    assert cache.read_json("scores", "ab" * 32) == {"v": 2}
    assert cache.remove("scores", "ab" * 32) is True
    assert cache.get("scores", "ab" * 32) is None
    assert cache.remove("scores", "ab" * 32) is False
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
