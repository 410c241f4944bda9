"""AUHead stage 1: audio -> Action Unit track with an audio-language model.

The API stage 2 calls (keep this shape)::

    options = Stage1Options(prompt_mode="A->E->AU", adapter="runs/stage1/adapter")
    predictor = AUPredictor(options)
    predictor.fingerprint()           # before setup: what identifies the predictions
    predictor.setup("cuda")           # loads once; WeightsMissing (with the fix) if absent
    result = predictor.predict(audio, emotion)   # audio: 16 kHz mono float32, 1-D
    result.aus        # (T25, 24) float32 in [0, 1] at 25 fps, T25 = round(len(audio) / 640)
    result.emotion    # A->E->AU: the emotion the model stated (None if unreadable);
                      # A+E->AU: the emotion given; A->AU: None
    result.raw_text   # the model's answer (chunks joined by newlines)
    result.report     # ParseReport: what could not be read (report.clean: all of it was)
    result.aus_5fps   # (T5, 24) the token frames as read, NaN where a frame was missing
    predictor.weights()               # after setup: {file: sha256} of everything loaded

How a prediction is made: the audio is cut into chunks of ``chunk_seconds`` (whole 5 fps
token frames; Qwen2-Audio reads at most 30 s), each chunk is prompted in ``prompt_mode``
(prompts.py), the answer parsed (parsing.py) into 5 fps token frames, the chunks joined and
interpolated to 25 fps (tokens.py). In A->E->AU the clip's emotion is the most frequent one
the chunks state (the first chunk's on a tie).

Backends share one interface: ``qwen2_audio`` (default; native in transformers:
Qwen2AudioForConditionalGeneration + its processor and chat template) and
``qwen_audio_chat`` (the authors' base model; it runs Python code shipped with the model, so
it needs ``trust_remote_code: true``, and that code targets transformers 4.3x; its loading
path is kept but cannot be exercised offline here). Either takes an optional peft LoRA
adapter (local folder or hub id), merged into the weights after loading.

Nothing downloads at run time: the model is a local folder, a snapshot in the weights cache
(``auhead-bench weights pull qwen2-audio-7b-instruct``, see STAGE1_WEIGHTS) or one already
in the HF cache; otherwise setup raises WeightsMissing naming the command.
"""

from __future__ import annotations

import copy
import re
import tempfile
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from auhead_bench import Options
from auhead_bench.errors import BenchError
from auhead_bench.weights import WeightsMissing, WeightsSpec, file_sha256, local_path
from auhead_bench_methods.auhead.au_space import AUDIO_RATE, N_AUS, TOKEN_FPS
from auhead_bench_methods.auhead.parsing import ParseReport, parse_output
from auhead_bench_methods.auhead.prompts import (
    AUTHORS_TEMPLATES,
    EMOTIONS,
    PromptMode,
    PromptStyle,
    build_prompt,
    canonical_emotion,
    check_style,
    normalise_mode,
)
from auhead_bench_methods.auhead.tokens import (
    TOKENS_VERSION,
    audio_for_token_frames,
    chunk_bounds,
    token_frames_for,
    upsample,
    video_frames_for_audio,
)

