"""The authors' verbatim stage-1 prompt, `train stage1` refusing a dataset's evaluation split,
and stage-1 training labels taken at their video's own rate (MEAD: 30 fps)."""

from __future__ import annotations

import fake_trees as ft
import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from auhead_bench.aus import N_AUS, save_au_labels
from auhead_bench.errors import BenchError, ConfigError
from auhead_bench_datasets.mead import Mead
from auhead_bench_methods.auhead import stage1, train_stage1
from auhead_bench_methods.auhead.prompts import build_prompt
from auhead_bench_methods.auhead.stage1 import AUPredictor, Stage1Options
from auhead_bench_methods.auhead.train_stage1 import AUSequenceDataset, command, plan_items

# laura990501/Qwen-AU-finetune @43b086f, make_train_data_jsonl.py: USER_CONTENT.format(
# emotion="surprise") for a MEAD "sur" clip, as every training example of theirs reads.
TRAINING_TEXT_SURPRISE = (
    "For each 16kHz audio, split the waveform into frames of 3200 samples (5 fps). Each "
    "frame produces a 24-dimensional AU vector, with components AU0 to AU23 representing "
    "facial muscle activations in this fixed order: AU0 left eye closure; AU1 right eye "
    "closure; AU2 left lid raise; AU3 right lid raise; AU4 left brow lower; AU5 right "
    "brow lower; AU6 left brow raise; AU7 right brow raise; AU8 jaw-driven mouth "
    "opening; AU9 lower lip slide (left); AU10 lower lip slide (right); AU11 left lip "
    "corner raise; AU12 right lip corner raise; AU13 left lip corner stretch; AU14 right "
    "lip corner stretch; AU15 upper lip suck; AU16 lower lip suck; AU17 jaw thrust; AU18 "
    "upper lip raise; AU19 lower lip depress; AU20 chin raise; AU21 lip pucker; AU22 "
    "cheek puff; and AU23 nose wrinkle. Each AU value is between 0 and 1 and must be "
    "formatted to two decimal places (that is, write only the decimal point and two "
    "digits—for example, “.12” for 0.12). For each audio segment, record only the AUs "
    "that are activated along with their values; for example, [(0, .12), (1, .10)] means "
    "only AU0 is 0.12 and AU1 is 0.10 while the others remain untriggered.The emotion of "
    "the current audio is surprise. what is the AU sequence of the current audio?"
)
# inference.py: the literal prompt of their single-clip inference (an angry clip).
INFERENCE_PY_TEXT = (
    "For each 16kHz audio, split the waveform into frames of 3200 samples (5 fps). Each "
    "frame produces a 24-dimensional AU vector, with components AU0 to AU23 representing "
    "facial muscle activations in this fixed order: AU0 left eye closure; AU1 right eye "
    "closure; AU2 left lid raise; AU3 right lid raise; AU4 left brow lower; AU5 right "
    "brow lower; AU6 left brow raise; AU7 right brow raise; AU8 jaw-driven mouth "
    "opening; AU9 lower lip slide (left); AU10 lower lip slide (right); AU11 left lip "
    "corner raise; AU12 right lip corner raise; AU13 left lip corner stretch; AU14 right "
    "lip corner stretch; AU15 upper lip suck; AU16 lower lip suck; AU17 jaw thrust; AU18 "
    "upper lip raise; AU19 lower lip depress; AU20 chin raise; AU21 lip pucker; AU22 "
    "cheek puff; and AU23 nose wrinkle. Each AU value is between 0 and 1 and must be "
    "formatted to two decimal places (that is, write only the decimal point and two "
    "digits—for example, .12 for 0.12). For each audio segment, record only the AUs that "
    "are activated along with their values; for example, [(0, .12), (1, .10)] means only "
    "AU0 is 0.12 and AU1 is 0.10 while the others remain untriggered. The emotion of the "
    "current audio is angry. what is the AU sequence of the current audio?"
)


def test_the_authors_prompt_is_their_training_text():
    assert build_prompt("A+E->AU", "surprised", "authors") == TRAINING_TEXT_SURPRISE
    assert build_prompt("ae_au", "Surprise", "authors") == TRAINING_TEXT_SURPRISE


def test_the_authors_inference_prompt_is_their_inference_text():
    assert build_prompt("A+E->AU", "angry", "authors_inference") == INFERENCE_PY_TEXT


def test_the_authors_prompt_needs_the_emotion():
    with pytest.raises(ValueError, match="only in prompt mode A\\+E->AU"):
        build_prompt("A->E->AU", "happy", "authors")
    with pytest.raises(ValueError, match="needs the clip's emotion"):
        build_prompt("A+E->AU", None, "authors")
    with pytest.raises(ValueError, match="unknown emotion"):
        build_prompt("A+E->AU", "bored", "authors")
    assert Stage1Options(prompt="authors").prompt_mode == "A+E->AU"  # implied
    with pytest.raises(ValidationError, match="only in prompt mode A\\+E->AU"):
        Stage1Options(prompt="authors", prompt_mode="A->AU")
    with pytest.raises(ValidationError):
        Stage1Options(prompt="author")


class Recording(stage1.Backend):
    name = "qwen2_audio"
    prompts: list[str] = []

    def load(self, model_dir, adapter_dir, device, dtype, trust_remote_code):
        Recording.prompts = []

    def generate(self, audio, prompt, decoding):
        Recording.prompts.append(prompt)
        return "The AU sequence for each frame of audio is: [[[8, 0.5]]]"


