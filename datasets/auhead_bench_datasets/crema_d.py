"""`crema_d`: CREMA-D (Cao et al., 2014) as its repository ships it.

Layout (CheyneyComputerScience/CREMA-D; fetch the media with git-lfs)::

    <root>/VideoFlash/<ActorID>_<Sentence>_<Emotion>_<Level>.flv
    <root>/AudioWAV/<same name>.wav        (optional: else the video's own track is used)

e.g. ``1001_DFA_ANG_XX``: actors 1001-1091, 12 sentence codes, 6 emotions (ANG DIS FEA HAP
NEU SAD, recorded under MEAD's names angry, disgusted, fear, happy, neutral, sad so that
per-emotion tables line up; the code stays in the clip's meta), levels LO/MD/HI (intensity
1/2/3) and XX (unspecified: intensity None, dropped by any ``levels`` filter).
``options.emotions`` takes either spelling. Clip ids are the file stems.

Default test split: actors 1082-1091 (the last ten), every emotion, sentence and level. No
split is standard for talking heads on CREMA-D; this one is the suite's, stated so results
can be compared.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from auhead_bench import BenchError, hookimpl
from auhead_bench.emotions import CREMA_D_CODES
from auhead_bench_datasets.splits import (
    VIDEO_SUFFIXES,
    BenchmarkDataset,
    Candidate,
    EmotionSelectionOptions,
)

EMOTION_CODES = CREMA_D_CODES
LEVELS = {"LO": 1, "MD": 2, "HI": 3, "XX": None}
SENTENCES = frozenset(
    {"IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI"}
)
ACTORS = range(1001, 1092)
DEFAULT_TEST_ACTORS = tuple(str(a) for a in range(1082, 1092))
NAME = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})")


class CremaDOptions(EmotionSelectionOptions):
    video_dir: str = "VideoFlash"
    audio_dir: str = "AudioWAV"


class CremaD(BenchmarkDataset):
    id = "crema_d"
    description = "CREMA-D: 91 actors, 6 emotions; default test split actors 1082-1091."
    version = "1"
    Options = CremaDOptions
    layout = "VideoFlash/<Actor>_<Sentence>_<EMO>_<LV>.flv (+ AudioWAV/<same>.wav)"
    emotion_names = tuple(EMOTION_CODES.values())

    def default_split(self) -> dict[str, Any]:
        return {"identities": list(DEFAULT_TEST_ACTORS), "emotions": "all", "levels": "all"}

    def emotion_alias(self, value: str) -> str:
        return EMOTION_CODES.get(value.upper(), value.lower())

    def scan(self, root: Path) -> list[Candidate]:
        videos = root / self.options.video_dir
        if not videos.is_dir():
            raise BenchError(
                f"crema_d: no {self.options.video_dir} folder",
                path=root,
                fix=f"point root at the CREMA-D checkout ({self.layout}); "
                "run `git lfs pull` there",
            )
        audio_dir = root / self.options.audio_dir
        found = []
        for path in sorted(videos.iterdir()):
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                self.ignore(path, "not a video file")
                continue
            reason = self._bad_name(path.stem)
            if reason:
                self.ignore(path, reason)
                continue
            actor, sentence, code, level = NAME.fullmatch(path.stem).groups()
            audio = audio_dir / f"{path.stem}.wav"
            meta = {"sentence": sentence, "emotion_code": code, "level_code": level}
            if not audio.is_file():
                meta["audio_missing"] = str(audio)
            found.append(
                Candidate(
                    id=path.stem,
                    video=path,
                    audio=audio if audio.is_file() else None,
                    identity=actor,
                    emotion=EMOTION_CODES[code],
                    intensity=LEVELS[level],
                    meta=meta,
                )
            )
        return found

    @staticmethod
    def _bad_name(stem: str) -> str | None:
        match = NAME.fullmatch(stem)
        if not match:
            return "expected <ActorID>_<Sentence>_<Emotion>_<Level>, e.g. 1001_DFA_ANG_XX"
        actor, sentence, code, level = match.groups()
        if int(actor) not in ACTORS:
            return f"actor {actor} is outside 1001-1091"
        if sentence not in SENTENCES:
            return f"unknown sentence code {sentence}"
        if code not in EMOTION_CODES:
            return f"unknown emotion code {code} (ANG DIS FEA HAP NEU SAD)"
        if level not in LEVELS:
            return f"unknown level code {level} (LO MD HI XX)"
        return None


@hookimpl
def register_datasets(register):
    register(CremaD)
