"""What MEAD, CREMA-D and HDTF share: split selection, up-front checks, cached preprocessing.

Each dataset module only knows its own file naming (``scan``) and its default split; the rest
lives here so that the three behave alike:

- Selection: ``identities`` / ``emotions`` / ``levels`` (None: the dataset's documented
  default split, ``"all"``: everything), an optional ``clip_list`` file, then ``max_clips``
  spread round-robin over (identity, emotion, level) groups instead of the first N by name.
- Checks, before any work: files whose names do not follow the dataset's scheme are ignored
  with a warning (``strict: true`` makes them an error); duplicate clip ids are an error
  naming both files; clips shorter than ``min_frames`` at 25 fps, or with no audio at all,
  are *excluded* with a warning. Ignored files and excluded clips (with the reason) are
  listed in ``fingerprint()``, which the runner writes into every run record. Unreadable
  files are left in: the runner's prepare step reports them, and ``skip_bad_clips`` decides
  whether that stops the run.
- Preprocessing, cached under the dataset's cache folder by source sha256 and parameters:
  a face-centred square crop (``crop_size``, dlib's HOG detector on a few frames; ``native``
  or null keeps the source framing), a reference image taken at ``reference_frame``,
  optional per-clip AU label CSVs. A crop is encoded as the run's ``intermediate`` says
  (lossless FFV1 or x264 crf 18). The runner then normalises every clip to 25 fps / 16 kHz
  mono as for any dataset.
"""

from __future__ import annotations

import json
import logging
import re
from abc import abstractmethod
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import av
import numpy as np
from pydantic import Field, field_validator

from auhead_bench import BenchError, Clip, Dataset, media
from auhead_bench.aus import AU_NAMES, LABELS_FPS_KEY, SOURCE_FPS_KEY
from auhead_bench.cache import content_key, write_json_atomic
from auhead_bench.dataset import DatasetOptions
from auhead_bench.errors import MediaError
from auhead_bench.faces import hog_detector

log = logging.getLogger("auhead_bench.datasets")

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".flv"})
PREPROCESS_VERSION = "1"
DETECT_LONG_SIDE = 640  # HOG runs on a copy at most this long: talking-head faces are large
DETECT_SAMPLES = 8  # frames sampled per clip for the crop box
LISTED = 20  # ignored files / excluded clips shown in warnings (all are in the fingerprint)


class SelectionOptions(DatasetOptions):
    """Options every benchmark dataset accepts (see the module docstring)."""

    root: Path
    identities: list[str] | Literal["all"] | None = None  # None: the documented default split
    clip_list: Path | None = None  # text file, one clip id per line ('#' starts a comment)
    strict: bool = False  # True: a file with an unexpected name is an error, not a warning
    min_frames: int = Field(16, ge=1)  # at 25 fps; 16 = one FVD clip
    # A face-centred square crop of this side in pixels; "native" (or null) keeps the source
    # framing and size. The record's ``preparation.framing`` says which was used.
    crop_size: int | None = Field(512, ge=16)
    crop_scale: float = Field(1.8, ge=1.0)  # crop side / median HOG face-box side
    reference_frame: int | None = Field(None, ge=0)  # None: the first frame (runner default)
    # <dir>/<clip_id>.csv with AU columns, one row per frame, or <dir>/<clip_id>.npy (T, 24)
    au_labels_dir: Path | None = None
    # The label files' frame rate. None: a CSV's own timestamp column, else the source
    # video's rate (MEAD: 30 fps); either way they are resampled to 25 fps (aus.py).
    au_labels_fps: float | None = Field(None, gt=0)

    @field_validator("crop_size", mode="before")
    @classmethod
    def _native(cls, value: Any) -> Any:
        return native_crop_size(value)


class EmotionSelectionOptions(SelectionOptions):
    """Selection options of datasets with emotion and intensity labels."""

    emotions: list[str] | Literal["all"] | None = None
    levels: list[int] | Literal["all"] | None = None


