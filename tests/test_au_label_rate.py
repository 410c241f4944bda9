"""AU labels at their video's own rate (MEAD: 30 fps) resampled to 25 fps before anything
subsamples or compares them; where the rate comes from, and what fails when it is unknown."""

from __future__ import annotations

import numpy as np
import pytest

from auhead_bench.aus import (
    N_AUS,
    clip_label_rates,
    label_file_rate,
    labels_at_video_rate,
    resample_track,
    save_au_labels,
)
from auhead_bench.errors import BenchError
from auhead_bench_methods.auhead.au_labels import conditioning_track
from auhead_bench_methods.auhead.tokens import subsample

SLOPE = 0.3  # per second: 3 s stay within [0, 1]


def ramp(frames: int, fps: float) -> np.ndarray:
    """AU 8 rising SLOPE per second, frame i at i / fps; every other AU at rest."""
    track = np.zeros((frames, N_AUS), np.float32)
    track[:, 8] = SLOPE * np.arange(frames) / fps
    return track


def test_a_30_fps_ramp_becomes_the_same_ramp_at_25_fps():
    out = resample_track(ramp(61, 30.0), 30.0)  # 2 s: 0..60 at 30 fps
    assert out.shape == (51, N_AUS)  # round(61 * 25 / 30)
    np.testing.assert_allclose(out[:, 8], SLOPE * np.arange(51) / 25, atol=1e-6)
    assert not out[:, :8].any()
    # frame 1 at 25 fps (t = 0.04 s) lies 1.2 frames into the 30 fps track
    np.testing.assert_allclose(out[1, 8], SLOPE * 0.04, atol=1e-7)


def test_25_fps_stays_untouched():
    track = ramp(40, 25.0)
    assert resample_track(track, 25.0) is track
    assert resample_track(track, 25.01) is track  # within the rounding of a header rate


def test_an_unmeasured_frame_stays_unmeasured_where_it_is_used():
    track = ramp(31, 30.0)
    track[7, 8] = np.nan  # t = 0.233 s
    out = resample_track(track, 30.0)
    assert np.isnan(out[6, 8])  # t = 0.24 s lies between 30 fps frames 7 and 8
    assert np.isfinite(out[5, 8])  # t = 0.2 s is exactly 30 fps frame 6: frame 7 unused
    assert np.isfinite(np.delete(out[:, 8], 6)).all()


def test_the_5_frame_stride_runs_on_resampled_labels(tmp_path):
    """Stage 1's token frames are every 5th 25 fps frame: 0.2 s apart, not 5/30 s."""
    path = save_au_labels(tmp_path / "m.csv", ramp(90, 30.0))  # 3 s, no timestamps
    labels, rate = labels_at_video_rate(path, frames=75, source_fps=30.0)
    assert (rate.fps, rate.source) == (30.0, "source video") and labels.shape == (75, N_AUS)
    np.testing.assert_allclose(subsample(labels)[:, 8], SLOPE * 0.2 * np.arange(15), atol=1e-6)


def test_a_csv_with_timestamps_states_its_own_rate(tmp_path):
    path = save_au_labels(tmp_path / "t.csv", ramp(30, 30.0), fps=30.0)
    assert label_file_rate(path) == pytest.approx(30.0)
    labels, rate = labels_at_video_rate(path, frames=25, source_fps=25.0)  # the file wins
    assert rate.source == "label file" and labels.shape == (25, N_AUS)
    with pytest.raises(BenchError, match="state 30.000 fps .* but 25 fps was given"):
        labels_at_video_rate(path, fps=25.0)
    assert label_file_rate(save_au_labels(tmp_path / "n.csv", ramp(3, 25.0))) is None


def test_uneven_timestamps_are_refused(tmp_path):
    path = save_au_labels(tmp_path / "t.csv", ramp(4, 30.0), fps=30.0)
    text = path.read_text().replace("0.066667", "0.500000")
    path.write_text(text)
    with pytest.raises(BenchError, match="not evenly spaced"):
        label_file_rate(path)


def test_an_unknown_rate_needs_labels_per_25_fps_frame(tmp_path):
    path = save_au_labels(tmp_path / "a.npy", ramp(90, 30.0))
    labels, rate = labels_at_video_rate(path, frames=89)  # the length says 25 fps
    assert rate.source == "clip length" and len(labels) == 90
    with pytest.raises(BenchError) as info:
        labels_at_video_rate(path, frames=75)  # 90 rows for 3 s at 25 fps: what rate?
    message = str(info.value)
    assert str(path) in message and "frame rate is unknown" in message
    assert "au_labels_fps" in message and "\n" not in message
    with pytest.raises(BenchError, match="frame rate is unknown"):
        labels_at_video_rate(path)  # no rate and no clip to compare with: never assumed


def test_a_rate_that_does_not_fit_the_clip_names_the_option(tmp_path):
    path = save_au_labels(tmp_path / "a.npy", ramp(75, 25.0))  # already at 25 fps
    with pytest.raises(BenchError, match=r"at 30.000 fps \(source video\) that is 62 frames"):
        labels_at_video_rate(path, frames=75, source_fps=30.0)
    labels, rate = labels_at_video_rate(path, frames=75, fps=25.0, source_fps=30.0)
    assert rate.source == "given" and len(labels) == 75


def test_a_generator_is_conditioned_on_the_resampled_track(tmp_path):
    path = save_au_labels(tmp_path / "a.npy", ramp(60, 30.0))
    track = conditioning_track(path, 50, source_fps=30.0)
    assert track.shape == (50, N_AUS) and track.dtype == np.float32
    np.testing.assert_allclose(track[:, 8], SLOPE * np.arange(50) / 25, atol=1e-6)


def test_the_prepared_clip_knows_its_source_rate_and_a_given_rate_keys_its_inputs(
    tmp_path, video_factory
):
    from auhead_bench import Clip
    from auhead_bench.cache import Cache
    from auhead_bench.prepare import prepare_clip

    video = video_factory("v.mp4", frames=12, fps=30)
    labels = save_au_labels(tmp_path / "a.npy", ramp(12, 30.0))
    cache = Cache(tmp_path / "cache")
    prepared = prepare_clip(Clip(id="v", video=video, au_labels=labels), cache)
    assert prepared.frames == 10 and prepared.clip.meta["source_fps"] == pytest.approx(30.0)
    track = conditioning_track(labels, prepared.frames, **clip_label_rates(prepared.clip.meta))
    np.testing.assert_allclose(track[:, 8], SLOPE * np.arange(10) / 25, atol=1e-6)
    # A dataset that cropped the video (25 fps) recorded the original's rate: it is kept.
    kept = prepare_clip(Clip(id="v", video=video, au_labels=labels, meta={"source_fps": 50}),
                        cache)
    assert kept.clip.meta["source_fps"] == 50
    given = prepare_clip(
        Clip(id="v", video=video, au_labels=labels, meta={"au_labels_fps": 25.0}), cache
    )
    assert given.inputs_sha256 != prepared.inputs_sha256 == kept.inputs_sha256