STAGE1_VERSION = "1"  # bump when predictions change for the same weights and options
QWEN2_AUDIO = "Qwen/Qwen2-Audio-7B-Instruct"
QWEN_AUDIO_CHAT = "Qwen/Qwen-Audio-Chat"
DEFAULT_MODELS = {"qwen2_audio": QWEN2_AUDIO, "qwen_audio_chat": QWEN_AUDIO_CHAT}
# Multi-file HF snapshots: ``filename`` names the folder the snapshot lives in
# (<weights root>/<name>/snapshot/). `weights pull` fetches whole repos once the registry has
# the ``snapshot`` flag (WeightsSpec.snapshot); until then a folder placed there by
# `hf download REPO --local-dir ...` is found all the same.
_SNAPSHOT: dict[str, Any] = (
    {"snapshot": True} if "snapshot" in {f.name for f in fields(WeightsSpec)} else {}
)
STAGE1_WEIGHTS: tuple[WeightsSpec, ...] = (
    WeightsSpec(
        name="qwen2-audio-7b-instruct",
        filename="snapshot",
        source=f"hf://{QWEN2_AUDIO}",
        sha256=None,
        licence="Apache-2.0",
        description="Qwen2-Audio-7B-Instruct, AUHead stage-1 base model (HF snapshot folder)",
        **_SNAPSHOT,
    ),
    WeightsSpec(
        name="qwen-audio-chat",
        filename="snapshot",
        source=f"hf://{QWEN_AUDIO_CHAT}",
        sha256=None,
        licence="Tongyi Qianwen",
        description="Qwen-Audio-Chat, the authors' stage-1 base model (remote code; snapshot)",
        **_SNAPSHOT,
    ),
)
_SPECS = {spec.source[len("hf://") :]: spec for spec in STAGE1_WEIGHTS}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DOC_FILES = re.compile(r"(?i)(readme|license|notice|\.md$|\.png$|\.jpe?g$|\.gitattributes$)")
_SMALL_FILE = 64 << 20  # fingerprints hash files up to this size in base models (all of adapters)
TOKENS_PER_FRAME = 256  # auto max_new_tokens: room for 24 pairs of ~10 tokens per token frame
TOKENS_OVERHEAD = 64  # prefix and emotion sentence