@dataclass
class Candidate:
    """A clip found by ``scan``, before selection and preprocessing."""

    id: str
    video: Path
    audio: Path | None = None  # a separate audio file the dataset ships (None: embedded)
    identity: str | None = None
    emotion: str | None = None
    intensity: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class BenchmarkDataset(Dataset):
    """A dataset with a naming scheme: subclasses implement ``scan`` and ``default_split``."""

    Options: ClassVar[type[SelectionOptions]] = SelectionOptions
    layout: ClassVar[str]  # the expected layout, quoted in errors
    emotion_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: SelectionOptions, cache_dir: Path):
        super().__init__(options, cache_dir)
        self._clips: list[Clip] | None = None
        self._ignored: list[tuple[str, str]] = []
        self._excluded: dict[str, str] = {}
        self._notes: list[str] = []

    # ---- what a dataset implements ---------------------------------------------------------

    @abstractmethod
    def scan(self, root: Path) -> list[Candidate]:
        """Every clip under ``root``; call ``self.ignore(path, reason)`` for unexpected names."""

    def default_split(self) -> dict[str, Any]:
        """The documented default split: values for ``identities``/``emotions``/``levels``."""
        return {}

    def emotion_alias(self, value: str) -> str:
        """Map a user's emotion spelling to the dataset's label (CREMA-D accepts its codes)."""
        return value.lower()

    # ---- the pipeline ----------------------------------------------------------------------

    def ignore(self, path: Path, reason: str) -> None:
        self._ignored.append((str(path), reason))

    def clips(self) -> list[Clip]:
        if self._clips is None:
            self._clips = self._build()
        return list(self._clips)

    @property
    def folder(self) -> Path:
        """This dataset's cache folder (crops, reference images, probe results)."""
        return self.cache_dir / self.id

    def _build(self) -> list[Clip]:
        options = self.options
        self._ignored, self._excluded, self._notes = [], {}, []
        root = options.root.expanduser()
        if not root.is_dir():
            raise BenchError(
                f"{self.id} folder not found",
                path=root,
                fix=f"set datasets[].options.root to the folder holding {self.layout}",
            )
        candidates = self.scan(root)
        self._report_ignored()
        by_id: dict[str, list[Candidate]] = defaultdict(list)
        for cand in candidates:
            by_id[cand.id].append(cand)
        for clip_id, same in sorted(by_id.items()):
            if len(same) > 1:
                raise BenchError(
                    f"duplicate clip id {clip_id!r}: {same[0].video} and {same[1].video}",
                    path=same[1].video,
                    fix="keep one file per clip (e.g. remove converted copies)",
                )
        if not candidates:
            raise BenchError(
                f"no {self.id} clip found", path=root, fix=f"expected layout: {self.layout}"
            )
        selected = self._select(candidates)
        probes = ProbeCache(self.folder / "probe.json")
        usable = self._check(selected, probes)
        if options.max_clips is not None:
            usable = balanced(usable, options.max_clips)
        clips = [self._preprocess(cand, probes) for cand in usable]
        clips = [clip for clip in clips if clip is not None]
        probes.save()
        self._report_excluded()
        if not clips:
            raise BenchError(
                f"{self.id}: every selected clip was excluded ({len(self._excluded)})",
                path=root,
                fix="see the warnings above; lower min_frames or change the selection",
            )
        return sorted(clips, key=lambda c: c.id)

    # ---- selection -------------------------------------------------------------------------

    def selection(self) -> dict[str, Any]:
        """The resolved identities / emotions / levels (None: no filter)."""
        defaults = self.default_split()
        resolved: dict[str, Any] = {}
        for name in ("identities", "emotions", "levels"):
            if name not in type(self.options).model_fields:
                continue
            value = getattr(self.options, name)
            if value is None:
                value = defaults.get(name)
            resolved[name] = None if value == "all" else value
        return resolved

    def _select(self, candidates: list[Candidate]) -> list[Candidate]:
        chosen = self.selection()
        identities = chosen.get("identities")
        emotions = chosen.get("emotions")
        levels = chosen.get("levels")
        if emotions is not None:
            emotions = [self.emotion_alias(e) for e in emotions]
            unknown = [e for e in emotions if e not in self.emotion_names]
            if unknown:
                raise BenchError(
                    f"{self.id}: unknown emotion(s) {unknown}",
                    fix=f"options.emotions takes {list(self.emotion_names)}",
                )
        keep = [
            c
            for c in candidates
            if (identities is None or c.identity in identities)
            and (emotions is None or c.emotion in emotions)
            and (levels is None or c.intensity in levels)
        ]
        if identities is not None:
            present = {c.identity for c in candidates}
            absent = [i for i in identities if i not in present]
            if absent:
                self._notes.append(f"identities not in the tree: {absent}")
                log.warning(
                    "%s: identities not found under %s: %s",
                    self.id, self.options.root, ", ".join(absent),
                )
        if self.options.clip_list is not None:
            wanted = read_clip_list(self.options.clip_list)
            known = {c.id for c in keep}
            missing = [i for i in wanted if i not in known]
            if missing:
                raise BenchError(
                    f"{len(missing)} listed clip id(s) are not in the selection: "
                    f"{', '.join(missing[:5])}",
                    path=self.options.clip_list,
                    fix=f"ids look like {keep[0].id if keep else '...'}; check the list "
                    "and the identities/emotions/levels options",
                )
            wanted_set = set(wanted)
            keep = [c for c in keep if c.id in wanted_set]
        if not keep:
            present = sorted({str(c.identity) for c in candidates})
            raise BenchError(
                f"{self.id}: no clip matches the selection {chosen}",
                path=self.options.root,
                fix=f"the tree holds identities {present[:10]}; set identities/emotions/levels",
            )
        return sorted(keep, key=lambda c: c.id)

    # ---- checks ----------------------------------------------------------------------------

    def _check(self, candidates: list[Candidate], probes: ProbeCache) -> list[Candidate]:
        """Exclude clips too short for the metrics or without any audio (probes are cached)."""
        usable = []
        for cand in candidates:
            try:
                probe = probes.get(cand.video)
            except MediaError:
                usable.append(cand)  # unreadable: the runner's prepare step reports it
                continue
            if probe["frames"] < self.options.min_frames:
                self._excluded[cand.id] = (
                    f"{probe['frames']} frames at 25 fps < min_frames {self.options.min_frames}"
                )
                continue
            if cand.audio is None and not probe["has_audio"]:
                expected = cand.meta.get("audio_missing")
                where = f"no {expected} and " if expected else ""
                self._excluded[cand.id] = f"no audio ({where}no audio track in the video)"
                continue
            cand.meta["frames_25fps"] = probe["frames"]
            cand.meta[SOURCE_FPS_KEY] = probe["fps"]  # the crop is 25 fps; labels are not
            usable.append(cand)
        return usable

    # ---- preprocessing ---------------------------------------------------------------------

    def _preprocess(self, cand: Candidate, probes: ProbeCache) -> Clip | None:
        options = self.options
        video, meta = cand.video, dict(cand.meta)
        meta["source"] = str(cand.video)
        meta["audio_source"] = "separate file" if cand.audio is not None else "video track"
        if options.crop_size is not None:
            try:
                video, crop = cached_face_crop(
                    cand.video, self.folder / "crops", options.crop_size, options.crop_scale,
                    sha=probes.sha256(cand.video), lossless=self.lossless,
                )
                meta["crop"] = crop
            except NoFaceError as exc:
                self._excluded[cand.id] = str(exc)
                return None
            except MediaError:
                pass  # unreadable: left for the runner's prepare step to report
        reference = None
        if options.reference_frame is not None:
            try:
                reference = cached_reference(
                    video, self.folder / "references", options.reference_frame
                )
            except FrameIndexError as exc:
                self._excluded[cand.id] = str(exc)
                return None
            except MediaError:
                pass
        meta["reference"] = (
            "first frame" if options.reference_frame is None else
            f"frame {options.reference_frame} at 25 fps"
        )
        au_labels = None
        if options.au_labels_dir is not None:
            au_labels = self._au_labels(cand.id)
            meta["au_labels"] = "file" if au_labels is not None else "missing"
            if options.au_labels_fps is not None:
                meta[LABELS_FPS_KEY] = options.au_labels_fps
        return Clip(
            id=cand.id,
            video=video,
            identity=cand.identity,
            emotion=cand.emotion,
            intensity=cand.intensity,
            audio=cand.audio,
            reference=reference,
            au_labels=au_labels,
            meta=meta,
        )

    def _au_labels(self, clip_id: str) -> Path | None:
        folder = self.options.au_labels_dir.expanduser()
        if not folder.is_dir():
            raise BenchError(
                "AU labels folder not found",
                path=folder,
                fix="set au_labels_dir to a folder of <clip_id>.csv files, or remove it",
            )
        path = folder / f"{clip_id}.csv"
        array = folder / f"{clip_id}.npy"  # AUHead's (T, 24) FEAFA+ tracks
        if array.is_file():
            return array
        if not path.is_file():
            self._notes.append(f"no AU labels for {clip_id}")
            log.warning("%s: no AU labels for clip %s (expected %s)", self.id, clip_id, path)
            return None
        check_au_csv(path)
        return path

    # ---- reporting -------------------------------------------------------------------------

    def _report_ignored(self) -> None:
        if not self._ignored:
            return
        first_path, first_reason = self._ignored[0]
        if self.options.strict:
            raise BenchError(
                f"{len(self._ignored)} file(s) do not follow the {self.id} naming; "
                f"first: {first_reason}",
                path=first_path,
                fix=f"rename or remove them (layout: {self.layout}), "
                "or set strict: false to ignore them",
            )
        shown = "; ".join(f"{p} ({r})" for p, r in self._ignored[:LISTED])
        more = f" (+{len(self._ignored) - LISTED} more)" if len(self._ignored) > LISTED else ""
        log.warning(
            "%s: ignored %d file(s) with unexpected names: %s%s",
            self.id, len(self._ignored), shown, more,
        )

    def _report_excluded(self) -> None:
        if not self._excluded:
            return
        items = sorted(self._excluded.items())
        shown = "; ".join(f"{k} ({v})" for k, v in items[:LISTED])
        more = f" (+{len(items) - LISTED} more)" if len(items) > LISTED else ""
        log.warning(
            "%s: excluded %d clip(s), listed in the run record: %s%s",
            self.id, len(items), shown, more,
        )

    def fingerprint(self) -> dict[str, Any]:
        """Selection, checks and preprocessing: everything that decides the clips' content."""
        clips = self.clips()
        options = self.options
        return {
            "version": self.version,
            "root": str(options.root),
            "selection": {
                **self.selection(),
                "clip_list": str(options.clip_list) if options.clip_list else None,
                "max_clips": options.max_clips,
            },
            "clips": len(clips),
            "clip_ids_sha256": content_key(ids=[c.id for c in clips]),
            "excluded": dict(sorted(self._excluded.items())),
            "ignored": [f"{p} ({r})" for p, r in self._ignored[:100]],
            "ignored_count": len(self._ignored),
            "notes": self._notes[:100],
            "preprocess": {
                "version": PREPROCESS_VERSION,
                "fps": media.FPS,
                "sample_rate": media.SAMPLE_RATE,
                "min_frames": options.min_frames,
                "crop": None
                if options.crop_size is None
                else {
                    "size": options.crop_size,
                    "scale": options.crop_scale,
                    "detector": "dlib HOG frontal face detector",
                    "samples": DETECT_SAMPLES,
                },
                "reference": "first frame"
                if options.reference_frame is None
                else f"frame {options.reference_frame}",
                "au_labels_dir": str(options.au_labels_dir) if options.au_labels_dir else None,
                **({"au_labels_fps": options.au_labels_fps} if options.au_labels_fps else {}),
            },
        }

    def preparation(self) -> dict[str, Any]:
        return framing(self.options.crop_size, self.options.crop_scale)


