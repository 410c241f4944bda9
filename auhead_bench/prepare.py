"""Normalises a dataset's clips once: 25 fps / 16 kHz mono mp4, audio wav, reference png.

Prepared clips are cached by the sha256 of their source files and the intermediate they are
encoded with (``RunConfig.intermediate``: x264 crf 18, or lossless FFV1), so a dataset is
converted once per machine and intermediate, and every method and metric sees exactly the
same ground truth.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench import media
from auhead_bench.aus import LABELS_FPS_KEY, SOURCE_FPS_KEY
from auhead_bench.cache import Cache, content_key
from auhead_bench.clip import Clip
from auhead_bench.config import DEFAULT_INTERMEDIATE, INTERMEDIATES

PREPARE_VERSION = "3"  # 3: clips flagged when audio and video durations differ
# A clip this short cannot be scored: temporal metrics need two frames, and one frame made
# static_frame score PSNR 100. Datasets exclude clips below their own ``min_frames`` first.
MIN_CLIP_FRAMES = 2
# Audio and video durations further apart than this flag the clip ``audio_video_mismatch``.
AV_DURATION_TOLERANCE = 0.2  # seconds
# What each intermediate (config.INTERMEDIATES) writes, as the run record says it.
ENCODINGS: dict[str, dict[str, Any]] = {
    "x264_crf18": {
        "lossless": False,
        "video": f"H.264 (libx264) crf {media.VIDEO_CRF} yuv420p (BT.601 limited range)",
        "audio": "AAC",
    },
    "lossless": {
        "lossless": True,
        "video": "FFV1 level 3, bgr0 (8-bit RGB), intra only",
        "audio": "FLAC 16-bit",
    },
}


def preparation(intermediate: str = DEFAULT_INTERMEDIATE) -> dict[str, Any]:
    """How the runner prepares clips with ``intermediate``: the record's ``preparation``."""
    _check_intermediate(intermediate)
    return {
        "intermediate": intermediate,
        **ENCODINGS[intermediate],
        "container": "mp4",
        "fps": media.FPS,
        "sample_rate": media.SAMPLE_RATE,
    }


def _check_intermediate(intermediate: str) -> None:
    if intermediate not in INTERMEDIATES:  # the config refuses these; this is for callers
        raise ValueError(f"unknown intermediate {intermediate!r}; use {sorted(INTERMEDIATES)}")


@dataclass(frozen=True)
class PreparedClip:
    """A clip whose media are normalised; ``clip`` points at the normalised files."""

    clip: Clip
    content_sha256: str  # of the normalised ground-truth mp4
    inputs_sha256: str  # of everything a method sees: video, audio and reference files
    frames: int
    source_fps: float
    # e.g. "silent_audio", "audio_video_mismatch" (durations AV_DURATION_TOLERANCE apart)
    flags: list[str] = field(default_factory=list)
    intermediate: str = DEFAULT_INTERMEDIATE  # how its video was encoded (config.INTERMEDIATES)

    @property
    def id(self) -> str:
        return self.clip.id


def prepare_clip(
    clip: Clip, cache: Cache, intermediate: str = DEFAULT_INTERMEDIATE
) -> PreparedClip:
    """Normalise one clip (or fetch it from the cache), its video encoded as ``intermediate``
    says. Raises MediaError naming the bad file."""
    _check_intermediate(intermediate)
    # The default's key is the one earlier versions made: their cached clips stay valid.
    encoding = {} if intermediate == DEFAULT_INTERMEDIATE else {"intermediate": intermediate}
    sources = {"video": media.sha256_file(_checked(clip.video))}
    if clip.audio is not None:
        sources["audio"] = media.sha256_file(_checked(clip.audio))
    if clip.reference is not None:
        sources["reference"] = media.sha256_file(_checked(clip.reference))
    key = content_key(
        kind="clip",
        version=PREPARE_VERSION,
        fps=media.FPS,
        sample_rate=media.SAMPLE_RATE,
        sources=sources,
        **encoding,
    )
    entry = cache.get("clips", key)
    if entry is None:
        with cache.put("clips", key, label=clip.id) as folder:
            _normalise(clip, folder, lossless=ENCODINGS[intermediate]["lossless"])
        entry = cache.path("clips", key)
    meta = json.loads((entry / "meta.json").read_text())
    if meta["frames"] < MIN_CLIP_FRAMES:  # a reason for the record, or the run stops
        raise media.MediaError(
            f"clip has {meta['frames']} frame(s) at {media.FPS} fps; at least "
            f"{MIN_CLIP_FRAMES} are needed to score it",
            path=clip.video,
            fix="leave it out (skip_bad_clips: true) or use a longer clip",
        )
    prepared = dataclasses.replace(
        clip,
        video=entry / "video.mp4",
        audio=entry / "audio.wav",
        reference=entry / "reference.png",
        # AU labels are per frame of the source video: its rate resamples them to 25 fps. A
        # dataset that converted the video itself (a 25 fps face crop) records the original's.
        meta={SOURCE_FPS_KEY: meta["source_fps"], **clip.meta},
    )
    inputs = meta["inputs_sha256"]
    if clip.au_labels is not None:  # labels condition AU-driven methods: part of their input
        labels = media.sha256_file(_checked(Path(clip.au_labels)))
        rate = clip.meta.get(LABELS_FPS_KEY)  # a rate given for them changes their track
        extra = {"au_labels_fps": rate} if rate is not None else {}
        inputs = content_key(inputs=inputs, au_labels=labels, **extra)
    return PreparedClip(
        clip=prepared,
        content_sha256=meta["content_sha256"],
        inputs_sha256=inputs,
        frames=meta["frames"],
        source_fps=meta["source_fps"],
        flags=meta["flags"],
        intermediate=intermediate,
    )