class Stage1Options(Options):
    """Which audio-language model, adapter, prompt mode and decoding stage 1 uses."""

    backend: Literal["qwen2_audio", "qwen_audio_chat"] = Field(
        "qwen2_audio", description="Audio-language model family: qwen2_audio (native in "
        "transformers) or qwen_audio_chat (the paper's Qwen-Audio-Chat, through remote code).")
    model: str | None = Field(None, description="Hub id or local folder of the model; None: "
                              "the backend's base model.")
    revision: str | None = Field(None, description="Hub revision (commit) of `model`.")
    adapter: str | None = Field(None, description="peft LoRA folder or hub id, as `auhead-bench "
                                "train stage1` writes it; None: the base model alone.")
    prompt_mode: PromptMode = Field("A->E->AU", description="A->AU: audio only; A->E->AU: the "
                                    "model states the emotion, then the AUs; A+E->AU: the "
                                    "clip's emotion label is given (an upper bound).")
    prompt: PromptStyle = Field("suite", description="Instruction text: suite (ours, describing "
                                "the spelling the model is trained to write), authors or "
                                "authors_inference (the authors' training / inference text, "
                                "verbatim; they state the emotion, so they imply A+E->AU).")
    max_new_tokens: int | None = Field(None, ge=1, description="Generation budget; None: 64 + "
                                       "256 per 5 fps frame of the chunk.")
    greedy: bool = Field(True, description="Greedy decoding; False samples with temperature "
                         "and top_p (seeded).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (greedy: False).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass (greedy: False).")
    chunk_seconds: float = Field(10.0, ge=0.2, le=30.0, description="The audio is cut into "
                                 "chunks of at most this many seconds, each predicted alone.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Model dtype; auto: bfloat16 on CUDA, float32 on CPU.")
    trust_remote_code: bool = Field(False, description="Allow qwen_audio_chat to run the model "
                                    "repository's own Python code (required by that backend).")

    @field_validator("prompt_mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return normalise_mode(value) if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _authors_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("prompt") in AUTHORS_TEMPLATES:
            return {"prompt_mode": "A+E->AU", **data}  # the only mode the authors' text has
        return data

    @model_validator(mode="after")
    def _style(self) -> Stage1Options:
        try:
            check_style(self.prompt_mode, self.prompt)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def model_ref(self) -> str:
        return self.model or DEFAULT_MODELS[self.backend]


@dataclass
class Stage1Result:
    """One clip's stage-1 output (see the module docstring)."""

    aus: np.ndarray  # (T25, 24) float32 in [0, 1], 25 fps
    emotion: str | None
    raw_text: str
    report: ParseReport
    aus_5fps: np.ndarray  # (T5, 24) float32, NaN rows = frames that could not be read


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    greedy: bool
    temperature: float
    top_p: float

    def generate_kwargs(self) -> dict[str, Any]:
        """Every decoding choice, explicitly: a checkpoint's own generation_config (Qwen's
        ship sampling with a repetition penalty, which would punish the many repeated digits
        of an AU list) must not decide it."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens, "do_sample": False, "repetition_penalty": 1.0,
        }
        if not self.greedy:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0)
        return kwargs


# ---- backends ------------------------------------------------------------------------------


class Backend(ABC):
    """One way to run an audio-language model: load once, answer one (audio, prompt)."""

    name: ClassVar[str]

    @abstractmethod
    def load(
        self, model_dir: Path, adapter_dir: Path | None, device: str, dtype: Any,
        trust_remote_code: bool,
    ) -> None:
        """Load weights (and merge the LoRA adapter) onto ``device``."""

    @abstractmethod
    def generate(self, audio: np.ndarray, prompt: str, decoding: Decoding) -> str:
        """The model's answer (special tokens removed) to ``prompt`` about ``audio``."""


def chat_prompt(processor: Any, prompt: str) -> str:
    """The chat-formatted user turn with one audio, ending where the assistant answers."""
    content = [{"type": "audio", "audio_url": "clip.wav"}, {"type": "text", "text": prompt}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def load_qwen2_audio(model_dir: Path, dtype: Any) -> tuple[Any, Any]:
    """(processor, model) of a Qwen2-Audio checkpoint folder, as stage 1 and training load it."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    processor = AutoProcessor.from_pretrained(model_dir)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(model_dir, dtype=dtype)
    return processor, model


def _merge_adapter(model: Any, adapter_dir: Path | None) -> Any:
    if adapter_dir is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


class Qwen2AudioBackend(Backend):
    """Qwen2-Audio through transformers' own classes (no remote code)."""

    name = "qwen2_audio"

    def load(self, model_dir, adapter_dir, device, dtype, trust_remote_code) -> None:
        self.processor, model = load_qwen2_audio(model_dir, dtype)
        self.model = _merge_adapter(model, adapter_dir).to(device).eval()
        self.device = device

    def generate(self, audio: np.ndarray, prompt: str, decoding: Decoding) -> str:
        import torch

        inputs = self.processor(
            text=[chat_prompt(self.processor, prompt)],
            audio=[audio],
            sampling_rate=AUDIO_RATE,
            return_tensors="pt",
        ).to(self.device)
        tokenizer = self.processor.tokenizer
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, pad_token_id=tokenizer.pad_token_id, **decoding.generate_kwargs()
            )
        answer = out[:, inputs["input_ids"].shape[1] :]
        return tokenizer.batch_decode(answer, skip_special_tokens=True)[0]


class QwenAudioChatBackend(Backend):
    """Qwen-Audio-Chat through its own remote code (the authors' base model).

    Its ``chat`` reads audio from a file named inside the prompt, so each chunk is written
    to a temporary wav. Not exercisable offline here (remote code and weights both come
    from the hub; the code targets transformers 4.3x).
    """

    name = "qwen_audio_chat"

    def load(self, model_dir, adapter_dir, device, dtype, trust_remote_code) -> None:
        if not trust_remote_code:
            raise BenchError(
                "backend qwen_audio_chat runs Python code shipped with the model",
                fix="set trust_remote_code: true to allow it, or use backend qwen2_audio",
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
        precision = {torch.bfloat16: {"bf16": True}, torch.float16: {"fp16": True}}
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, trust_remote_code=True, **precision.get(dtype, {"fp32": True})
        )
        self.model = _merge_adapter(model, adapter_dir).to(device).eval()

    def generate(self, audio: np.ndarray, prompt: str, decoding: Decoding) -> str:
        from auhead_bench import media

        config = copy.deepcopy(self.model.generation_config)
        for key, value in decoding.generate_kwargs().items():
            setattr(config, key, value)
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "clip.wav"
            media.write_wav(wav, audio)
            query = self.tokenizer.from_list_format([{"audio": str(wav)}, {"text": prompt}])
            response, _ = self.model.chat(
                self.tokenizer, query=query, history=None, generation_config=config
            )
        return response


BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (Qwen2AudioBackend, QwenAudioChatBackend)}


# ---- the predictor ---------------------------------------------------------------------------