# ---- selection helpers -----------------------------------------------------------------------


def balanced(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """``limit`` clips interleaved over identities, then emotions, then levels; sorted by id.

    The first N by name would be one identity's angry clips; this keeps a small run
    representative (every identity first, then every emotion of each...) and deterministic.
    """
    tree: dict = {}
    for cand in sorted(candidates, key=lambda c: c.id):
        node = tree
        for key in (str(cand.identity), str(cand.emotion), str(cand.intensity)):
            node = node.setdefault(key, {})
        node.setdefault("", []).append(cand)

    def interleave(node: dict) -> list[Candidate]:
        if "" in node:
            return list(node[""])
        lists = [interleave(node[key]) for key in sorted(node)]
        merged = []
        for depth in range(max(len(items) for items in lists)):
            merged += [items[depth] for items in lists if depth < len(items)]
        return merged

    return sorted(interleave(tree)[:limit], key=lambda c: c.id)


def read_clip_list(path: Path) -> list[str]:
    """Clip ids from a text file: one per line, blank lines and '#' comments skipped."""
    path = path.expanduser()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BenchError("clip list not found", path=path, fix="fix options.clip_list") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"clip list cannot be read ({exc})", path=path) from None
    ids = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise BenchError("clip list is empty", path=path, fix="one clip id per line")
    return ids


