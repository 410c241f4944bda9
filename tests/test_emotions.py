"""The one emotion vocabulary: free text is forgiving, dataset labels only by their aliases."""

from __future__ import annotations

from auhead_bench.emotions import (
    CREMA_D_CODES,
    EMOTIONS,
    HSEMOTION_CLASSES,
    HSEMOTION_LABEL_MAP,
    LABEL_ALIASES,
    RESMASKNET_CLASSES,
    RESMASKNET_LABEL_MAP,
    canonical_emotion,
)


def test_free_text_folds_case_punctuation_and_synonyms():
    assert canonical_emotion("Surprise!") == "surprised"
    assert canonical_emotion("joy") == "happy" and canonical_emotion("ANG") == "angry"
    assert canonical_emotion("bored") is None and canonical_emotion(None) is None


def test_dataset_labels_accept_only_their_aliases():
    assert canonical_emotion(" Happiness ", free_text=False) == "happy"
    assert canonical_emotion("hap", free_text=False) == "happy"
    assert canonical_emotion("joy", free_text=False) is None
    assert canonical_emotion("happy!", free_text=False) is None


def test_every_spelling_and_map_names_the_suite_emotions():
    assert set(CREMA_D_CODES.values()) <= set(EMOTIONS)
    for code, name in CREMA_D_CODES.items():
        assert canonical_emotion(code, free_text=False) == name
    assert set(LABEL_ALIASES.values()) <= set(EMOTIONS)
    for label_map, classes in (
        (RESMASKNET_LABEL_MAP, RESMASKNET_CLASSES),
        (HSEMOTION_LABEL_MAP, HSEMOTION_CLASSES),
    ):
        assert tuple(label_map) == EMOTIONS
        assert {c for c in label_map.values() if c is not None} == set(classes)
