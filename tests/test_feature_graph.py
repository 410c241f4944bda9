"""The feature graph: extractors that read other extractors' outputs, run upstream first, in
one decode pass, cached under keys that nest their upstream specs.

Toy extractors (numpy only) on a registry of their own, a real ``Cache`` in tmp_path and the
real ``FeatureStore``; decode passes are counted by wrapping ``media.iter_frames``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pluggy
import pytest

from auhead_bench import (
    BenchError,
    Clip,
    Dataset,
    Extractor,
    Generation,
    Method,
    Options,
    PerClipMetric,
    media,
)
from auhead_bench.cache import Cache, content_key
from auhead_bench.config import RunConfig
from auhead_bench.errors import ConfigError, MediaError
from auhead_bench.features import FeatureStore, extractor_order
from auhead_bench.frames import DecodeError
from auhead_bench.plan import make_plan
from auhead_bench.plugins import PluginInfo, Registry

PLUGIN = PluginInfo("tests", "tests", "tests", "0")
CALLS: list[str] = []  # extractor ids, in the order their extract ran


class FrameMeans(Extractor):
    """Upstream: the mean of each frame, times ``scale`` (a parameter of its output)."""

    id = "toy_means"
    description = "per-frame means"
    scale: ClassVar[float] = 1.0

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def extract(self, video):
        CALLS.append(self.id)
        means = [c.frames.mean(axis=(1, 2, 3)) for c in video.chunks()]
        return {"means": np.concatenate(means) * self.scale}


class Centred(Extractor):
    """Downstream: reads the frames and the upstream's means."""

    id = "toy_centred"
    description = "frame means minus their average"
    needs = ("frames", "toy_means")
    seen: ClassVar[list[dict[str, np.ndarray]]] = []

    def extract(self, video):
        CALLS.append(self.id)
        upstream = video["toy_means"]
        Centred.seen.append(dict(upstream))
        with pytest.raises(KeyError, match="list it in `needs`"):
            video["toy_faceless"]  # only what `needs` names is there
        assert video.frame_count() == len(upstream["means"])
        return {"centred": upstream["means"] - upstream["means"].mean()}


class Faceless(Extractor):
    """Finds no face in any video: an outcome of the video, cached."""

    id = "toy_faceless"
    description = "never finds a face"

    def extract(self, video):
        CALLS.append(self.id)
        raise MediaError(f"no face in 0 of {video.frame_count()} frames")


class AfterFaceless(Extractor):
    id = "toy_after_faceless"
    description = "reads the faceless track"
    needs = ("frames", "toy_faceless")

    def extract(self, video):
        CALLS.append(self.id)
        raise AssertionError("run although its upstream found no face")


class CrashOnce(Extractor):
    """Crashes on its first call in the test (a bug, an out-of-memory), then works."""

    id = "toy_crash_once"
    description = "crashes the first time"
    crashes: ClassVar[list[bool]] = []

    def extract(self, video):
        CALLS.append(self.id)
        if CrashOnce.crashes and CrashOnce.crashes.pop(0):
            raise RuntimeError("CUDA out of memory (simulated)")
        return {"count": np.array(video.frame_count())}


class AfterCrash(Extractor):
    id = "toy_after_crash"
    description = "reads the crashing one"
    needs = ("toy_crash_once",)

    def extract(self, video):
        CALLS.append(self.id)
        return {"double": video["toy_crash_once"]["count"] * 2}


class NeedsMissing(Extractor):
    id = "toy_needs_missing"
    description = "reads an extractor nobody registered"
    needs = ("frames", "toy_meams")  # a typo of toy_means

    def extract(self, video):
        raise AssertionError("never run")


class CycleA(Extractor):
    id = "toy_cycle_a"
    description = "a needs b"
    needs = ("toy_cycle_b",)

    def extract(self, video):
        raise AssertionError("never run")


class CycleB(Extractor):
    id = "toy_cycle_b"
    description = "b needs a"
    needs = ("audio", "toy_cycle_a")

    def extract(self, video):
        raise AssertionError("never run")


TOYS = [FrameMeans, Centred, Faceless, AfterFaceless, CrashOnce, AfterCrash, NeedsMissing,
        CycleA, CycleB]  # fmt: skip


