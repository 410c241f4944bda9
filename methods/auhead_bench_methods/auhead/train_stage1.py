"""`auhead-bench train stage1`: LoRA fine-tuning of Qwen2-Audio on (audio, AU labels) pairs.

Training data: the clips of any dataset plugin that carry ``au_labels`` (auhead_bench.aus
defines the file formats). Each clip's labels are resampled from their own frame rate to
25 fps (the file's timestamps, else ``--au-fps``, else the source video's rate: MEAD's is
30 fps; auhead_bench.aus.label_rate), cut to its audio's length, subsampled to 5 fps and
split into chunks of ``--chunk-seconds`` exactly as stage 1 reads audio at test time; each
chunk is one example: the chat prompt of ``--prompt-mode`` with the audio, and the answer
prompts.build_answer writes (``Emotion: happy. The AU sequence ...: [...]`` in A->E->AU).
Only the answer tokens (and the closing ``<|im_end|>``) are supervised. ``--prompt authors``
trains on the authors' verbatim prompt text (prompts.py; A+E->AU only).

A dataset's evaluation split (the identities of its documented default test split, e.g.
MEAD's M003 M030 W009 W015) is refused unless ``--allow-test-split``: a stage 1 trained on
the clips it is later scored on would report a leak, not a result.

Defaults are the authors' (laura990501/Qwen-AU-finetune, finetune.py / finetune.sh): LoRA
r=64, alpha=16, dropout 0.05, bias none; lr 1e-4, cosine schedule, warmup ratio 0.01,
weight decay 0.1, Adam beta2 0.95, 5 epochs, bf16 and gradient checkpointing on GPU; batch
1 per device on 2 GPUs, which we reproduce on one device as batch 1 x 2 accumulation steps.

LoRA targets: the authors adapt Qwen-7B's c_attn (fused q/k/v projection), c_proj (attention
output and MLP output projections; peft matches both by name), w1 and w2 (the two gated-MLP
input projections) in the language model only (Qwen-Audio's audio encoder has no modules by
those names). The Qwen2 equivalents are q_proj, k_proj, v_proj, o_proj, down_proj, gate_proj
and up_proj of ``model.language_model``; the audio tower's own q/k/v projections are left
out by matching the full module path (LM_TARGET_MODULES).

Outputs under ``--out``: ``adapter/`` (peft: adapter_config.json + adapter_model.safetensors;
pass it as Stage1Options.adapter), ``checkpoints/`` (Trainer state; ``--resume`` continues
from the last one) and ``stage1_training.json`` (everything needed to redo the run).
Only the native Qwen2-Audio backend trains here; Qwen-Audio-Chat needs its own remote code.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from auhead_bench import media
from auhead_bench.aus import clip_label_rates, labels_at_video_rate
from auhead_bench.cache import DEFAULT_CACHE
from auhead_bench.clip import Clip
from auhead_bench.errors import BenchError, ConfigError, one_line
from auhead_bench_methods.auhead.prompts import (
    PROMPT_MODES,
    PROMPT_STYLES,
    build_answer,
    build_prompt,
    canonical_emotion,
    check_style,
    normalise_mode,
)
from auhead_bench_methods.auhead.stage1 import (
    QWEN2_AUDIO,
    chat_prompt,
    content_summary,
    load_qwen2_audio,
    resolve_weights,
)
from auhead_bench_methods.auhead.tokens import (
    audio_for_token_frames,
    chunk_bounds,
    subsample,
    token_frames_for,
    video_frames_for_audio,
)

TRAIN_VERSION = "1"
LM_TARGET_MODULES = (
    r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
)
IGNORE_INDEX = -100  # label id the loss skips (prompt, audio and padding tokens)


@dataclass(frozen=True)
class TrainingItem:
    """One example: token frames [start, stop) of one clip, with their 5 fps labels."""

    clip_id: str
    audio: Path
    start: int
    stop: int
    aus_5fps: np.ndarray
    emotion: str | None
    label_rate: str = ""  # e.g. "30 fps (source video)": how the labels reached 25 fps


def plan_items(
    clips: list[Clip], mode: str, chunk_seconds: float, au_fps: float | None = None
) -> tuple[list[TrainingItem], dict[str, str]]:
    """Training examples from clips with AU labels; the clips left out, with reasons.

    ``au_fps``: the label files' frame rate when they do not state it (else the clip's
    dataset's ``au_labels_fps``, else the source video's rate).
    """
    mode = normalise_mode(mode)
    chunk = max(1, int(round(chunk_seconds * 5)))
    items: list[TrainingItem] = []
    skipped: dict[str, str] = {}
    for clip in clips:
        if clip.au_labels is None:
            skipped[clip.id] = "no AU labels"
            continue
        emotion = canonical_emotion(clip.emotion)
        if mode != "A->AU" and emotion is None:
            skipped[clip.id] = f"emotion {clip.emotion!r} is not one the prompts know"
            continue
        source = Path(clip.audio or clip.video)
        audio, has_audio = media.decode_audio(source)
        if not has_audio or len(audio) == 0:
            skipped[clip.id] = "no audio"
            continue
        rates = clip_label_rates(clip.meta)
        if au_fps is not None:
            rates["fps"] = au_fps
        try:
            if rates["source_fps"] is None:  # a dataset clip not yet prepared: its own video
                rates["source_fps"] = media.probe_video(clip.video).source_fps
            labels, rate = labels_at_video_rate(
                Path(clip.au_labels), frames=video_frames_for_audio(len(audio)), **rates
            )
        except BenchError as exc:
            skipped[clip.id] = one_line(exc)
            continue
        video_frames = min(len(labels), video_frames_for_audio(len(audio)))
        aus_5fps = subsample(labels[:video_frames])
        bad = 0
        for start, stop in chunk_bounds(token_frames_for(video_frames), chunk):
            piece = aus_5fps[start:stop]
            if not np.isfinite(piece).all():
                bad += 1  # a frame without a measurement cannot be written as a target
                continue
            items.append(TrainingItem(
                clip.id, source, start, stop, piece, emotion,
                f"{rate.fps:.3f} fps ({rate.source})",
            ))
        if bad:
            skipped[f"{clip.id} ({bad} chunk(s))"] = "NaN labels in a kept frame"
    return items, skipped


class AUSequenceDataset:
    """Examples for the Trainer, built on demand (audio decoded per item, not held)."""

    def __init__(
        self, items: list[TrainingItem], processor: Any, mode: str, style: str = "suite"
    ):
        self.items, self.processor, self.mode = items, processor, normalise_mode(mode)
        self.style = style

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        audio, _ = media.decode_audio(item.audio)
        piece = audio_for_token_frames(audio, item.start, item.stop)
        prompt = build_prompt(self.mode, item.emotion, self.style)
        answer = build_answer(self.mode, item.aus_5fps, item.emotion)
        return encode_example(self.processor, piece, prompt, answer)


def encode_example(processor: Any, audio: np.ndarray, prompt: str, answer: str) -> dict[str, Any]:
    """Token ids of prompt + answer, labels on the answer only, and the audio features.

    Prompt and answer are tokenized apart and joined, so the boundary is exact.
    """
    import torch

    inputs = processor(
        text=[chat_prompt(processor, prompt)], audio=[audio], sampling_rate=16000,
        return_tensors="pt",
    )
    tokenizer = processor.tokenizer
    answer_ids = tokenizer(answer + "<|im_end|>\n", add_special_tokens=False, return_tensors="pt")
    prompt_ids = inputs["input_ids"][0]
    target = answer_ids["input_ids"][0]
    input_ids = torch.cat([prompt_ids, target])
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), target])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "input_features": inputs["input_features"][0],
        "feature_attention_mask": inputs["feature_attention_mask"][0],
    }


class Collator:
    """Right-pads token sequences; audio features already have one fixed length."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        length = max(len(e["input_ids"]) for e in examples)

        def padded(key: str, value: int) -> torch.Tensor:
            rows = [
                torch.cat([e[key], torch.full((length - len(e[key]),), value, dtype=e[key].dtype)])
                for e in examples
            ]
            return torch.stack(rows)

        return {
            "input_ids": padded("input_ids", self.pad_token_id),
            "attention_mask": padded("attention_mask", 0),
            "labels": padded("labels", IGNORE_INDEX),
            "input_features": torch.stack([e["input_features"] for e in examples]),
            "feature_attention_mask": torch.stack([e["feature_attention_mask"] for e in examples]),
        }


