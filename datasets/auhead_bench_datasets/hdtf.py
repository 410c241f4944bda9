"""`hdtf`: HDTF (Zhang et al., CVPR 2021), the clips cut from its YouTube lists.

HDTF is distributed as YouTube ids with time and crop annotations (``RD``, ``WDA`` and ``WRA``
lists); its own script (or yours) downloads and cuts them into clips named
``<RD|WDA|WRA>_<Name>_<NNN>.mp4``, e.g. ``WDA_BarackObama_000.mp4``. Layout: those files
anywhere under the root (``pattern``, default every file in every subfolder); the audio is the
video's own track. No emotion labels: ``identity`` is ``<Name>``, the list (RD/WDA/WRA) is in
the clip's meta. Clip ids are the file stems.

Default split: every clip found. HDTF has no official test split; pin one with
``clip_list`` (or ``identities``) to compare with a paper.
"""

from __future__ import annotations

import re
from pathlib import Path

from auhead_bench import hookimpl
from auhead_bench_datasets.splits import (
    VIDEO_SUFFIXES,
    BenchmarkDataset,
    Candidate,
    SelectionOptions,
)

NAME = re.compile(r"(RD|WDA|WRA)_([A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*?)_(\d{1,4})")


class HdtfOptions(SelectionOptions):
    pattern: str = "**/*"  # glob under root; non-video files are skipped silently


class Hdtf(BenchmarkDataset):
    id = "hdtf"
    description = "HDTF clips (<RD|WDA|WRA>_<Name>_<NNN>.mp4); no emotion labels."
    version = "1"
    Options = HdtfOptions
    layout = "<RD|WDA|WRA>_<Name>_<NNN>.mp4 files (any subfolders)"

    def scan(self, root: Path) -> list[Candidate]:
        found = []
        for path in sorted(root.glob(self.options.pattern)):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                continue  # HDTF annotation .txt files live beside the clips
            match = NAME.fullmatch(path.stem)
            if not match:
                self.ignore(path, "expected <RD|WDA|WRA>_<Name>_<NNN>, e.g. WDA_BarackObama_000")
                continue
            source, name, _ = match.groups()
            found.append(
                Candidate(id=path.stem, video=path, identity=name, meta={"list": source})
            )
        return found


@hookimpl
def register_datasets(register):
    register(Hdtf)