@pytest.fixture
def registry() -> Registry:
    reg = Registry(pluggy.PluginManager("auhead_bench"), [])
    for cls in TOYS:
        reg.add("extractor", cls, PLUGIN)
    return reg


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(Centred, "seen", [])
    monkeypatch.setattr(CrashOnce, "crashes", [])


@pytest.fixture
def clip_file(video_factory) -> tuple[Path, str]:
    path = video_factory(frames=40)
    return path, media.sha256_file(path)


def store(registry: Registry, cache_dir: Path, **kwargs) -> FeatureStore:
    """A run's feature store (a new one: nothing decoded or loaded yet) over the cache."""
    return FeatureStore(registry, Cache(cache_dir), "cpu", chunk_frames=8, **kwargs)


def entry_of(features: FeatureStore, sha: str, ident: str) -> str:
    return content_key(kind="features", video=sha, extractor=features.spec(ident))


# ---- order, and what the downstream sees ---------------------------------------------------


def test_upstream_runs_first_and_the_downstream_reads_it(registry, cache_dir, clip_file, decodes):
    path, sha = clip_file
    features = store(registry, cache_dir)
    view, errors = features.view(path, sha, ["toy_centred"])
    assert errors == {}
    assert CALLS == ["toy_means", "toy_centred"]
    assert decodes == [path]  # one decode pass for both
    means = media.decode_video(path).frames.mean(axis=(1, 2, 3))
    (seen,) = Centred.seen
    np.testing.assert_allclose(seen["means"], means)
    np.testing.assert_allclose(view["toy_centred"]["centred"], means - means.mean())
    with pytest.raises(KeyError, match="toy_means"):
        view["toy_means"]  # the reader gets what it asked for, not the upstream too
    both, _ = features.view(path, sha, ["toy_centred", "toy_means"])
    np.testing.assert_allclose(both["toy_means"]["means"], means)
    assert CALLS == ["toy_means", "toy_centred"]  # both cached by now


def test_extractor_order_is_upstream_first_and_skips_builtins(registry):
    assert extractor_order(registry, ["toy_centred"]) == ["toy_means", "toy_centred"]
    assert extractor_order(registry, ["toy_centred", "toy_means", "frames"]) == [
        "toy_means", "toy_centred"
    ]  # fmt: skip
    assert extractor_order(registry, ["audio", "frames"]) == []
    assert extractor_order(registry, ["toy_after_crash", "toy_centred"]) == [
        "toy_crash_once", "toy_after_crash", "toy_means", "toy_centred"
    ]  # fmt: skip


# ---- cache keys nest the upstream's spec -----------------------------------------------------


def test_the_downstream_spec_nests_the_upstream_spec(registry, cache_dir):
    features = store(registry, cache_dir)
    spec = features.spec("toy_centred")
    assert spec["needs"] == {"toy_means": features.spec("toy_means")}
    assert spec["needs"]["toy_means"]["params"] == {"scale": 1.0}
    assert "needs" not in features.spec("toy_means")  # frames/audio are not extractors


def test_changing_the_upstream_params_changes_the_downstream_key(
    registry, cache_dir, clip_file, monkeypatch
):
    path, sha = clip_file
    first = store(registry, cache_dir)
    before, _ = first.view(path, sha, ["toy_centred"])
    key = entry_of(first, sha, "toy_centred")
    assert CALLS == ["toy_means", "toy_centred"]

    monkeypatch.setattr(FrameMeans, "scale", 2.0)
    second = store(registry, cache_dir)
    assert second.spec("toy_centred")["params"] == first.spec("toy_centred")["params"]
    assert entry_of(second, sha, "toy_centred") != key
    after, _ = second.view(path, sha, ["toy_centred"])
    assert CALLS == ["toy_means", "toy_centred"] * 2  # both run again under the new keys
    np.testing.assert_allclose(
        after["toy_centred"]["centred"], 2 * before["toy_centred"]["centred"]
    )
    assert Cache(cache_dir).get("features", key) is not None  # the old entry is untouched


# ---- failures upstream -----------------------------------------------------------------------


