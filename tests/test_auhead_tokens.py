"""AUHead stage-1 tokenization: exact spellings, the exact inverse, time, and label files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from auhead_bench.errors import BenchError
from auhead_bench_methods.auhead import tokens
from auhead_bench_methods.auhead.au_space import AU_NAMES, N_AUS
from auhead_bench_methods.auhead.parsing import parse_output


def random_aus(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Sparse AU matrices with the awkward values: exact 0 and 1, near-zero, out of range."""
    aus = rng.uniform(0.0, 1.0, (frames, N_AUS))
    aus[rng.random(aus.shape) < rng.uniform(0.2, 0.9)] = 0.0
    specials = np.array([0.0, 1.0, 0.004, 0.005, 0.0051, 0.995, 1.3, -0.2, 0.1, 0.125])
    mask = rng.random(aus.shape) < 0.1
    aus[mask] = rng.choice(specials, mask.sum())
    return aus


def test_target_text_is_the_authors_training_spelling():
    aus = np.zeros((3, N_AUS))
    aus[0, 0], aus[0, 1] = 0.09, 0.0612
    aus[1, 23], aus[1, 5] = 1.0, 0.1
    aus[2, 4] = 0.004  # rounds to 0: dropped
    aus[2, 6] = 0.005  # Python rounds this double up to 0.01 (numpy's round gives 0)
    assert tokens.target_text(aus) == (
        "The AU sequence for each frame of audio is: "
        "[[[0, 0.09], [1, 0.06]], [[5, 0.1], [23, 1.0]], [[6, 0.01]]]"
    )
    assert tokens.encode_compact(aus) == "[(0,.09),(1,.06)]\n[(5,.10),(23,1.00)]\n[(6,.01)]"


@pytest.mark.parametrize("seed", range(40))
def test_tokens_to_matrix_is_the_matrix_rounded_with_zeros_dropped(seed):
    rng = np.random.default_rng(seed)
    aus = random_aus(rng, int(rng.integers(1, 40)))
    # the authors' rule (make_simple_json.py): Python's round(value, 2); clipped to [0, 1]
    expected = np.clip([[round(v, 2) for v in row] for row in aus.tolist()], 0.0, 1.0)
    for text in (tokens.target_text(aus), tokens.encode_compact(aus)):
        parsed = parse_output(text, expected_frames=len(aus))
        np.testing.assert_array_equal(parsed.aus_5fps, expected)
    clean = parse_output(tokens.target_text(aus), expected_frames=len(aus))
    assert clean.report.clean, clean.report.messages
    # every written value is active: nothing that rounds to 0 reaches the text
    frames = json.loads(tokens.encode_sequence(aus))
    assert all(0 < value <= 1 for frame in frames for _, value in frame)


def test_quantize_refuses_unmeasured_frames():
    aus = np.zeros((2, N_AUS))
    aus[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tokens.quantize(aus)
    with pytest.raises(ValueError, match="shape"):
        tokens.quantize(np.zeros((2, 23)))


def test_subsampling_keeps_every_fifth_frame_from_zero():
    aus = np.arange(7 * N_AUS, dtype=float).reshape(7, N_AUS)
    kept = tokens.subsample(aus)
    np.testing.assert_array_equal(kept, aus[[0, 5]])
    assert tokens.token_frames_for(7) == 2 == len(kept)
    assert tokens.token_frames_for(10) == 2 and tokens.token_frames_for(11) == 3
    assert tokens.video_frames_for_audio(16000) == 25
    assert tokens.video_frames_for_audio(16000 * 2 + 300) == 50


def test_upsampling_interpolates_linearly_and_holds_the_end():
    aus = np.zeros((3, N_AUS))
    aus[:, 0] = [0.0, 0.5, 1.0]
    out = tokens.upsample(aus, 13)
    assert out.dtype == np.float32 and out.shape == (13, N_AUS)
    np.testing.assert_allclose(out[[0, 5, 10], 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(out[2, 0], 0.2, rtol=1e-6)  # 2/5 of the way to 0.5
    np.testing.assert_allclose(out[11:, 0], 1.0)  # after the last token frame: held
    rng = np.random.default_rng(0)
    track = rng.uniform(0, 1, (23, N_AUS))
    again = tokens.upsample(tokens.subsample(track), 23)
    np.testing.assert_allclose(again[::5], track[::5], rtol=1e-6)


def test_missing_token_frames_are_bridged_and_nothing_gives_zeros():
    aus = np.full((3, N_AUS), np.nan)
    aus[0, 1], aus[2, 1] = 0.2, 0.6
    aus[[0, 2]] = np.nan_to_num(aus[[0, 2]])
    out = tokens.upsample(aus, 11)
    np.testing.assert_allclose(out[5, 1], 0.4, rtol=1e-6)
    assert not tokens.upsample(np.full((3, N_AUS), np.nan), 11).any()


def test_chunks_cover_every_token_frame_once():
    assert tokens.chunk_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]
    audio = np.arange(7 * 3200 - 100, dtype=np.float32)
    pieces = [tokens.audio_for_token_frames(audio, a, b) for a, b in tokens.chunk_bounds(7, 3)]
    np.testing.assert_array_equal(np.concatenate(pieces), audio)


def test_label_files_csv_npy_and_the_authors_lines(tmp_path):
    rng = np.random.default_rng(1)
    aus = rng.uniform(0, 1, (6, N_AUS)).astype(np.float32)
    aus[2] = np.nan  # a frame without a face
    npy = tokens.save_au_labels(tmp_path / "a.npy", aus)
    csv = tokens.save_au_labels(tmp_path / "a.csv", aus)
    np.testing.assert_array_equal(tokens.load_au_labels(npy), aus)
    np.testing.assert_allclose(tokens.load_au_labels(csv), aus, rtol=1e-5)
    # columns are matched by name, in any order, extra columns ignored
    shuffled = tmp_path / "b.csv"
    order = list(reversed(AU_NAMES))
    rows = ["note," + ",".join(order)] + [
        "x," + ",".join(str(aus[0, AU_NAMES.index(n)]) for n in order)
    ]
    shuffled.write_text("\n".join(rows) + "\n")
    np.testing.assert_allclose(tokens.load_au_labels(shuffled), aus[:1], rtol=1e-6)
    lines = tmp_path / "M003_ang_3_001.json"
    lines.write_text("\n".join(json.dumps([0.5] * N_AUS) for _ in range(4)) + "\n")
    assert tokens.load_au_labels(lines).shape == (4, N_AUS)


def test_bad_label_files_say_what_is_wrong(tmp_path):
    facs = tmp_path / "facs.csv"
    facs.write_text("frame,AU01,AU12\n0,0.1,0.9\n")
    with pytest.raises(BenchError, match="FACS") as info:
        tokens.load_au_labels(facs)
    assert str(facs) in str(info.value)
    scale = tmp_path / "scale.npy"
    np.save(scale, np.full((3, N_AUS), 4.0))
    with pytest.raises(BenchError, match="expected 0..1"):
        tokens.load_au_labels(scale)
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((3, 17)))
    with pytest.raises(BenchError, match="shape"):
        tokens.load_au_labels(narrow)
    sheet = tmp_path / "x.xlsx"
    sheet.write_text("")
    with pytest.raises(BenchError, match="unknown format"):
        tokens.load_au_labels(sheet)
    with pytest.raises(BenchError, match="not found"):
        tokens.load_au_labels(tmp_path / "none.npy")