AU_COLUMN = re.compile(r"^\s*AU\s*\d{1,2}", re.IGNORECASE)


def check_au_csv(path: Path) -> None:
    """A label file must be a CSV whose header names at least one AU column (AU01, AU12...)."""
    try:
        with open(path, encoding="utf-8") as handle:
            header = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"AU labels cannot be read ({exc})", path=path) from None
    columns = [c.strip().strip('"') for c in header.split(",")]
    feafa = set(AU_NAMES) <= set(columns)  # AUHead's 24 FEAFA+ AUs, by name
    if not feafa and not any(AU_COLUMN.match(c) for c in columns):
        raise BenchError(
            "AU labels CSV has no AU column in its header",
            path=path,
            fix="one row per frame, columns AU01,AU02,... (py-feat's names) or AUHead's 24 "
            "FEAFA+ names",
        )


# ---- probing, cached by path + size + mtime ---------------------------------------------------


class ProbeCache:
    """Frame count at 25 fps and audio presence per file, remembered between runs."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def _entry(self, video: Path) -> dict[str, Any] | None:
        """The remembered entry if the file is unchanged (same size and mtime), else None."""
        if not video.exists():
            return None
        stat = video.stat()
        entry = self.entries.get(str(video.resolve()))
        if entry and entry["size"] == stat.st_size and entry["mtime"] == stat.st_mtime_ns:
            return entry
        return None

    def get(self, video: Path) -> dict[str, Any]:
        entry = self._entry(video)
        if entry is not None and "frames" in entry and "fps" in entry:
            return entry
        probe = probe_video(video)  # raises MediaError for missing or unreadable files
        stat = video.stat()
        self.entries[str(video.resolve())] = {
            **probe, "size": stat.st_size, "mtime": stat.st_mtime_ns
        }
        self.dirty = True
        return probe

    def sha256(self, video: Path) -> str:
        """The file's sha256, hashed once per content (MEAD's 1080p sources are large)."""
        entry = self._entry(video)
        if entry is not None and "sha256" in entry:
            return entry["sha256"]
        media.check_file(video)
        digest = media.sha256_file(video)
        if entry is None:
            stat = video.stat()
            entry = {"size": stat.st_size, "mtime": stat.st_mtime_ns}
            self.entries[str(video.resolve())] = entry
        entry["sha256"] = digest
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.dirty:
            write_json_atomic(self.path, self.entries)
            self.dirty = False


def probe_video(path: Path) -> dict[str, Any]:
    """Frames at 25 fps (header count or duration; decoded only if neither), the source
    frame rate and audio presence.

    Raises MediaError for missing, empty or unreadable files.
    """
    media.check_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("has no video stream", path=path, fix="pass a video file")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0) or float(media.FPS)
            if stream.frames:
                seconds = stream.frames / rate
            elif stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / 1_000_000
            else:
                seconds = sum(1 for _ in container.decode(stream)) / rate
            has_audio = bool(container.streams.audio)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(f"cannot be read as media ({exc})", path=path) from exc
    return {"frames": int(round(seconds * media.FPS)), "fps": rate, "has_audio": has_audio}


# ---- face-centred crop -----------------------------------------------------------------------


def native_crop_size(value: Any) -> Any:
    """``crop_size: native`` is None (no crop), so both spellings name the same options (and
    record id); any other text is refused with what the option takes."""
    if isinstance(value, str):
        if value.strip().lower() == "native":
            return None
        if not value.strip().isdigit():
            raise ValueError(
                f"crop_size {value!r}: give a side in pixels (>= 16) for a face-centred "
                "square crop, or native (null) to keep the source framing"
            )
    return value


def framing(crop_size: int | None, crop_scale: float) -> dict[str, Any]:
    """The record's word on framing: ``native`` or ``face_crop`` with its size and scale."""
    if crop_size is None:
        return {"framing": "native"}
    return {
        "framing": "face_crop",
        "crop_size": crop_size,
        "crop_scale": crop_scale,
        "detector": "dlib HOG frontal face detector",
    }


