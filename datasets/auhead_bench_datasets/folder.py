"""`folder`: any videos under a root, with an optional CSV of labels.

The CSV needs a ``clip_id`` column (the video's path relative to the root, without its
suffix, e.g. ``alice/happy_001``) and may have ``identity``, ``emotion``, ``intensity``,
``audio``, ``reference`` and ``au_labels`` columns (paths relative to the CSV's folder).
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from auhead_bench import BenchError, Clip, Dataset, hookimpl
from auhead_bench.aus import LABELS_FPS_KEY, SOURCE_FPS_KEY
from auhead_bench.dataset import DatasetOptions
from auhead_bench.emotions import EMOTIONS, canonical_emotion
from auhead_bench.errors import MediaError
from auhead_bench_datasets.splits import (
    NoFaceError,
    ProbeCache,
    cached_face_crop,
    framing,
    native_crop_size,
)

log = logging.getLogger("auhead_bench.datasets")

LABEL_COLUMNS = ("identity", "emotion", "intensity", "audio", "reference", "au_labels")


class FolderOptions(DatasetOptions):
    root: Path
    pattern: str = "**/*.mp4"  # glob under root
    labels: Path | None = None  # CSV; relative paths are taken from the working directory
    # A video with no row in the labels CSV: False (default) keeps it unlabelled, warns and
    # lists it in the record (dataset fingerprint "unlabelled"); True refuses the dataset.
    strict_labels: bool = False
    # As for the other datasets: clips shorter than this at 25 fps are excluded (warning,
    # listed in the record); the runner refuses any clip under 2 frames whatever this says.
    min_frames: int = Field(2, ge=1)
    # A face-centred square crop of this side (dlib HOG), cached; None (the default here,
    # unlike MEAD/CREMA-D/HDTF's 512; "native" says the same) keeps the framing. No face
    # found: the clip is excluded.
    crop_size: int | None = Field(None, ge=16)
    crop_scale: float = Field(1.8, ge=1.0)  # crop side / median HOG face-box side
    # The au_labels files' frame rate. None: a CSV's own timestamp column, else the video's
    # rate; either way they are resampled to 25 fps (auhead_bench.aus).
    au_labels_fps: float | None = Field(None, gt=0)

    @field_validator("crop_size", mode="before")
    @classmethod
    def _native(cls, value: Any) -> Any:
        return native_crop_size(value)


class Folder(Dataset):
    id = "folder"
    description = "Videos under a folder (glob pattern) with an optional CSV of labels."
    Options = FolderOptions

    def clips(self) -> list[Clip]:
        options: FolderOptions = self.options
        root = options.root.expanduser()
        if not root.is_dir():
            raise BenchError(
                "dataset folder not found",
                path=root,
                fix="set datasets[].options.root to an existing folder",
            )
        videos = sorted(p for p in root.glob(options.pattern) if p.is_file())
        if not videos:
            raise BenchError(
                f"no file matches {options.pattern!r}",
                path=root,
                fix="check the folder or set options.pattern",
            )
        labels = self._labels(options.labels) if options.labels else {}
        clips = []
        self._excluded: dict[str, str] = {}
        self._unlabelled: list[str] = []
        probes = ProbeCache(self.cache_dir / "folder" / "probe.json")
        for video in videos:
            clip_id = video.relative_to(root).with_suffix("").as_posix()
            if options.labels and clip_id not in labels:
                self._unlabelled.append(clip_id)
            row = labels.pop(clip_id, {})
            source = self._check(clip_id, video, probes)
            if source is None:
                continue
            meta: dict[str, Any] = {}
            if source != video:  # a 25 fps crop: the labels follow the original's frames
                meta[SOURCE_FPS_KEY] = probes.get(video)["fps"]
            if options.au_labels_fps is not None and row.get("au_labels"):
                meta[LABELS_FPS_KEY] = options.au_labels_fps
            clips.append(
                Clip(
                    id=clip_id,
                    video=source,
                    identity=row.get("identity"),
                    emotion=row.get("emotion"),
                    intensity=int(row["intensity"]) if row.get("intensity") else None,
                    audio=row.get("audio"),
                    reference=row.get("reference"),
                    au_labels=row.get("au_labels"),
                    meta=meta,
                )
            )
        probes.save()
        if self._excluded:
            shown = "; ".join(f"{k} ({v})" for k, v in sorted(self._excluded.items())[:20])
            log.warning(
                "folder: excluded %d clip(s), listed in the run record: %s",
                len(self._excluded), shown,
            )
        self._check_unlabelled(options)
        if labels:
            missing = ", ".join(sorted(labels)[:5])
            raise BenchError(
                f"{len(labels)} labelled clip(s) have no video under {root}: {missing}",
                path=options.labels,
                fix="fix the clip_id column or the folder",
            )
        return clips

    def _check_unlabelled(self, options: FolderOptions) -> None:
        """Videos the labels CSV has no row for: they would vanish from per-emotion tables."""
        if not self._unlabelled:
            return
        shown = ", ".join(self._unlabelled[:5]) + (" ..." if len(self._unlabelled) > 5 else "")
        if options.strict_labels:
            raise BenchError(
                f"{len(self._unlabelled)} video(s) have no row in the labels CSV: {shown}",
                path=options.labels,
                fix="add their rows, or set strict_labels: false to keep them unlabelled",
            )
        log.warning(
            "folder: %d video(s) have no row in the labels CSV %s (unlabelled: no emotion, "
            "identity or AU labels; listed in the record): %s",
            len(self._unlabelled), options.labels.name, shown,
        )

    def _check(self, clip_id: str, video: Path, probes: ProbeCache) -> Path | None:
        """The video to use (cropped if ``crop_size``), or None: excluded, with the reason.
        Unreadable files are left in: the runner's prepare step reports them."""
        options: FolderOptions = self.options
        try:
            frames = probes.get(video)["frames"]
        except MediaError:
            return video
        if frames < options.min_frames:
            self._excluded[clip_id] = (
                f"{frames} frames at 25 fps < min_frames {options.min_frames}"
            )
            return None
        if options.crop_size is None:
            return video
        try:
            cropped, _ = cached_face_crop(
                video, self.cache_dir / "folder" / "crops", options.crop_size,
                options.crop_scale, sha=probes.sha256(video), lossless=self.lossless,
            )
        except NoFaceError as exc:
            self._excluded[clip_id] = str(exc)
            return None
        except MediaError:
            return video
        return cropped

    def preparation(self) -> dict[str, Any]:
        return framing(self.options.crop_size, self.options.crop_scale)

    def fingerprint(self) -> dict[str, Any]:
        clips = self.clips()
        options: FolderOptions = self.options
        return {
            "version": self.version,
            "clips": len(clips),
            "min_frames": options.min_frames,
            "crop": None if options.crop_size is None
            else {"size": options.crop_size, "scale": options.crop_scale},
            "excluded": dict(sorted(self._excluded.items())),
            **({"unlabelled": sorted(self._unlabelled)} if self._unlabelled else {}),
            **({"au_labels_fps": options.au_labels_fps} if options.au_labels_fps else {}),
        }

    @staticmethod
    def _labels(path: Path) -> dict[str, dict]:
        import pandas as pd

        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise BenchError("labels CSV not found", path=path) from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise BenchError(
                f"labels CSV cannot be parsed ({exc})".replace("\n", " "), path=path
            ) from None
        if "clip_id" not in table.columns:
            raise BenchError(
                "labels CSV has no clip_id column",
                path=path,
                fix="add a clip_id column: video path under root, no suffix",
            )
        unknown = [c for c in table.columns if c not in ("clip_id", *LABEL_COLUMNS)]
        if unknown:  # a misspelt column would silently lose every label in it
            hints = {
                c: difflib.get_close_matches(c, LABEL_COLUMNS, n=1, cutoff=0.6) for c in unknown
            }
            guesses = [f"{c!r} -> {h[0]!r}" for c, h in hints.items() if h]
            raise BenchError(
                f"labels CSV has unknown column(s) {unknown}"
                + (f" (did you mean {', '.join(guesses)}?)" if guesses else ""),
                path=path,
                fix=f"columns are clip_id and {', '.join(LABEL_COLUMNS)}",
            )
        duplicated = table["clip_id"][table["clip_id"].duplicated()].tolist()
        if duplicated:
            raise BenchError(f"labels CSV repeats clip ids {duplicated[:5]}", path=path)
        rows = {}
        for record in table.to_dict(orient="records"):
            row = {k: (v or None) for k, v in record.items() if k in LABEL_COLUMNS}
            for column in ("audio", "reference", "au_labels"):
                if row.get(column):
                    row[column] = (path.parent / row[column]).resolve()
            if row.get("intensity") and not str(row["intensity"]).isdigit():
                raise BenchError(
                    f"intensity {row['intensity']!r} of clip "
                    f"{record['clip_id']!r} is not an integer",
                    path=path,
                )
            if row.get("emotion"):
                emotion = canonical_emotion(row["emotion"], free_text=False)
                if emotion is None:
                    raise BenchError(
                        f"unknown emotion {row['emotion']!r} of clip {record['clip_id']!r}",
                        path=path,
                        fix=f"emotions are {', '.join(EMOTIONS)}",
                    )
                row["emotion"] = emotion
            rows[record["clip_id"]] = row
        return rows


@hookimpl
def register_datasets(register):
    register(Folder)