def test_stage1_sends_the_authors_text_to_the_model(tmp_path, monkeypatch):
    monkeypatch.setitem(stage1.BACKENDS, "qwen2_audio", Recording)
    (tmp_path / "model").mkdir()
    predictor = AUPredictor(Stage1Options(model=str(tmp_path / "model"), prompt="authors"))
    predictor.setup("cpu")
    result = predictor.predict(np.zeros(3200, np.float32), "surprised")
    assert Recording.prompts == [TRAINING_TEXT_SURPRISE]
    assert result.emotion == "surprised" and result.aus[0, 8] == pytest.approx(0.5)
    assert predictor.fingerprint()["options"]["prompt"] == "authors"


def test_training_examples_carry_the_authors_text(tmp_path, video_factory, monkeypatch):
    from auhead_bench import Clip

    video = video_factory("a.mp4", frames=10)
    labels = save_au_labels(tmp_path / "a.npy", np.full((10, N_AUS), 0.2))
    clips = [Clip(id="a", video=video, emotion="surprised", au_labels=labels)]
    items, _ = plan_items(clips, "A+E->AU", chunk_seconds=10.0)
    monkeypatch.setattr(train_stage1, "encode_example", lambda p, audio, prompt, answer: prompt)
    assert AUSequenceDataset(items, None, "A+E->AU", "authors")[0] == TRAINING_TEXT_SURPRISE
    assert "untriggered" not in AUSequenceDataset(items, None, "A+E->AU")[0]  # the suite's


# ---- train stage1 on a dataset's evaluation split ----------------------------------------


def train_args(tmp_path, root, *extra):
    return [
        "--dataset", "mead", "-o", f"root={root}", "-o", "crop_size=null",
        "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *extra,
    ]


def test_training_refuses_the_evaluation_split_unless_allowed(tmp_path):
    root = tmp_path / "MEAD"
    ft.mead_clip(root, "M003", "happy", 1, 1)  # M003: one of MEAD's test identities
    ft.mead_clip(root, "M005", "happy", 1, 1)
    result = CliRunner().invoke(command, train_args(tmp_path, root))  # default: the test split
    assert isinstance(result.exception, BenchError)
    message = str(result.exception)
    assert "evaluation split" in message and "M003, M030, W009, W015" in message
    assert "--allow-test-split" in message and "\n" not in message
    result = CliRunner().invoke(command, train_args(tmp_path, root, "-o", "identities=all"))
    assert "1 of the 2 clip(s) to train on are in its evaluation split" in str(result.exception)
    # A training selection, or the flag, gets past the check (to the missing labels here).
    for extra in (("-o", "identities=[M005]"), ("--allow-test-split",)):
        result = CliRunner().invoke(command, train_args(tmp_path, root, *extra))
        assert "can be trained on (no AU labels)" in str(result.exception), extra


def test_training_prompt_options_are_checked(tmp_path):
    result = CliRunner().invoke(
        command, train_args(tmp_path, tmp_path, "--prompt", "authors", "--prompt-mode", "a_au")
    )
    assert isinstance(result.exception, ConfigError)
    assert "only in prompt mode A+E->AU" in str(result.exception)


# ---- labels at MEAD's 30 fps -------------------------------------------------------------


def test_training_labels_are_resampled_from_the_source_video_rate(tmp_path):
    """A 2 s MEAD clip filmed at 30 fps with labels per source frame: 60 rows, 10 token
    frames 0.2 s apart (a 25-fps reading would put them 1/6 s apart and cut the last 0.4 s)."""
    root = tmp_path / "MEAD"
    video = root / "M005" / "video" / "front" / "happy" / "level_1" / "001.mp4"
    video.parent.mkdir(parents=True)
    ft.write_clip(video, count=60, fps=30, audio=True)
    labels = np.zeros((60, N_AUS))
    labels[:, 8] = 0.4 * np.arange(60) / 30  # 0.4 per second
    label_file = tmp_path / "aus" / "M005/happy/level_1/001.npy"
    label_file.parent.mkdir(parents=True)
    save_au_labels(label_file, labels)
    dataset = Mead(
        Mead.Options(root=root, identities=["M005"], crop_size=None,
                     au_labels_dir=tmp_path / "aus"),
        tmp_path / "cache",
    )
    clips = dataset.clips()
    assert clips[0].meta["source_fps"] == pytest.approx(30.0)
    items, skipped = plan_items(clips, "A+E->AU", chunk_seconds=10.0)
    assert not skipped and len(items) == 1 and items[0].label_rate == "30.000 fps (source video)"
    np.testing.assert_allclose(items[0].aus_5fps[:, 8], 0.4 * 0.2 * np.arange(10), atol=1e-6)
    # Labels already at 25 fps for this 30 fps video: the option says so, else it fails.
    save_au_labels(label_file, labels[:50])
    items, skipped = plan_items(clips, "A+E->AU", chunk_seconds=10.0)
    assert not items and "at 30.000 fps (source video) that is 42 frames" in skipped[clips[0].id]
    items, skipped = plan_items(clips, "A+E->AU", chunk_seconds=10.0, au_fps=25.0)
    assert len(items) == 1 and items[0].label_rate == "25.000 fps (given)"
    stated = Mead(
        Mead.Options(root=root, identities=["M005"], crop_size=None,
                     au_labels_dir=tmp_path / "aus", au_labels_fps=25),
        tmp_path / "cache",
    )
    items, _ = plan_items(stated.clips(), "A+E->AU", chunk_seconds=10.0)  # the dataset says 25
    assert len(items) == 1 and items[0].label_rate == "25.000 fps (given)"
    assert stated.fingerprint()["preprocess"]["au_labels_fps"] == 25