class NoFaceError(Exception):
    """No face found on any sampled frame: the clip is excluded (listed in the record)."""


class FrameIndexError(Exception):
    """``reference_frame`` is past the clip's end: the clip is excluded."""


def face_box(frames: np.ndarray, scale: float) -> tuple[tuple[int, int, int, int], float]:
    """A square box (x0, y0, x1, y1) around the median HOG face of a few sampled frames.

    Side: ``scale`` x the median face-box side, centre raised by a tenth of the face so the
    forehead fits (dlib's box runs from brows to chin), shifted to stay inside the frame
    and shrunk only if the frame is smaller. Returns the box and the share of sampled frames
    where a face was found.
    """
    import cv2

    count, height, width = frames.shape[:3]
    picks = np.unique(np.linspace(0, count - 1, num=min(count, DETECT_SAMPLES)).astype(int))
    factor = min(1.0, DETECT_LONG_SIDE / max(height, width))
    boxes = []
    for upsample in (0, 1):  # 1 only if nothing was found at 0: four times slower
        for index in picks:
            image = frames[index]
            if factor < 1.0:
                size = (max(1, round(width * factor)), max(1, round(height * factor)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            found = hog_detector()(np.ascontiguousarray(image), upsample)
            if len(found):
                best = max(found, key=lambda r: r.width() * r.height())
                boxes.append(
                    [best.left(), best.top(), best.right(), best.bottom()]
                )
        if boxes:
            break
    if not boxes:
        raise NoFaceError(f"no face found by dlib HOG on {len(picks)} sampled frames")
    box = np.median(np.asarray(boxes, dtype=np.float64), axis=0) / factor
    face = max(box[2] - box[0], box[3] - box[1])
    cx = (box[0] + box[2]) / 2
    cy = (box[1] + box[3]) / 2 - 0.1 * face
    side = int(round(min(scale * face, height, width)))
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return (x0, y0, x0 + side, y0 + side), len(boxes) / len(picks)


def cached_face_crop(
    src: Path, folder: Path, size: int, scale: float, sha: str | None = None,
    lossless: bool = False,
) -> tuple[Path, dict]:
    """The face-centred ``size`` x ``size`` crop of ``src`` (25 fps, audio kept), made once.

    Cached by the source's sha256 (``sha`` if known), the crop parameters and the encode
    (``lossless``: FFV1, else x264 crf 18); raises NoFaceError when no face is found and
    MediaError when the source cannot be read.
    """
    media.check_file(src)
    sha = sha or media.sha256_file(src)
    encode = {"lossless": True} if lossless else {}  # x264 crops keep their earlier keys
    key = content_key(
        kind="face_crop", version=PREPROCESS_VERSION, source=sha, size=size, scale=scale,
        samples=DETECT_SAMPLES, detect_long_side=DETECT_LONG_SIDE, **encode,
    )
    dst = folder / key[:2] / f"{key}.mp4"
    sidecar = dst.with_suffix(".json")
    if dst.is_file() and sidecar.is_file():
        return dst, json.loads(sidecar.read_text())
    decoded = media.decode_video(src)
    (x0, y0, x1, y1), hit_rate = face_box(decoded.frames, scale)
    import cv2

    side = x1 - x0
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    frames = np.stack(
        [
            cv2.resize(np.ascontiguousarray(f[y0:y1, x0:x1]), (size, size),
                       interpolation=interpolation)
            for f in decoded.frames
        ]
    )
    media.write_video(
        dst, frames, decoded.audio if decoded.has_audio else None, lossless=lossless
    )
    info = {
        "box": [x0, y0, x1, y1],
        "source_size": [int(decoded.frames.shape[2]), int(decoded.frames.shape[1])],
        "size": size,
        "face_found_in": round(hit_rate, 3),
        "source_sha256": sha,
    }
    write_json_atomic(sidecar, info)
    return dst, info


def cached_reference(video: Path, folder: Path, index: int) -> Path:
    """Frame ``index`` (at 25 fps) of ``video`` as a PNG, cached by the video's sha256."""
    sha = media.sha256_file(video)
    key = content_key(kind="reference", version=PREPROCESS_VERSION, video=sha, frame=index)
    dst = folder / key[:2] / f"{key}.png"
    if dst.is_file():
        return dst
    decoded = media.decode_video(video)
    if index >= len(decoded.frames):
        raise FrameIndexError(
            f"reference_frame {index} is past the clip's end ({len(decoded.frames)} frames)"
        )
    media.write_image(dst, decoded.frames[index])
    return dst