def _even(chunk: np.ndarray) -> np.ndarray:
    """Odd heights and widths get one more edge-replicated row or column, in either
    intermediate (x264's yuv420p needs even sizes, and pads so itself): the ground truth has
    the same size whichever is used, and that of generations written as H.264, so no metric
    resizes one to the other."""
    pad_h, pad_w = chunk.shape[1] % 2, chunk.shape[2] % 2
    if not (pad_h or pad_w):
        return chunk
    return np.pad(chunk, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _checked(path: Path) -> Path:
    media.check_file(Path(path))
    return Path(path)


def _normalise(clip: Clip, folder: Path, lossless: bool) -> None:
    """Decode the source once, in chunks, writing the normalised mp4 as frames arrive."""
    info = media.probe_video(clip.video)
    # The reference first: a bad one is found before the video is decoded and encoded.
    reference = media.read_image(clip.reference) if clip.reference is not None else None
    if clip.audio is not None:
        audio, has_audio = media.decode_audio(clip.audio)
        if not has_audio:
            raise media.MediaError(
                "has no audio stream", path=clip.audio, fix="point `audio` at a file with sound"
            )
    else:
        audio, has_audio = media.decode_audio(clip.video)
    if has_audio and not np.isfinite(audio).all():  # an encoder fails on NaN; clipping hides inf
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise media.MediaError(
            f"audio has {bad} non-finite sample(s) (NaN or infinity)",
            path=clip.audio if clip.audio is not None else clip.video,
            fix="re-export the audio (e.g. as 16-bit PCM) or replace the file",
        )
    flags = []
    if not has_audio:
        flags.append("no_audio")
    elif media.audio_rms(audio) < media.SILENCE_RMS:
        flags.append("silent_audio")
    if abs(info.source_fps - media.FPS) > 0.01:
        flags.append(f"resampled_from_{info.source_fps:.3f}fps")
    seen: dict[str, Any] = {"frames": 0}

    def frames() -> Iterator[np.ndarray]:
        for chunk in media.iter_frames(clip.video):
            seen.setdefault("first", chunk[0].copy())
            seen["frames"] += len(chunk)
            yield _even(chunk)

    media.write_video(
        folder / "video.mp4", frames(), audio if has_audio else None, lossless=lossless
    )
    if reference is None:
        reference = seen["first"]
    if has_audio:
        video_seconds = seen["frames"] / media.FPS
        audio_seconds = len(audio) / media.SAMPLE_RATE
        if abs(video_seconds - audio_seconds) > AV_DURATION_TOLERANCE:
            flags.append("audio_video_mismatch")
    media.write_wav(folder / "audio.wav", audio)
    media.write_image(folder / "reference.png", reference)
    files = {name: media.sha256_file(folder / name)
             for name in ("video.mp4", "audio.wav", "reference.png")}
    meta = {
        "content_sha256": files["video.mp4"],
        "inputs_sha256": content_key(**files),
        "frames": int(seen["frames"]),
        "source_fps": info.source_fps,
        "flags": flags,
    }
    (folder / "meta.json").write_text(json.dumps(meta, sort_keys=True))
