"""The stage-1 parser on a corpus of malformed model answers: recover what is there, say what
is not, never raise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.parsing import ParseReport, parse_output
from auhead_bench_methods.auhead.tokens import TARGET_PREFIX, target_text

P = TARGET_PREFIX


def frame(**values: float) -> np.ndarray:
    """A 24-d vector from AU index keywords: frame(a3=0.32) -> AU3 = 0.32."""
    row = np.zeros(N_AUS)
    for key, value in values.items():
        row[int(key[1:])] = value
    return row


MISSING = np.full(N_AUS, np.nan)

# (name, text, expected frames, rows, report fields that must hold, message fragment)
CORPUS = [
    ("clean", f"{P} [[[0, 0.09], [1, 0.06]], []]", 2,
     [frame(a0=0.09, a1=0.06), frame()], {"truncated": False, "pairs_kept": 2}, None),
    ("cut inside a value", f"{P} [[[0, 0.5]], [[1, 0.2], [2, 0.", 2,
     [frame(a0=0.5), MISSING], {"truncated": True, "missing_frames": 1}, "cut off"),
    ("cut after a pair", f"{P} [[[0, 0.5]], [[1, 0.2],", 2,
     [frame(a0=0.5), MISSING], {"truncated": True}, "ends inside a frame"),
    ("prose around", f"Sure! {P} [[[0, 0.5]]] Hope this helps (really).", 1,
     [frame(a0=0.5)], {"prefix_found": True}, "after the sequence"),
    ("tuples without leading zero", f"{P} [[(3,.32),(7,.81)],[]]", 2,
     [frame(a3=0.32, a7=0.81), frame()], {"pairs_kept": 2}, None),
    ("authors' compact lines", "[(3,.32)]\n[(7,.81)]\n", 2,
     [frame(a3=0.32), frame(a7=0.81)], {"prefix_found": False}, "prefix"),
    ("values out of range", f"{P} [[[0, 1.7], [1, -0.2], [2, 5e-1]]]", 1,
     [frame(a0=1.0, a1=0.0, a2=0.5)], {"clipped_values": 2}, "clipped"),
    ("wrong indices", f"{P} [[[24, 0.5], [-1, 0.3], [2.5, 0.1], [3, 0.4]]]", 1,
     [frame(a3=0.4)], {"bad_indices": 3, "pairs_kept": 1}, "outside 0..23"),
    ("duplicate AU", f"{P} [[[3, 0.4], [3, 0.9]]]", 1,
     [frame(a3=0.4)], {"duplicate_pairs": 1}, "duplicate"),
    ("too few frames", f"{P} [[[0, 0.1]], [[0, 0.2]]]", 4,
     [frame(a0=0.1), frame(a0=0.2), MISSING, MISSING], {"missing_frames": 2}, "2 of 4"),
    ("too many frames", f"{P} [[[0, 0.1]], [[0, 0.2]], [[0, 0.3]]]", 1,
     [frame(a0=0.1)], {"extra_frames": 2}, "beyond"),
    ("bad pair arity", f"{P} [[[3], [4, 0.2, 0.1], [5, 0.3]]]", 1,
     [frame(a5=0.3)], {"pairs_dropped": 2}, "dropped"),
    ("words inside pairs", f"{P} [[[3, high], [5, 0.3]], [[nothing]]]", 2,
     [frame(a5=0.3), MISSING], {"pairs_dropped": 2}, "all unusable"),
    ("dense 24 values", f"{P} [[{', '.join(['0.5'] * 24)}]]", 1,
     [np.full(N_AUS, 0.5)], {}, "dense"),
    ("flat pairs", f"{P} [[3, .32, 7, .81]]", 1,
     [frame(a3=0.32, a7=0.81)], {}, "bare numbers"),
    ("neither pairs nor dense", f"{P} [[0.3, 0.2, 0.1]]", 1,
     [MISSING], {"missing_frames": 1}, "neither"),
    ("extra outer brackets", f"{P} [[[[0, 0.5]], [[1, 0.25]]]]", 2,
     [frame(a0=0.5), frame(a1=0.25)], {}, "extra brackets"),
    ("quoted numbers", f'{P} [[["3", "0.32"]]]', 1, [frame(a3=0.32)], {}, None),
    ("nested value", f"{P} [[[0, 0.5]], [[1, [0.2]]]]", 2,
     [frame(a0=0.5), MISSING], {"pairs_dropped": 1}, "all unusable"),
    ("stray closers before", f"]] ) {P} [[[0, 0.5]]]", 1, [frame(a0=0.5)], {}, None),
    ("lower-case prefix", f"{P.lower()} [[[0, 0.5]]]", 1,
     [frame(a0=0.5)], {"prefix_found": True}, None),
    ("other wording", "Here is the AU sequence: [[[0, 0.5]]]", 1,
     [frame(a0=0.5)], {"prefix_found": False}, "prefix"),
    ("random bytes", "\ufffdU7\ufffd\x9f\ufffd\x1e\ufffd7", 3,
     [MISSING] * 3, {"frames_found": 0, "missing_frames": 3}, "no AU sequence"),
    ("empty", "", 2, [MISSING] * 2, {"missing_frames": 2}, "no AU sequence"),
    ("only an opener", f"{P} [", 1, [MISSING], {"truncated": True}, "missing"),
    ("only bad indices", f"{P} [[[24, 0.5]], [[30, 0.1], [2, 0.2]]]", 2,
     [MISSING, frame(a2=0.2)], {"bad_indices": 2}, "all unusable"),
    ("one frame of pairs", f"{P} [[3, 0.5], [4, 0.25]]", 1,
     [frame(a3=0.5, a4=0.25)], {}, None),
    ("numbers with junk glued", f"{P} [[[3a, 0.5], [4, 0.5x]]]", 1,
     [MISSING], {"pairs_dropped": 2}, "all unusable"),
]


@pytest.mark.parametrize("name,text,expected,rows,fields,message", CORPUS,
                         ids=[c[0] for c in CORPUS])
def test_malformed_answers(name, text, expected, rows, fields, message):
    parsed = parse_output(text, expected_frames=expected)
    assert parsed.aus_5fps.shape == (expected, N_AUS)
    np.testing.assert_array_equal(parsed.aus_5fps, np.array(rows))
    for key, value in fields.items():
        assert getattr(parsed.report, key) == value, (key, parsed.report)
    if message is None:
        assert parsed.report.clean or parsed.report.messages == [
            "the answer did not start with the expected prefix"
        ], parsed.report.messages
    else:
        assert any(message in m for m in parsed.report.messages), parsed.report.messages
    json.dumps(parsed.report.to_dict())  # reports land in records


@pytest.mark.parametrize(
    "head,emotion,message",
    [
        ("Emotion: happy.", "happy", None),
        ("Emotion: Surprise!", "surprised", None),
        ("The emotion of this audio is anger.", "angry", None),
        ("emotion = 'disgust'", "disgusted", None),
        ("Emotion: bored.", None, "unknown emotion 'bored'"),
        ("Sad.", "sad", "without the 'Emotion:' prefix"),
        ("", None, "no emotion stated"),
    ],
)
def test_stated_emotion(head, emotion, message):
    parsed = parse_output(f"{head} {P} [[[0, 0.5]]]", expected_frames=1, expect_emotion=True)
    assert parsed.emotion == emotion
    assert parsed.report.emotion_found == (emotion is not None)
    if message:
        assert any(message in m for m in parsed.report.messages), parsed.report.messages
    np.testing.assert_array_equal(parsed.aus_5fps[0], frame(a0=0.5))


def test_emotion_is_only_read_when_asked():
    parsed = parse_output(f"Emotion: happy. {P} [[]]", expected_frames=1)
    assert parsed.emotion is None and parsed.report.clean


@pytest.mark.parametrize("seed", range(3))
def test_every_cut_of_a_clean_answer_keeps_the_frames_before_the_cut(seed):
    rng = np.random.default_rng(seed)
    aus = rng.uniform(0, 1, (6, N_AUS)) * (rng.random((6, N_AUS)) < 0.3)
    text = "Emotion: sad. " + target_text(aus)
    exact = np.clip(np.round(aus, 2), 0, 1)
    for cut in range(0, len(text) + 1, 3):
        parsed = parse_output(text[:cut], expected_frames=6, expect_emotion=True)
        assert parsed.aus_5fps.shape == (6, N_AUS)
        kept = np.isfinite(parsed.aus_5fps).all(axis=1)
        # the readable frames form a prefix and each is exactly the original frame
        assert list(kept) == sorted(kept, reverse=True)
        np.testing.assert_array_equal(parsed.aus_5fps[kept], exact[kept])
        assert parsed.report.missing_frames == 6 - kept.sum()
    assert parse_output(text, 6, True).report.clean


def test_reports_of_chunks_merge():
    a = parse_output(f"{P} [[[0, 0.5]], [[1, 0.2]]]", expected_frames=2).report
    b = parse_output(f"{P} [[[0, 1.5]]]", expected_frames=3).report
    merged = ParseReport.merge([a, b])
    assert merged.expected_frames == 5 and merged.frames_used == 3
    assert merged.missing_frames == 2 and merged.clipped_values == 1
    assert merged.prefix_found and not merged.clean
    assert any(m.startswith("chunk 1: ") for m in merged.messages)
    assert ParseReport.merge([a]).clean
