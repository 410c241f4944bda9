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
COT_REQUEST = (
    "First state the emotion of the current audio as 'Emotion: <one of "
    + ", ".join(PROMPT_WORDS[e] for e in EMOTIONS)
    + ">.', then give the AU sequence."
)


def build_prompt(mode: str, emotion: str | None = None) -> str:
    """The user text for one audio clip in ``mode`` (the audio goes before it)."""
    mode = normalise_mode(mode)
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