def test_an_upstream_no_face_is_the_downstream_error(registry, cache_dir, clip_file, decodes):
    path, sha = clip_file
    view, errors = store(registry, cache_dir).view(path, sha, ["toy_after_faceless"])
    assert CALLS == ["toy_faceless"]  # the downstream's extract never ran
    assert set(errors) == {"toy_after_faceless"}  # only what was asked for
    error = errors["toy_after_faceless"]
    assert error.message == "no face in 0 of 40 frames" and not error.transient
    with pytest.raises(KeyError):
        view["toy_after_faceless"]

    # The "no face" is an outcome of the video: cached, not retried, same reason next run.
    decodes.clear()
    _, again = store(registry, cache_dir).view(path, sha, ["toy_after_faceless", "toy_faceless"])
    assert CALLS == ["toy_faceless"] and decodes == []
    assert again["toy_after_faceless"].message == again["toy_faceless"].message == error.message
    assert not again["toy_faceless"].transient


def test_a_crash_is_transient_and_not_cached(registry, cache_dir, clip_file):
    path, sha = clip_file
    CrashOnce.crashes[:] = [True]
    _, errors = store(registry, cache_dir).view(path, sha, ["toy_crash_once", "toy_after_crash"])
    assert CALLS == ["toy_crash_once"]
    crash = errors["toy_crash_once"]
    assert crash.transient
    assert crash.message == (
        "toy_crash_once failed: RuntimeError: CUDA out of memory (simulated)"
    )
    assert errors["toy_after_crash"].transient  # the upstream's crash, not cached either
    features = store(registry, cache_dir)
    for ident in ("toy_crash_once", "toy_after_crash"):
        assert features.cache.get("features", entry_of(features, sha, ident)) is None

    view, errors = features.view(path, sha, ["toy_after_crash"])  # the next run tries again
    assert errors == {}
    assert CALLS == ["toy_crash_once", "toy_crash_once", "toy_after_crash"]
    assert int(view["toy_after_crash"]["double"]) == 80


def test_a_crash_downstream_keeps_the_upstream_cached(registry, cache_dir, clip_file, monkeypatch):
    path, sha = clip_file

    def crash(self, video):
        CALLS.append(self.id)
        raise ValueError("bug in a plugin")

    with monkeypatch.context() as patch:
        patch.setattr(Centred, "extract", crash)
        _, errors = store(registry, cache_dir).view(path, sha, ["toy_centred"])
    assert errors["toy_centred"].transient and "ValueError: bug in a plugin" in (
        errors["toy_centred"].message
    )
    assert CALLS == ["toy_means", "toy_centred"]
    CALLS.clear()
    _, errors = store(registry, cache_dir).view(path, sha, ["toy_centred"])
    assert errors == {} and CALLS == ["toy_centred"]  # the upstream came from the cache


def test_an_unreadable_video_is_a_decode_error_and_nothing_is_cached(registry, cache_dir, tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 64)
    features = store(registry, cache_dir)
    with pytest.raises(DecodeError, match="broken.mp4"):
        features.view(path, "broken", ["toy_centred"])
    assert features.cache.get("features", entry_of(features, "broken", "toy_means")) is None


# ---- the graph is checked before anything runs -------------------------------------------------


def test_an_unknown_upstream_id_is_one_line_naming_it(registry):
    with pytest.raises(BenchError, match=r"unknown extractor 'toy_meams'.*'toy_means'") as info:
        extractor_order(registry, ["toy_needs_missing"])
    assert "\n" not in str(info.value)


def test_a_cycle_is_one_line_naming_it(registry):
    with pytest.raises(BenchError) as info:
        extractor_order(registry, ["toy_cycle_a"])
    assert "\n" not in str(info.value)
    assert "cycle: toy_cycle_a -> toy_cycle_b -> toy_cycle_a" in info.value.message
    with pytest.raises(BenchError, match="cycle: toy_cycle_b -> toy_cycle_a -> toy_cycle_b"):
        extractor_order(registry, ["toy_cycle_b"])


class ToyDataset(Dataset):
    id = "toy_dataset"
    description = "no clips"

    def clips(self) -> list[Clip]:
        return []


