"""Stage-1 prompt modes, prompt texts and answer templates.

Three modes, named as in the paper:

- ``A->AU``: audio only; the answer is the AU sequence.
- ``A->E->AU``: emotion-then-AU chain of thought; the model first states the emotion, then
  the AU sequence. The paper gives no template, so we chose (and train with):
  ``Emotion: happy. The AU sequence for each frame of audio is: [[[0, 0.09]], ...]``.
- ``A+E->AU``: the ground-truth emotion is given in the prompt (the authors' released code;
  an upper bound, since it needs the label at test time).

The instruction follows the authors' prompt in substance (frames of 3200 samples at 16 kHz,
the 24 AUs by index and name, values in [0, 1] with 2 decimals, only active AUs as
(index, value) pairs; "The emotion of the current audio is {emotion}."). Where their prompt
asks for values without a leading zero, ours describes the text their model was actually
trained to write (``0.12``; see tokens.py). Shell-friendly aliases of the mode names are
accepted (``a_au``, ``a_e_au``, ``ae_au``).

Prompt styles (``Stage1Options.prompt``, ``train stage1 --prompt``): ``suite`` is the
instruction above; ``authors`` is the authors' own text, verbatim, as their training data
has it (what their fine-tuned model saw, curly quotes and the missing space after
"untriggered." included); ``authors_inference`` is the variant their inference scripts send
(plain ``.12``, a space after "untriggered."). Both state the emotion, so they exist only in
the A+E->AU mode, the one the authors' code trains.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from auhead_bench.aus import AU_NAMES
from auhead_bench.emotions import EMOTIONS as EMOTIONS
from auhead_bench.emotions import canonical_emotion as canonical_emotion
from auhead_bench_methods.auhead.tokens import target_text

PromptMode = Literal["A->AU", "A->E->AU", "A+E->AU"]
PromptStyle = Literal["suite", "authors", "authors_inference"]
PROMPT_STYLES: tuple[str, ...] = ("suite", "authors", "authors_inference")
PROMPT_MODES: tuple[str, ...] = ("A->AU", "A->E->AU", "A+E->AU")
MODE_ALIASES = {
    "a_au": "A->AU",
    "audio": "A->AU",
    "a_e_au": "A->E->AU",
    "cot": "A->E->AU",
    "ae_au": "A+E->AU",
    "given_emotion": "A+E->AU",
}

# The word the prompt and the model use for each of the suite's emotions (auhead_bench.emotions;
# the authors' MEAD mapping says "surprise").
PROMPT_WORDS = {e: e for e in EMOTIONS} | {"surprised": "surprise"}
EMOTION_PREFIX = "Emotion:"


def normalise_mode(value: str) -> str:
    """A paper mode name (``A->E->AU``) from itself or an alias; ValueError otherwise."""
    text = str(value).strip()
    if text in PROMPT_MODES:
        return text
    key = text.lower().replace("-", "_").replace(">", "").replace("+", "")
    key = re.sub(r"_+", "_", key).strip("_")
    if key in MODE_ALIASES:
        return MODE_ALIASES[key]
    raise ValueError(
        f"unknown prompt mode {value!r}; use one of {', '.join(PROMPT_MODES)} "
        f"(or {', '.join(sorted(MODE_ALIASES))})"
    )


def prompt_word(emotion: str) -> str:
    """The word the prompt uses for an emotion; ValueError naming the known ones."""
    canonical = canonical_emotion(emotion)
    if canonical is None:
        raise ValueError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTIONS)}")
    return PROMPT_WORDS[canonical]


def _instruction() -> str:
    listing = "; ".join(f"AU{i} {name.replace('_', ' ')}" for i, name in enumerate(AU_NAMES))
    return (
        "Split the 16 kHz audio into frames of 3200 samples (5 frames per second). For each "
        f"frame give a {len(AU_NAMES)}-dimensional facial action unit (AU) vector whose "
        f"components, in this fixed order, are: {listing}. Every AU value lies between 0 and "
        "1 and is written with two decimals. List only the AUs that are active in a frame, "
        "as [index, value] pairs; for example [[0, 0.12], [1, 0.1]] means AU0 is 0.12, AU1 "
        "is 0.10 and every other AU is inactive. Answer with one such list per frame. "
    )


INSTRUCTION = _instruction()
QUESTION = "What is the AU sequence of the current audio?"

# The authors' instruction, quoted verbatim as data (laura990501/Qwen-AU-finetune @43b086f):
# make_train_data_jsonl.py, USER_CONTENT (the text every training example was built with).
AUTHORS_TRAINING_TEMPLATE = (
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
    "the current audio is {emotion}. what is the AU sequence of the current audio?"
)
# inference.py, inference_multi_samples.py and inference_multi_samples2.py (the text their
# evaluation sent): no curly quotes around .12 and a space after "untriggered.".
AUTHORS_INFERENCE_TEMPLATE = (
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
    "current audio is {emotion}. what is the AU sequence of the current audio?"
)
AUTHORS_TEMPLATES = {
    "authors": AUTHORS_TRAINING_TEMPLATE,
    "authors_inference": AUTHORS_INFERENCE_TEMPLATE,
}
COT_REQUEST = (
    "First state the emotion of the current audio as 'Emotion: <one of "
    + ", ".join(PROMPT_WORDS[e] for e in EMOTIONS)
    + ">.', then give the AU sequence."
)


def check_style(mode: str, style: str) -> None:
    """ValueError unless prompt style ``style`` exists in prompt mode ``mode``."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; use one of {', '.join(PROMPT_STYLES)}")
    if style in AUTHORS_TEMPLATES and normalise_mode(mode) != "A+E->AU":
        raise ValueError(
            f"prompt style {style!r} states the clip's emotion, so it exists only in prompt "
            f"mode A+E->AU (not {mode}); set prompt_mode A+E->AU or prompt suite"
        )


def build_prompt(mode: str, emotion: str | None = None, style: str = "suite") -> str:
    """The user text for one audio clip in ``mode`` and ``style`` (the audio goes before it)."""
    mode = normalise_mode(mode)
    check_style(mode, style)
    if style in AUTHORS_TEMPLATES:
        if emotion is None:
            raise ValueError("prompt mode A+E->AU needs the clip's emotion")
        return AUTHORS_TEMPLATES[style].format(emotion=prompt_word(emotion))
    if mode == "A+E->AU":
        if emotion is None:
            raise ValueError("prompt mode A+E->AU needs the clip's emotion")
        given = f"The emotion of the current audio is {prompt_word(emotion)}."
        return f"{INSTRUCTION}{given} {QUESTION}"
    if mode == "A->E->AU":
        return f"{INSTRUCTION}{QUESTION} {COT_REQUEST}"
    return f"{INSTRUCTION}{QUESTION}"


def build_answer(mode: str, aus_5fps: np.ndarray, emotion: str | None = None) -> str:
    """The assistant text a model is trained to write in ``mode`` for these 5 fps AUs."""
    mode = normalise_mode(mode)
    answer = target_text(aus_5fps)
    if mode == "A->E->AU":
        if emotion is None:
            raise ValueError("prompt mode A->E->AU trains on the clip's emotion; it has none")
        return f"{EMOTION_PREFIX} {prompt_word(emotion)}. {answer}"
    return answer