@dataclass(frozen=True)
class Hyperparameters:
    epochs: float = 5.0
    learning_rate: float = 1e-4
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    batch_size: int = 1
    grad_accum: int = 2
    weight_decay: float = 0.1
    warmup_ratio: float = 0.01
    adam_beta2: float = 0.95
    max_steps: int = -1
    seed: int = 0
    gradient_checkpointing: bool | None = None  # None: on for CUDA
    save_steps: int = 500


def train(
    items: list[TrainingItem], model_ref: str, revision: str | None, mode: str, out_dir: Path,
    hp: Hyperparameters, device: str, resume: bool = False, style: str = "suite",
) -> dict[str, Any]:
    """Fine-tune LoRA adapters; writes ``out_dir/adapter``. Returns the Trainer's last log."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    cuda = device.startswith("cuda")
    model_dir = resolve_weights(model_ref, revision, "model")
    processor, model = load_qwen2_audio(model_dir, torch.bfloat16 if cuda else torch.float32)
    model.config.use_cache = False
    checkpointing = cuda if hp.gradient_checkpointing is None else hp.gradient_checkpointing
    lora = LoraConfig(
        r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout, bias="none",
        target_modules=LM_TARGET_MODULES, task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if checkpointing:
        model.enable_input_require_grads()
    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        per_device_train_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=hp.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=hp.weight_decay,
        adam_beta2=hp.adam_beta2,
        bf16=cuda,
        activation_checkpointing=checkpointing,
        logging_steps=10,
        save_strategy="steps",
        save_steps=hp.save_steps,
        save_total_limit=3,
        report_to="none",
        remove_unused_columns=False,
        label_names=["labels"],
        seed=hp.seed,
        use_cpu=not cuda,
        disable_tqdm=True,
    )
    tokenizer = processor.tokenizer
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=AUSequenceDataset(items, processor, mode, style),
        data_collator=Collator(tokenizer.pad_token_id),
    )
    has_checkpoint = any((out_dir / "checkpoints").glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    model.save_pretrained(out_dir / "adapter")
    return {"log": trainer.state.log_history, "steps": trainer.state.global_step}


# ---- the command -------------------------------------------------------------------------


def _dataset_clips(
    dataset_id: str, pairs: tuple[str, ...], cache_dir: Path | None
) -> tuple[list[Clip], dict[str, Any], Any]:
    import yaml
    from pydantic import ValidationError

    from auhead_bench.config import describe_validation_error
    from auhead_bench.plugins import get_registry

    entry = get_registry().get("dataset", dataset_id)
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"dataset option {pair!r} is not KEY=VALUE", fix="e.g. -o root=/data")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:  # e.g. pattern=*.mp4: not YAML, meant as text
            values[key.strip()] = raw
    try:
        options = entry.cls.Options(**values)
    except ValidationError as exc:
        known = ", ".join(entry.cls.Options.model_fields)
        raise ConfigError(
            f"dataset {dataset_id!r} option {describe_validation_error(exc)}",
            fix=f"its options: {known}",
        ) from None
    dataset = entry.cls(options, (cache_dir or DEFAULT_CACHE) / "datasets")
    clips = dataset.clips()
    limit = getattr(options, "max_clips", None)
    clips = clips[:limit] if limit is not None else clips
    return clips, options.model_dump(mode="json"), dataset


def refuse_evaluation_split(dataset_id: str, dataset: Any, clips: list[Clip]) -> None:
    """BenchError when clips belong to the dataset's evaluation split (the identities of
    its documented default test split: MEAD's, CREMA-D's); datasets without one pass."""
    default_split = getattr(dataset, "default_split", None)
    held_out = (default_split() or {}).get("identities") if callable(default_split) else None
    if not isinstance(held_out, list | tuple) or not held_out:
        return
    inside = [clip for clip in clips if clip.identity in set(held_out)]
    if inside:
        raise BenchError(
            f"dataset {dataset_id!r}: {len(inside)} of the {len(clips)} clip(s) to train on are "
            f"in its evaluation split (test identities {', '.join(map(str, held_out))}), "
            "which stage 1 is later scored on",
            fix="select training identities (-o identities=[...]) or pass "
            "--allow-test-split to train on them anyway",
        )


@click.command("stage1")
@click.option("--dataset", "dataset_id", required=True,
              help="Dataset id (`auhead-bench ls datasets`); clips need au_labels.")
@click.option("-o", "--dataset-option", "dataset_options", multiple=True, metavar="KEY=VALUE",
              help="A dataset option (repeatable); the value is read as YAML.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for adapter/, checkpoints/ and stage1_training.json.")
@click.option("--model", default=QWEN2_AUDIO, show_default=True,
              help="Qwen2-Audio hub id or local folder.")
@click.option("--revision", default=None, help="Hub revision of --model.")
@click.option("--prompt-mode", default=None,
              help=f"One of {', '.join(PROMPT_MODES)} (aliases a_au, a_e_au, ae_au); default "
              "A->E->AU, or A+E->AU with the authors' prompt.")
@click.option("--prompt", "prompt_style", type=click.Choice(PROMPT_STYLES), default="suite",
              show_default=True,
              help="Prompt text: the suite's, or the authors' verbatim (A+E->AU only).")
@click.option("--au-fps", type=float, default=None,
              help="Frame rate of the AU label files when they do not state it "
              "(default: the dataset's au_labels_fps, else the source video's rate).")
@click.option("--allow-test-split", is_flag=True,
              help="Train even on clips of the dataset's evaluation (test) split.")
@click.option("--epochs", type=float, default=5.0, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=1e-4, show_default=True)
@click.option("--lora-r", type=int, default=64, show_default=True)
@click.option("--lora-alpha", type=int, default=16, show_default=True)
@click.option("--lora-dropout", type=float, default=0.05, show_default=True)
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--grad-accum", type=int, default=2, show_default=True)
@click.option("--weight-decay", type=float, default=0.1, show_default=True)
@click.option("--warmup-ratio", type=float, default=0.01, show_default=True)
@click.option("--chunk-seconds", type=float, default=10.0, show_default=True,
              help="Split clips like stage 1 does at test time (Stage1Options.chunk_seconds).")
@click.option("--max-steps", type=int, default=-1, show_default=True,
              help="Stop after N optimizer steps (-1: all epochs).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
              help="Default: on for CUDA.")
@click.option("--save-steps", type=int, default=500, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint under --out.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Cache root for dataset preparation (default as for `run`).")
def command(
    dataset_id: str, dataset_options: tuple[str, ...], out_dir: Path, model: str,
    revision: str | None, prompt_mode: str | None, prompt_style: str, au_fps: float | None,
    allow_test_split: bool, epochs: float, learning_rate: float, lora_r: int,
    lora_alpha: int, lora_dropout: float, batch_size: int, grad_accum: int,
    weight_decay: float, warmup_ratio: float, chunk_seconds: float, max_steps: int,
    device: str, seed: int, gradient_checkpointing: bool | None, save_steps: int,
    resume: bool, cache_dir: Path | None,
) -> None:
    """LoRA fine-tuning of AUHead stage 1 (Qwen2-Audio) on a dataset's AU labels."""
    from auhead_bench.provenance import resolve_device

    if prompt_mode is None:  # the authors' text exists only in A+E->AU
        prompt_mode = "A->E->AU" if prompt_style == "suite" else "A+E->AU"
    try:
        mode = normalise_mode(prompt_mode)
        check_style(mode, prompt_style)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if au_fps is not None and au_fps <= 0:
        raise ConfigError(f"--au-fps must be a positive frame rate, got {au_fps:g}")
    if not 0.2 <= chunk_seconds <= 30:
        raise ConfigError("--chunk-seconds must be within 0.2..30 (Qwen2-Audio reads <= 30 s)")
    device = resolve_device(device)
    clips, options_json, dataset = _dataset_clips(dataset_id, dataset_options, cache_dir)
    if not allow_test_split:
        refuse_evaluation_split(dataset_id, dataset, clips)
    items, skipped = plan_items(clips, mode, chunk_seconds, au_fps)
    if not items:
        reasons = sorted(set(skipped.values()))
        raise BenchError(
            f"dataset {dataset_id!r}: none of its {len(clips)} clip(s) can be trained on "
            f"({'; '.join(reasons) or 'no clips'})",
            fix="give the clips AU labels (and emotions for A->E->AU / A+E->AU)",
        )
    click.echo(
        f"stage 1 training: {len(items)} example(s) from {len(clips) - len(skipped)} clip(s) "
        f"of {dataset_id}; {len(skipped)} left out; mode {mode}; device {device}"
    )
    hp = Hyperparameters(
        epochs=epochs, learning_rate=learning_rate, lora_r=lora_r, lora_alpha=lora_alpha,
        lora_dropout=lora_dropout, batch_size=batch_size, grad_accum=grad_accum,
        weight_decay=weight_decay, warmup_ratio=warmup_ratio, max_steps=max_steps, seed=seed,
        gradient_checkpointing=gradient_checkpointing, save_steps=save_steps,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    state = train(items, model, revision, mode, out_dir, hp, device, resume, prompt_style)
    record = _training_record(
        dataset_id, options_json, model, revision, mode, chunk_seconds, hp, device, items,
        skipped, state,
    )
    record.update(prompt=prompt_style, au_fps=au_fps, allow_test_split=allow_test_split)
    (out_dir / "stage1_training.json").write_text(json.dumps(record, indent=2, default=str))
    click.echo(
        f"adapter written to {out_dir / 'adapter'} ({state['steps']} step(s)); use it as "
        f"Stage1Options(adapter=..., prompt_mode={mode!r}, prompt={prompt_style!r}, "
        f"chunk_seconds={chunk_seconds})"
    )


def _training_record(
    dataset_id: str, options_json: dict[str, Any], model: str, revision: str | None, mode: str,
    chunk_seconds: float, hp: Hyperparameters, device: str, items: list[TrainingItem],
    skipped: dict[str, str], state: dict[str, Any],
) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    return {
        "train_version": TRAIN_VERSION,
        "dataset": {"id": dataset_id, "options": options_json},
        "model": {"ref": model, "revision": revision,
                  "content": content_summary(model, revision, full=False)},
        "prompt_mode": mode,
        "chunk_seconds": chunk_seconds,
        "hyperparameters": asdict(hp),
        "lora_target_modules": LM_TARGET_MODULES,
        "device": device,
        "examples": len(items),
        "clips": sorted({item.clip_id for item in items}),
        "label_rates": {item.clip_id: item.label_rate for item in items},
        "skipped": skipped,
        "steps": state["steps"],
        "log": state["log"],
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
        },
    }