class ToyMethod(Method):
    id = "toy_method"
    description = "does nothing"

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        return Generation()


def toy_metric(ident: str, **attrs: Any) -> type[PerClipMetric]:
    def score(self, view):
        return 0.0

    return type(ident, (PerClipMetric,), {
        "id": ident, "description": "toy", "higher_is_better": True, "score": score, **attrs
    })  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (toy_metric("needs_cycle", needs=("frames", "toy_cycle_a")),
         "metric 'needs_cycle': extractors depend on each other in a cycle: "
         "toy_cycle_a -> toy_cycle_b -> toy_cycle_a"),
        (toy_metric("needs_missing", needs=("toy_needs_missing",)),
         "metric 'needs_missing': extractor 'toy_needs_missing' needs unknown extractor "
         "'toy_meams'"),
        (toy_metric("reference_missing", reference_needs=("toy_nope",)),
         "metric 'reference_missing': unknown extractor 'toy_nope'"),
    ],
)  # fmt: skip
def test_make_plan_refuses_a_metric_whose_graph_is_broken(registry, metric, message):
    for kind, cls in (("dataset", ToyDataset), ("method", ToyMethod), ("metric", metric)):
        registry.add(kind, cls, PLUGIN)
    config = RunConfig.model_validate(
        {"datasets": ["toy_dataset"], "methods": ["toy_method"], "metrics": [metric.id]}
    )
    with pytest.raises(ConfigError) as info:
        make_plan(config, registry, Path("run.yaml"))
    assert message in info.value.message
    assert "\n" not in str(info.value)
    fine = toy_metric("fine", needs=("frames", "toy_centred"))
    registry.add("metric", fine, PLUGIN)
    config = RunConfig.model_validate(
        {"datasets": ["toy_dataset"], "methods": ["toy_method"], "metrics": ["fine"]}
    )
    assert [m.id for m in make_plan(config, registry).metrics] == ["fine"]


# ---- a second view reads the cache only ----------------------------------------------------------


def test_a_second_view_reads_everything_from_the_cache_without_decoding(
    registry, cache_dir, clip_file, decodes
):
    path, sha = clip_file
    needs = ["toy_centred", "toy_means", "toy_crash_once"]
    first, _ = store(registry, cache_dir).view(path, sha, needs)
    assert decodes == [path]
    decodes.clear()
    CALLS.clear()
    second, errors = store(registry, cache_dir).view(path, sha, needs)
    assert errors == {} and CALLS == [] and decodes == []
    for ident in needs:
        for name, value in first[ident].items():
            np.testing.assert_array_equal(second[ident][name], value)
    assert second.frame_count() == 40  # frames are decoded only when the reader reads them
    assert decodes == [path]


def test_a_cached_downstream_neither_loads_nor_runs_its_upstream(
    registry, cache_dir, clip_file, decodes
):
    path, sha = clip_file
    features = store(registry, cache_dir)
    expected, _ = features.view(path, sha, ["toy_centred"])
    upstream = entry_of(features, sha, "toy_means")
    assert features.cache.remove("features", upstream)  # the upstream's entry is gone
    decodes.clear()
    CALLS.clear()
    view, errors = store(registry, cache_dir).view(path, sha, ["toy_centred"])
    assert errors == {} and CALLS == [] and decodes == []  # neither run nor decoded
    assert features.cache.get("features", upstream) is None  # nor loaded (it is not there)
    np.testing.assert_array_equal(
        view["toy_centred"]["centred"], expected["toy_centred"]["centred"]
    )


def test_the_same_content_under_two_paths_is_decoded_once(
    registry, cache_dir, clip_file, decodes, tmp_path
):
    """A generated video identical to its ground truth (the ``ground_truth`` method) shares
    the decode pass until the store releases it."""
    path, sha = clip_file
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(path.read_bytes())
    features = store(registry, cache_dir)
    a, _ = features.view(path, sha, [])
    b, _ = features.view(copy, sha, [])
    np.testing.assert_array_equal(a.all_frames(), b.all_frames())
    assert decodes == [path]
    features.release()
    c, _ = features.view(copy, sha, [])
    assert c.frame_count() == 40 and decodes == [path, copy]