class AUPredictor:
    """Audio (16 kHz mono) -> AU track at 25 fps, with the emotion the model states."""

    def __init__(self, options: Stage1Options | None = None):
        self.options = options if options is not None else Stage1Options()
        self._backend: Backend | None = None
        self._dirs: dict[str, Path] = {}
        self._device: str | None = None

    # -- identity --

    def fingerprint(self) -> dict[str, Any]:
        """Known before setup: code versions, options, and the content of local folders."""
        o = self.options
        return {
            "stage1": STAGE1_VERSION,
            "tokens": TOKENS_VERSION,
            "options": o.model_dump(mode="json"),
            "model_content": content_summary(o.model_ref, o.revision, full=False),
            "adapter_content": content_summary(o.adapter, None, full=True) if o.adapter else None,
        }

    def weights(self) -> dict[str, str]:
        """File -> sha256 of every file loaded (after setup; hashed once per process)."""
        found: dict[str, str] = {}
        for label, folder in self._dirs.items():
            for path in _files(folder):
                found[f"{label}/{path.relative_to(folder).as_posix()}"] = file_sha256(path)
        return found

    # -- loading --

    def setup(self, device: str) -> None:
        """Load the model (and adapter) onto ``device`` once; WeightsMissing if not here."""
        if self._backend is not None and self._device == device:
            return
        o = self.options
        model_dir = resolve_weights(o.model_ref, o.revision, "model")
        adapter_dir = resolve_weights(o.adapter, None, "adapter") if o.adapter else None
        backend = BACKENDS[o.backend]()
        backend.load(model_dir, adapter_dir, device, _torch_dtype(o.dtype, device),
                     o.trust_remote_code)
        self._dirs = {_label(o.model_ref): model_dir}
        if adapter_dir is not None:
            self._dirs["adapter"] = adapter_dir
        self._backend, self._device = backend, device

    # -- predicting --

    def predict(
        self, audio: np.ndarray, emotion: str | None = None, seed: int | None = None
    ) -> Stage1Result:
        """AUs for ``audio`` (16 kHz mono float32). ``emotion`` is required in A+E->AU.

        ``seed`` matters only when sampling (greedy: False).
        """
        if self._backend is None:
            raise BenchError("AUPredictor.predict before setup", fix="call setup(device) first")
        o = self.options
        audio = _checked_audio(audio)
        given = _checked_emotion(emotion, o.prompt_mode)
        video_frames = video_frames_for_audio(len(audio))
        token_frames = token_frames_for(video_frames)
        chunk = max(1, int(round(o.chunk_seconds * TOKEN_FPS)))
        prompt = build_prompt(o.prompt_mode, given, o.prompt)
        cot = o.prompt_mode == "A->E->AU"
        rows, texts, reports, stated = [], [], [], []
        for start, stop in chunk_bounds(token_frames, chunk):
            if not o.greedy:
                import torch

                torch.manual_seed(0 if seed is None else seed)
            text = self._backend.generate(
                audio_for_token_frames(audio, start, stop), prompt, self._decoding(stop - start)
            )
            parsed = parse_output(text, expected_frames=stop - start, expect_emotion=cot)
            rows.append(parsed.aus_5fps)
            texts.append(text)
            reports.append(parsed.report)
            stated.append(parsed.emotion)
        aus_5fps = np.concatenate(rows) if rows else np.zeros((0, N_AUS))
        if cot:
            said = [e for e in stated if e is not None]
            result_emotion = Counter(said).most_common(1)[0][0] if said else None
        else:  # the emotion given is the answer's only in A+E->AU; A->AU states none
            result_emotion = given if o.prompt_mode == "A+E->AU" else None
        return Stage1Result(
            aus=upsample(aus_5fps, video_frames),
            emotion=result_emotion,
            raw_text="\n".join(texts),
            report=ParseReport.merge(reports),
            aus_5fps=aus_5fps.astype(np.float32),
        )

    def _decoding(self, token_frames: int) -> Decoding:
        o = self.options
        budget = o.max_new_tokens or TOKENS_OVERHEAD + TOKENS_PER_FRAME * token_frames
        return Decoding(budget, o.greedy, o.temperature, o.top_p)


# ---- weights on disk -----------------------------------------------------------------------


