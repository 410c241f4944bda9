"""The suite's one emotion vocabulary: names, other spellings, and the classifiers' classes.

Datasets label clips, methods state or are prompted with emotions, and metrics compare both
with classifiers' outputs; all of them spell emotions through this module so that per-emotion
tables line up. Names are MEAD's 8 (CREMA-D's 6 are a subset).

The dicts below enter metric protocols (hence cache keys and records): change them only
together with the metrics' versions.
"""

from __future__ import annotations

import re

EMOTIONS: tuple[str, ...] = (
    "angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised",
)  # fmt: skip

# CREMA-D's file-name codes, in its documentation's order (its clips are labelled by name).
CREMA_D_CODES: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgusted",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

# Other spellings of dataset labels: CREMA-D codes (lower case) and noun forms.
LABEL_ALIASES: dict[str, str] = {
    "ang": "angry", "anger": "angry",
    "dis": "disgusted", "disgust": "disgusted",
    "fea": "fear", "fearful": "fear",
    "hap": "happy", "happiness": "happy",
    "neu": "neutral",
    "sadness": "sad",
    "sur": "surprised", "surprise": "surprised",
}  # fmt: skip

# Further words accepted in free text (a prompt argument, a model's stated emotion).
FREE_TEXT_SYNONYMS: dict[str, str] = {
    "angrily": "angry", "mad": "angry",
    "contemptuous": "contempt", "con": "contempt",
    "disgusting": "disgusted",
    "afraid": "fear", "scared": "fear", "fearfully": "fear",
    "joy": "happy", "joyful": "happy",
    "calm": "neutral",
    "sadly": "sad",
    "surprising": "surprised",
}  # fmt: skip


def canonical_emotion(word: str | None, *, free_text: bool = True) -> str | None:
    """The suite's name for an emotion word, or None when it names none of the 8.

    ``free_text`` (a model's or a user's word): case and non-letters are ignored and the free
    text synonyms count ('Surprise!', 'joy' -> 'surprised', 'happy'). Otherwise (a dataset's
    label, as the emotion-accuracy metrics read it): only case, surrounding spaces and
    ``LABEL_ALIASES`` are forgiven.
    """
    if word is None:
        return None
    if free_text:
        key = re.sub(r"[^a-z]", "", str(word).lower())
        key = LABEL_ALIASES.get(key) or FREE_TEXT_SYNONYMS.get(key, key)
    else:
        key = str(word).strip().lower()
        key = LABEL_ALIASES.get(key, key)
    return key if key in EMOTIONS else None


# ---- classifiers' classes and what each dataset label is for them ----------------------------

# ResMaskNet's 7 classes (py-feat's emotion columns, FER2013 classes), in py-feat's order.
RESMASKNET_CLASSES: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral",
)  # fmt: skip
RESMASKNET_LABEL_MAP: dict[str, str | None] = {
    "angry": "anger",
    "contempt": None,  # ResMaskNet (FER2013 classes) has no contempt
    "disgusted": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "neutral": "neutral",
    "sad": "sadness",
    "surprised": "surprise",
}

# HSEmotion's idx_to_class for its 8-class models (AffectNet order).
HSEMOTION_CLASSES: tuple[str, ...] = (
    "Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise",
)  # fmt: skip
HSEMOTION_LABEL_MAP: dict[str, str | None] = {
    "angry": "Anger",
    "contempt": "Contempt",
    "disgusted": "Disgust",
    "fear": "Fear",
    "happy": "Happiness",
    "neutral": "Neutral",
    "sad": "Sadness",
    "surprised": "Surprise",
}
