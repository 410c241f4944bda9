"""AUHead stage 1 end to end on a tiny RANDOM Qwen2-Audio of the real classes, loaded through
the real loading code; and one LoRA training step through `auhead-bench train stage1`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from auhead_bench.errors import BenchError
from auhead_bench.weights import WeightsMissing, local_path
from auhead_bench_methods.auhead import stage1
from auhead_bench_methods.auhead.au_space import N_AUS
from auhead_bench_methods.auhead.prompts import (
    COT_REQUEST,
    EMOTIONS,
    PROMPT_MODES,
    build_answer,
    build_prompt,
)
from auhead_bench_methods.auhead.stage1 import (
    STAGE1_WEIGHTS,
    AUPredictor,
    Stage1Options,
    save_tiny_random_qwen2_audio,
)
from auhead_bench_methods.auhead.tokens import TARGET_PREFIX, save_au_labels
from auhead_bench_methods.auhead.train_stage1 import command, encode_example, plan_items


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_tiny_random_qwen2_audio(tmp_path_factory.mktemp("models") / "qwen2-audio-tiny")


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    """Weights cache and HF cache in tmp: nothing on this machine is found by accident."""
    import huggingface_hub.constants

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


def speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    )


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_every_prompt_mode_end_to_end_on_random_weights(tiny, mode):
    predictor = AUPredictor(Stage1Options(model=str(tiny), prompt_mode=mode, max_new_tokens=24))
    before = predictor.fingerprint()
    predictor.setup("cpu")
    result = predictor.predict(speech(1.2), "happy")
    assert result.aus.shape == (30, N_AUS) and result.aus.dtype == np.float32
    assert 0.0 <= result.aus.min() and result.aus.max() <= 1.0
    assert result.aus_5fps.shape == (6, N_AUS) and isinstance(result.raw_text, str)
    report = result.report
    assert report.expected_frames == 6
    assert report.frames_used + report.missing_frames == 6
    assert not report.clean  # random weights write noise, and the report says so
    if report.frames_used == 0:
        assert not result.aus.any()  # nothing read: a neutral face
    expected = {"A->AU": None, "A+E->AU": "happy"}
    if mode in expected:
        assert result.emotion == expected[mode]
    else:
        assert result.emotion in (None, *EMOTIONS) and report.emotion_expected
    model_file = tiny / "model.safetensors"
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert predictor.weights()[f"{tiny.name}/model.safetensors"] == digest
    assert before["model_content"]["model.safetensors"] == digest
    assert predictor.fingerprint() == before


def test_sampling_is_seeded(tiny):
    options = Stage1Options(model=str(tiny), greedy=False, temperature=1.5, max_new_tokens=16)
    predictor = AUPredictor(options)
    predictor.setup("cpu")
    texts = [predictor.predict(speech(0.4), seed=s).raw_text for s in (1, 1, 2)]
    assert texts[0] == texts[1] != texts[2]


class Scripted(stage1.Backend):
    """A backend that answers from a script: chunking, stitching and voting under test."""

    name = "qwen2_audio"
    calls: list[tuple[int, str, int]] = []
    answers = [
        f"Emotion: sad. {TARGET_PREFIX} [[[0, 0.0]], [[0, 0.1]]]",
        f"Emotion: happy. {TARGET_PREFIX} [[[0, 0.2]], [[0, 0.",  # cut off: frame 3 missing
        f"Emotion: Sad. {TARGET_PREFIX} [[[0, 0.4]]]",
    ]

    def load(self, model_dir, adapter_dir, device, dtype, trust_remote_code):
        Scripted.calls = []

    def generate(self, audio, prompt, decoding):
        Scripted.calls.append((len(audio), prompt, decoding.max_new_tokens))
        return self.answers[len(Scripted.calls) - 1]


def test_chunks_are_stitched_voted_and_interpolated(tiny, monkeypatch):
    monkeypatch.setitem(stage1.BACKENDS, "qwen2_audio", Scripted)
    options = Stage1Options(model=str(tiny), prompt_mode="a_e_au", chunk_seconds=0.4)
    predictor = AUPredictor(options)
    predictor.setup("cpu")
    result = predictor.predict(speech(1.0))
    assert [c[0] for c in Scripted.calls] == [6400, 6400, 3200]  # 2 + 2 + 1 token frames
    assert all(COT_REQUEST in c[1] for c in Scripted.calls)
    assert [c[2] for c in Scripted.calls] == [64 + 2 * 256, 64 + 2 * 256, 64 + 256]
    np.testing.assert_allclose(result.aus_5fps[:, 0], [0.0, 0.1, 0.2, np.nan, 0.4])
    assert result.emotion == "sad"  # two chunks of three say so
    np.testing.assert_allclose(result.aus[[2, 5, 15, 20, 24], 0], [0.04, 0.1, 0.3, 0.4, 0.4],
                               rtol=1e-6)
    assert result.report.missing_frames == 1 and result.report.truncated
    assert any(m.startswith("chunk 1: ") for m in result.report.messages)
    assert result.raw_text.count("\n") == 2


def test_missing_weights_say_how_to_get_them(tiny, tmp_path):
    predictor = AUPredictor(Stage1Options())
    assert predictor.fingerprint()["model_content"] is None  # fingerprint never fails
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull qwen2-audio-7b-instruct"):
        predictor.setup("cpu")
    with pytest.raises(WeightsMissing, match="adapter folder .* not found"):
        AUPredictor(Stage1Options(model=str(tiny), adapter=str(tmp_path / "x/y"))).setup("cpu")
    with pytest.raises(WeightsMissing, match="hf download someone/au-lora"):
        AUPredictor(Stage1Options(model=str(tiny), adapter="someone/au-lora")).setup("cpu")


def test_the_default_model_is_found_in_the_weights_cache(tiny):
    spec = STAGE1_WEIGHTS[0]
    shutil.copytree(tiny, local_path(spec))
    predictor = AUPredictor(Stage1Options(max_new_tokens=4))
    predictor.setup("cpu")
    assert "qwen2-audio-7b-instruct/model.safetensors" in predictor.weights()
    assert predictor.predict(speech(0.3), None).aus.shape == (8, N_AUS)


def test_bad_calls_fail_with_a_clear_message(tiny):
    with pytest.raises(BenchError, match="before setup"):
        AUPredictor(Stage1Options(model=str(tiny))).predict(speech(1.0))
    given = AUPredictor(Stage1Options(model=str(tiny), prompt_mode="A+E->AU", max_new_tokens=2))
    given.setup("cpu")
    with pytest.raises(BenchError, match="needs the clip's emotion"):
        given.predict(speech(1.0), None)
    with pytest.raises(BenchError, match="unknown emotion 'bored'"):
        given.predict(speech(1.0), "bored")
    with pytest.raises(BenchError, match="mono"):
        given.predict(np.zeros((2, 16000), np.float32), "sad")
    with pytest.raises(BenchError, match="less than one video frame"):
        given.predict(np.zeros(100, np.float32), "sad")
    assert Stage1Options(prompt_mode="ae_au").prompt_mode == "A+E->AU"
    with pytest.raises(ValidationError, match="unknown prompt mode"):
        Stage1Options(prompt_mode="A->B")
    with pytest.raises(ValidationError):
        Stage1Options(temperture=0.7)  # typo: unknown options are errors
    remote = AUPredictor(Stage1Options(backend="qwen_audio_chat", model=str(tiny)))
    with pytest.raises(BenchError, match="trust_remote_code"):
        remote.setup("cpu")


def test_training_examples_follow_test_time_chunking(tmp_path, video_factory):
    video = video_factory("a.mp4", frames=60)
    labels = np.zeros((60, N_AUS))
    labels[:, 8] = 0.5
    labels[27, 8] = np.nan  # not a token frame (27 % 5): harmless
    labels[35, 8] = np.nan  # token frame 7 -> its chunk (6, 8) is left out
    path = save_au_labels(tmp_path / "a.npy", labels)
    from auhead_bench import Clip

    clips = [
        Clip(id="a", video=video, emotion="happy", au_labels=path),
        Clip(id="b", video=video, emotion=None, au_labels=path),
        Clip(id="c", video=video, emotion="happy"),
    ]
    items, skipped = plan_items(clips, "A->E->AU", chunk_seconds=0.4)
    assert [(i.start, i.stop) for i in items] == [(0, 2), (2, 4), (4, 6), (8, 10), (10, 12)]
    assert skipped["c"] == "no AU labels" and "not one the prompts know" in skipped["b"]
    assert "a (1 chunk(s))" in skipped
    items, _ = plan_items(clips[1:2], "A->AU", chunk_seconds=0.4)  # needs no emotion
    assert len(items) == 5 and items[-1].emotion is None


def test_only_the_answer_is_supervised(tiny):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny)
    aus = np.zeros((2, N_AUS))
    aus[1, 3] = 0.32
    answer = build_answer("A->E->AU", aus, "surprised")
    assert answer == f"Emotion: surprise. {TARGET_PREFIX} [[], [[3, 0.32]]]"
    example = encode_example(processor, speech(0.4), build_prompt("A->E->AU"), answer)
    supervised = example["labels"][example["labels"] != -100]
    text = processor.tokenizer.decode(supervised)
    assert text == answer + "<|im_end|>\n"
    assert (example["labels"][: -len(supervised)] == -100).all()
    assert example["input_features"].shape == (128, 3000)


def test_one_lora_training_step_then_predicting_with_the_adapter(tiny, tmp_path, video_factory):
    video_factory("a.mp4", frames=30)
    labels = np.zeros((30, N_AUS))
    labels[::2, 8] = 0.4
    save_au_labels(tmp_path / "a_aus.csv", labels)
    (tmp_path / "labels.csv").write_text("clip_id,emotion,au_labels\na,happy,a_aus.csv\n")
    out = tmp_path / "stage1"
    result = CliRunner().invoke(
        command,
        [
            "--dataset", "folder", "-o", f"root={tmp_path}", "-o", "pattern=*.mp4",
            "-o", f"labels={tmp_path / 'labels.csv'}", "--out", str(out), "--model", str(tiny),
            "--max-steps", "1", "--grad-accum", "1", "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "1 example(s) from 1 clip(s)" in result.output
    record = json.loads((out / "stage1_training.json").read_text())
    assert record["steps"] == 1 and record["examples"] == 1 and record["clips"] == ["a"]
    assert record["hyperparameters"]["lora_r"] == 64
    assert record["hyperparameters"]["lora_alpha"] == 16
    assert record["prompt_mode"] == "A->E->AU"
    from safetensors.torch import load_file

    keys = list(load_file(out / "adapter" / "adapter_model.safetensors"))
    assert keys and all("language_model" in k and "lora_" in k for k in keys)
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert any(f".{name}." in k for k in keys), name
    assert not any("audio_tower" in k for k in keys)

    predictor = AUPredictor(
        Stage1Options(model=str(tiny), adapter=str(out / "adapter"), max_new_tokens=8)
    )
    adapter_sha = predictor.fingerprint()["adapter_content"]["adapter_model.safetensors"]
    predictor.setup("cpu")
    assert predictor.weights()["adapter/adapter_model.safetensors"] == adapter_sha
    assert predictor.predict(speech(0.6), None).aus.shape == (15, N_AUS)


def test_training_needs_labelled_clips(tmp_path, video_factory):
    video_factory("a.mp4", frames=10)
    result = CliRunner().invoke(
        command,
        ["--dataset", "folder", "-o", f"root={tmp_path}", "-o", "pattern=*.mp4",
         "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")],
    )
    assert isinstance(result.exception, BenchError)
    assert "none of its 1 clip(s) can be trained on (no AU labels)" in str(result.exception)
    result = CliRunner().invoke(
        command,
        ["--dataset", "folder", "-o", f"root={tmp_path}", "-o", "patern=*.mp4",
         "--out", str(tmp_path / "out")],
    )
    assert "option patern: unknown field" in str(result.exception)
    assert "its options: max_clips, root, pattern" in str(result.exception)