def resolve_weights(ref: str, revision: str | None, what: str) -> Path:
    """The local folder of a model or adapter: a path, the weights cache, or the HF cache.

    Never downloads. Raises WeightsMissing naming the command that fetches it.
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        return path.resolve()
    if not _HUB_ID.match(ref):
        raise WeightsMissing(
            f"weights missing: {what} folder {ref} not found; "
            "set it to an existing folder or to a hub id (owner/name)"
        )
    spec = _SPECS.get(ref)
    if spec is not None and revision is None and (local_path(spec) / "config.json").is_file():
        return local_path(spec)
    cached = _hf_cached(ref, revision)
    if cached is not None:
        return cached
    if spec is not None:
        fix = f"run `{spec.pull_command()}` (or `hf download {ref} --local-dir {local_path(spec)}`)"
    else:
        fix = f"run `hf download {ref}` on a machine with network, or set {what} to a local folder"
    raise WeightsMissing(
        f"weights missing: {what} {ref!r}{f'@{revision}' if revision else ''} is not in the "
        f"weights cache or the HF cache; {fix}"
    )


def _hf_cached(ref: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(ref, revision=revision, local_files_only=True))
    except Exception:  # not cached (or hub library refusing offline): the caller says how to get it
        return None


def _files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file()
        and not _DOC_FILES.search(p.name)
        and ".cache" not in p.relative_to(folder).parts  # `hf download --local-dir` metadata
    )


def content_summary(ref: str, revision: str | None, full: bool) -> dict[str, Any] | None:
    """What identifies a local model/adapter folder's content, without loading it.

    HF cache snapshots are named by their commit. Otherwise: sha256 of each file (all files
    if ``full``, else files up to 64 MiB plus the sizes of larger ones). Missing: None.
    """
    try:
        folder = resolve_weights(ref, revision, "model")
    except WeightsMissing:
        return None
    if folder.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", folder.name):
        return {"hf_commit": folder.name}
    summary: dict[str, Any] = {}
    for path in _files(folder):
        name = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        summary[name] = file_sha256(path) if full or size <= _SMALL_FILE else f"size:{size}"
    return summary


def _label(ref: str) -> str:
    spec = _SPECS.get(ref)
    return spec.name if spec is not None else Path(ref).name or ref


def _torch_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        cuda = device.startswith("cuda") and torch.cuda.is_available()
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def _checked_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise BenchError(f"stage-1 audio must be mono (1-D), got shape {audio.shape}")
    if video_frames_for_audio(len(audio)) == 0:
        raise BenchError(
            f"stage-1 audio has {len(audio)} samples, less than one video frame (640 at 16 kHz)"
        )
    audio = audio.astype(np.float32, copy=False)
    if not np.isfinite(audio).all():
        raise BenchError("stage-1 audio has NaN or infinite samples")
    return audio


def _checked_emotion(emotion: str | None, mode: str) -> str | None:
    if emotion is None:
        if mode == "A+E->AU":
            raise BenchError(
                "prompt mode A+E->AU needs the clip's emotion and it has none",
                fix="label the clip's emotion, or use prompt_mode A->E->AU",
            )
        return None
    canonical = canonical_emotion(emotion)
    if canonical is None:
        raise BenchError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTIONS)}")
    return canonical


# ---- a tiny real checkpoint, for tests and smoke runs ----------------------------------------


def save_tiny_random_qwen2_audio(folder: Path, seed: int = 0) -> Path:
    """A Qwen2-Audio checkpoint of the real classes at toy size, with RANDOM weights.

    Saved with save_pretrained (config, safetensors, processor), so it loads through the
    same code as the real model; its answers are noise. The tokenizer is transformers'
    Qwen2Tokenizer (Qwen's own pre-tokenizer) over the 256 byte symbols, without merges,
    plus the special tokens the processor and chat template use: no tokenizer files can be
    downloaded here, and a byte vocabulary encodes any prompt.
    """
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Tokenizer,
        WhisperFeatureExtractor,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    specials = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
    vocab = {"<|endoftext|>": 0}
    for symbol in bytes_to_unicode().values():
        vocab[symbol] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], additional_special_tokens=specials)
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer
    )
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder", "d_model": 16, "encoder_layers": 1,
            "encoder_attention_heads": 2, "encoder_ffn_dim": 32, "num_mel_bins": 128,
            "max_source_positions": 1500,
        },
        text_config={
            "model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
        },
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(
        ["<|im_end|>", "<|endoftext|>"]
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
