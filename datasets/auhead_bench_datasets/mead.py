"""`mead`: MEAD (Wang et al., ECCV 2020) in its distributed folder tree.

Layout, one folder per identity (M003, W009, ...; the distribution ships ``video.tar`` and
``audio.tar`` per identity, to be extracted in place)::

    <root>/<identity>/video/<camera>/<emotion>/level_<n>/<NNN>.mp4
    <root>/<identity>/audio/<emotion>/level_<n>/<NNN>.m4a

8 emotions (angry, contempt, disgusted, fear, happy, neutral, sad, surprised), intensity
levels 1-3 (neutral has level_1 only), 7 cameras (front by default). Clip ids are
``<identity>/<emotion>/level_<n>/<NNN>`` (``<identity>/<camera>/...`` for other cameras).
The driving audio is the ``.m4a`` next door; where it is missing the video's own track is
used (recorded in the clip's meta), and a clip with neither is excluded.

Default test split: identities M003, M030, W009 and W015 (the held-out speakers of EAMM and
EAT, as this suite recalls them; not checked against their code), every emotion, levels 1-3.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from auhead_bench import BenchError, hookimpl
from auhead_bench.emotions import EMOTIONS
from auhead_bench_datasets.splits import (
    VIDEO_SUFFIXES,
    BenchmarkDataset,
    Candidate,
    EmotionSelectionOptions,
)

CAMERAS = ("front", "down", "left_30", "left_60", "right_30", "right_60", "top")
DEFAULT_TEST_IDENTITIES = ("M003", "M030", "W009", "W015")
IDENTITY = re.compile(r"[MW]\d{3}")
LEVEL = re.compile(r"level_([123])")
NUMBER = re.compile(r"\d{3}")


class MeadOptions(EmotionSelectionOptions):
    camera: str = "front"


class Mead(BenchmarkDataset):
    id = "mead"
    description = "MEAD: 8 emotions x 3 levels (front camera); default split M003 M030 W009 W015."
    version = "1"
    Options = MeadOptions
    layout = "<identity>/video/<camera>/<emotion>/level_<n>/<NNN>.mp4 (+ audio/.../<NNN>.m4a)"
    emotion_names = EMOTIONS

    def default_split(self) -> dict[str, Any]:
        return {"identities": list(DEFAULT_TEST_IDENTITIES), "emotions": "all", "levels": "all"}

    def scan(self, root: Path) -> list[Candidate]:
        camera = self.options.camera
        if camera not in CAMERAS:
            raise BenchError(f"mead: unknown camera {camera!r}", fix=f"one of {list(CAMERAS)}")
        found: list[Candidate] = []
        archives = []
        for person in sorted(root.iterdir()):
            if person.name.startswith(".") or not person.is_dir():
                continue  # the distribution's tar files and READMEs sit beside the folders
            if not IDENTITY.fullmatch(person.name):
                self.ignore(person, "not an identity folder (M### or W###)")
                continue
            videos = person / "video" / camera
            if not videos.is_dir():
                if (person / "video.tar").is_file():
                    archives.append(person / "video.tar")
                else:
                    self.ignore(person, f"has no video/{camera} folder")
                continue
            found.extend(self._scan_person(person, videos))
        if not found and archives:
            raise BenchError(
                f"mead: {len(archives)} identities are still archived",
                path=archives[0],
                fix="extract each video.tar and audio.tar in its identity folder",
            )
        return found

    def _scan_person(self, person: Path, videos: Path) -> list[Candidate]:
        camera = self.options.camera
        found = []
        for path in sorted(videos.rglob("*")):
            if path.name.startswith(".") or path.is_dir():
                continue
            parts = path.relative_to(videos).parts
            if len(parts) != 3:
                self.ignore(path, "expected <emotion>/level_<n>/<NNN>.mp4 under video/<camera>")
                continue
            emotion, level, name = parts
            if emotion not in EMOTIONS:
                self.ignore(path, f"unknown emotion folder {emotion!r}")
                continue
            level_match = LEVEL.fullmatch(level)
            if not level_match:
                self.ignore(path, f"unexpected level folder {level!r} (level_1..level_3)")
                continue
            if path.suffix.lower() not in VIDEO_SUFFIXES or not NUMBER.fullmatch(path.stem):
                self.ignore(path, "expected a three-digit video file name like 001.mp4")
                continue
            audio = person / "audio" / emotion / level / f"{path.stem}.m4a"
            prefix = person.name if camera == "front" else f"{person.name}/{camera}"
            meta = {"camera": camera}
            if not audio.is_file():
                meta["audio_missing"] = str(audio)
            found.append(
                Candidate(
                    id=f"{prefix}/{emotion}/{level}/{path.stem}",
                    video=path,
                    audio=audio if audio.is_file() else None,
                    identity=person.name,
                    emotion=emotion,
                    intensity=int(level_match.group(1)),
                    meta=meta,
                )
            )
        return found


@hookimpl
def register_datasets(register):
    register(Mead)
