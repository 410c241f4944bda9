"""The runner end to end on small folder datasets: records, failures kept per clip, caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from auhead_bench import (
    BenchError,
    Clip,
    ClipSkipped,
    DistributionMetric,
    Extractor,
    Generation,
    Method,
    Options,
    PerClipMetric,
    media,
)
from auhead_bench.config import RunConfig
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.records import load_record
from auhead_bench.runner import Runner, plugin_ref
from auhead_bench.stages import RunContext, generate_clips, prepare_or_reason, score_clips

TEST_PLUGIN = PluginInfo("tests", "tests", "tests", "0")


class FailsOnSecond(Method):
    """Copies the ground truth but crashes on clips whose id ends in 'b'."""

    id = "fails_on_b"
    description = "test method"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        if clip.id.endswith("b"):
            raise RuntimeError("out of memory (simulated)")
        out_path.write_bytes(clip.video.read_bytes())
        return Generation(info={"seed": seed})


class CrashingMetric(PerClipMetric):
    id = "crashes"
    description = "test metric that raises"
    higher_is_better = True

    def score(self, view):
        raise KeyError("bug in a plugin")


def registry():
    reg = load_plugins()
    reg.add("method", FailsOnSecond, TEST_PLUGIN)
    reg.add("metric", CrashingMetric, TEST_PLUGIN)
    return reg


def folder_config(root: Path, cache: Path, **extra) -> RunConfig:
    data = {
        "name": "t",
        "datasets": [{"id": "folder", "options": {"root": str(root)}}],
        "methods": ["ground_truth", "static_frame"],
        "metrics": ["psnr_rgb", "ssim_gauss11_rgb"],
        "cache_dir": str(cache),
    }
    data.update(extra)
    return RunConfig.model_validate(data)


@pytest.fixture
def two_clips(video_factory, tmp_path):
    video_factory("data/a.mp4", seed=1)
    video_factory("data/b.mp4", seed=2)
    return tmp_path / "data"


def test_records_tables_and_bounds(two_clips, cache_dir, tmp_path):
    out = tmp_path / "out"
    records = Runner(folder_config(two_clips, cache_dir, seeds=[0, 1]), out).run()
    assert len(records) == 2 and (out / "table.md").is_file() and (out / "table.csv").is_file()
    by_method = {r.method.id: r for r in records}
    truth, static = by_method["ground_truth"], by_method["static_frame"]
    assert truth.metrics["psnr_rgb"].value == pytest.approx(100.0)
    assert static.metrics["psnr_rgb"].value < 40
    assert truth.metrics["ssim_gauss11_rgb"].value > static.metrics["ssim_gauss11_rgb"].value
    # static_frame is deterministic: seed 1 would repeat seed 0, so only seed 0 is run and n
    # counts the two clips (tests/test_names_seeds_paths.py covers a stochastic method).
    assert static.deterministic and static.seeds == [0] and len(static.generations) == 2
    assert static.metrics["psnr_rgb"].n == 2 and set(static.metrics["psnr_rgb"].per_seed) == {"0"}
    for path in (out / "records").glob("*.json"):
        assert load_record(path).record_id == path.stem


def test_a_crashing_method_fails_only_its_clip(two_clips, cache_dir, tmp_path):
    config = folder_config(
        two_clips, cache_dir, methods=["fails_on_b"], metrics=["psnr_rgb", "crashes"]
    )
    (record,) = Runner(config, tmp_path / "out", registry=registry()).run()
    status = {g.clip_id: g.status for g in record.generations}
    assert status == {"a": "ok", "b": "failed"}
    assert "out of memory" in next(g.error for g in record.generations if g.clip_id == "b")
    psnr = record.metrics["psnr_rgb"]
    assert psnr.status == "ok" and psnr.n == 1 and psnr.n_skipped == 1
    crash = record.metrics["crashes"]
    assert crash.status == "failed" and "KeyError" in crash.reason
    # The failure is not cached: a second run tries the clip again.
    (again,) = Runner(config, tmp_path / "out2", registry=registry()).run()
    assert [g.status for g in again.generations] == ["ok", "failed"]


def test_no_face_is_counted_not_averaged(two_clips, cache_dir, tmp_path):
    config = folder_config(
        two_clips, cache_dir, methods=["ground_truth"], metrics=["lmd_mouth_dlib68", "psnr_rgb"]
    )
    (record,) = Runner(config, tmp_path / "out").run()
    lmd = record.metrics["lmd_mouth_dlib68"]
    assert lmd.status == "failed" and lmd.value is None and lmd.n_skipped == 2
    assert "no face" in lmd.reason and "(2/2)" in lmd.reason
    assert record.metrics["psnr_rgb"].status == "ok"


def test_silent_audio_is_allowed_and_flagged(video_factory, tmp_path, cache_dir):
    video_factory("quiet/q.mp4", audio="silent")
    config = folder_config(tmp_path / "quiet", cache_dir, methods=["static_frame"])
    (record,) = Runner(config, tmp_path / "out").run()
    assert record.generations[0].flags == ["silent_audio"]
    assert record.metrics["psnr_rgb"].status == "ok"


@pytest.mark.parametrize("damage", ["empty", "corrupt"])
def test_bad_clip_stops_with_its_path_or_is_skipped(two_clips, cache_dir, tmp_path, damage):
    bad = two_clips / "c.mp4"
    bad.write_bytes(b"" if damage == "empty" else b"\x00\x01 not a video" * 50)
    with pytest.raises(BenchError) as info:
        Runner(folder_config(two_clips, cache_dir), tmp_path / "out").run()
    message = str(info.value)
    assert str(bad) in message and "skip_bad_clips" in message and "\n" not in message
    records = Runner(folder_config(two_clips, cache_dir, skip_bad_clips=True), tmp_path / "o").run()
    assert records[0].clip_ids == ["a", "b"] and "c" in records[0].skipped_clips


def test_unwritable_output_dir(two_clips, cache_dir):
    # /proc refuses new folders even to root, so this holds wherever the tests run.
    with pytest.raises(BenchError, match="not writable"):
        Runner(folder_config(two_clips, cache_dir), Path("/proc/auhead-bench/out")).run()


def test_output_path_that_is_a_file(two_clips, cache_dir, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    with pytest.raises(BenchError, match="not writable"):
        Runner(folder_config(two_clips, cache_dir), blocker).run()


def test_second_run_comes_from_cache(two_clips, cache_dir, tmp_path):
    first = Runner(folder_config(two_clips, cache_dir), tmp_path / "one").run()
    generations = sorted((cache_dir / "generations").glob("*/*"))
    stamps = [p.stat().st_mtime_ns for p in generations]
    second = Runner(folder_config(two_clips, cache_dir), tmp_path / "two").run()
    assert [p.stat().st_mtime_ns for p in sorted((cache_dir / "generations").glob("*/*"))] == stamps
    assert [r.model_dump() for r in first] == [r.model_dump() for r in second]
    table = json.loads((tmp_path / "two" / "run.json").read_text())
    assert len(table["records"]) == 2


def test_writer_output_is_a_valid_generation(two_clips, cache_dir, tmp_path):
    records = Runner(
        folder_config(two_clips, cache_dir, methods=["static_frame"]), tmp_path / "out"
    ).run()
    generation = records[0].generations[0]
    path = cache_dir / "generations" / generation.key[:2] / generation.key / "video.mp4"
    video = media.decode_video(path)
    assert generation.frames == len(video.frames) == 20 and video.has_audio
    held = np.abs(video.frames[0].astype(int) - video.frames[-1].astype(int))
    assert held.mean() < 1.0  # a held frame (up to H.264 coding noise)


class WithTrack(Method):
    id = "with_track"
    description = "copies the ground truth and returns a conditioning track"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        out_path.write_bytes(clip.video.read_bytes())
        return Generation(arrays={"au_track": np.full((20, 24), 0.5, np.float32)},
                          info={"emotion": "happy"})


class TrackMean(PerClipMetric):
    id = "track_mean"
    description = "mean of the conditioning AU track"
    higher_is_better = True
    needs_ground_truth = False

    def score(self, view):
        assert view.info["emotion"] == "happy"
        return float(view.arrays["au_track"].mean())


def test_metrics_see_what_the_method_was_conditioned_on(two_clips, cache_dir, tmp_path):
    reg = load_plugins()
    reg.add("method", WithTrack, TEST_PLUGIN)
    reg.add("metric", TrackMean, TEST_PLUGIN)
    config = folder_config(two_clips, cache_dir, methods=["with_track"], metrics=["track_mean"])
    (record,) = Runner(config, tmp_path / "out", registry=reg).run()
    assert record.metrics["track_mean"].value == pytest.approx(0.5)


class MeanRGB(Extractor):
    id = "mean_rgb"
    description = "per-frame mean colour"

    def extract(self, video):
        return {"mean": np.concatenate([c.frames.reshape(len(c), -1, 3).mean(1)
                                        for c in video.chunks()])}


class MeanGap(DistributionMetric):
    id = "mean_gap"
    description = "distance of the two sides' mean colours over all clips"
    higher_is_better = False
    needs = ("mean_rgb",)

    def reset(self):
        self.sums = {"gen": np.zeros(3), "gt": np.zeros(3)}

    def update(self, view):
        self.sums["gen"] += view.generated["mean_rgb"]["mean"].sum(0)
        self.sums["gt"] += view.ground_truth["mean_rgb"]["mean"].sum(0)

    def compute(self):
        return float(np.linalg.norm(self.sums["gen"] - self.sums["gt"]))


def test_a_resumed_run_decodes_no_video_when_features_are_cached(
    two_clips, cache_dir, tmp_path, monkeypatch
):
    """Resuming (or gathering a Ray run) reads features and scores from the cache: a
    distribution metric is folded again from cached features without decoding anything."""
    reg = load_plugins()
    reg.add("extractor", MeanRGB, TEST_PLUGIN)
    reg.add("metric", MeanGap, TEST_PLUGIN)
    config = folder_config(two_clips, cache_dir, metrics=["psnr_rgb", "mean_gap"])
    first = Runner(config, tmp_path / "one", registry=reg).run()
    assert first[1].metrics["mean_gap"].status == "ok"

    def no_decoding(path, *args, **kwargs):
        raise AssertionError(f"decoded {path}")

    monkeypatch.setattr(media, "decode_video", no_decoding)
    monkeypatch.setattr(media, "iter_frames", no_decoding)
    second = Runner(config, tmp_path / "two", registry=reg).run()
    assert [r.model_dump() for r in second] == [r.model_dump() for r in first]


class DeclaredMeanGap(DistributionMetric):
    """MeanGap with declared state, skipping clip b (a per-clip reason to carry over)."""

    id = "declared_mean_gap"
    description = "MeanGap, mergeable"
    higher_is_better = False
    needs = ("mean_rgb",)

    def __init__(self, options=None):
        super().__init__(options)
        self.add_state("sums", np.zeros((2, 3)), merge="sum")
        self.add_state("clips", [], merge="cat")

    def update(self, view):
        if view.clip.id == "b":
            raise ClipSkipped("b is left out")
        gen, gt = view.generated["mean_rgb"]["mean"], view.ground_truth["mean_rgb"]["mean"]
        self.sums = self.sums + np.stack([gen.sum(0), gt.sum(0)])
        self.clips = self.clips + [view.clip.id]

    def compute(self):
        return float(np.linalg.norm(self.sums[0] - self.sums[1]))

    def summary(self):
        return {"clips": self.clips}


def test_partial_statistics_absorbed_clip_by_clip_give_the_one_pass_results(
    two_clips, cache_dir, tmp_path
):
    """The Ray executor's flow without Ray: a worker scorer per chunk (here: per clip) exports
    its partial statistics, the driver absorbs them, then scores the per-clip metrics from
    the cache. A metric without declared state (mean_gap) is folded by the driver itself."""
    reg = load_plugins()
    reg.add("extractor", MeanRGB, TEST_PLUGIN)
    reg.add("metric", MeanGap, TEST_PLUGIN)
    reg.add("metric", DeclaredMeanGap, TEST_PLUGIN)
    config = folder_config(
        two_clips, cache_dir, metrics=["psnr_rgb", "mean_gap", "declared_mean_gap"], seeds=[0, 1]
    )
    context = RunContext(config, reg)
    dataset = context.plan.datasets[0]
    clips = [
        prepare_or_reason(c, context.cache)
        for c in dataset.entry.cls(dataset.options, cache_dir / "datasets").clips()
    ]
    units = context.plan.units
    generated = {u.record_id: generate_clips(context, u, clips, lambda: None) for u in units}
    local = context.scorer()
    score_clips(local, units, clips, generated, lambda: None)

    worker, driver = RunContext(config, reg).scorer(), context.scorer()
    for clip in clips:
        chunk = {rid: [g for g in part if g.clip.id == clip.id] for rid, part in generated.items()}
        score_clips(worker, units, [clip], chunk, lambda: None)
        driver.absorb(worker.export_partial())
    assert driver.absorbed == {"declared_mean_gap"} and not worker.states
    score_clips(driver, units, clips, generated, lambda: None)
    for unit in units:
        ours = driver.results(unit.record_id, plugin_ref)
        theirs = local.results(unit.record_id, plugin_ref)
        assert {k: r.model_dump() for k, r in ours.items()} == {
            k: r.model_dump() for k, r in theirs.items()
        }
        merged = ours["declared_mean_gap"]
        # both reference methods are deterministic: one seed each
        assert merged.status == "ok" and merged.per_seed_info["0"] == {"clips": ["a"]}
        assert [v.reason for v in merged.per_clip] == ["b is left out"]


class FromModelFile(Method):
    """Writes the ground truth, 'conditioned' on a model file named by an option."""

    id = "from_model_file"
    description = "test method whose output depends on a file its options point at"

    class Options(Options):
        model: str

    def generate(self, clip, options, seed, out_path):
        out_path.write_bytes(clip.video.read_bytes())
        return Generation(info={"model": Path(options.model).read_text()})

    def content_fingerprint(self, options):
        return {"model": media.sha256_file(Path(options.model))}


def test_a_model_retrained_in_place_is_not_served_from_the_cache(
    two_clips, cache_dir, tmp_path
):
    """Same options, new file content: the generations must be made again."""
    reg = load_plugins()
    reg.add("method", FromModelFile, TEST_PLUGIN)
    model = tmp_path / "model.bin"
    model.write_text("weights v1")
    config = folder_config(
        two_clips,
        cache_dir,
        methods=[{"id": "from_model_file", "options": {"model": str(model)}}],
    )
    first = Runner(config, tmp_path / "one", registry=reg).run()[0]
    model.write_text("weights v2")
    second = Runner(config, tmp_path / "two", registry=reg).run()[0]
    assert [g.info["model"] for g in first.generations] == ["weights v1"] * 2
    assert [g.info["model"] for g in second.generations] == ["weights v2"] * 2
    assert first.method.fingerprint["content"] != second.method.fingerprint["content"]
    assert first.record_id == second.record_id  # the same experiment, made again


def test_reasons_group_counts_but_keep_names():
    from auhead_bench.records import ClipValue
    from auhead_bench.scoring import summarise_reasons

    def value(reason: str) -> ClipValue:
        return ClipValue(clip_id="c", seed=0, value=None, reason=reason)

    values = [
        value("no face found in any of the 50 frames -- fix: check the video"),
        value("no face found in any of the 20 frames"),
        value("generation failed: crash on clip3"),
    ]
    assert summarise_reasons(values, 4) == (
        "generation failed: crash on clip3 (1/4); no face found in any of the N frames (2/4)"
    )
