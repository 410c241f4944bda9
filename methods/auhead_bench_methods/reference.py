"""Reference methods that bracket every benchmark: the ground truth and a frozen face.

``ground_truth`` returns the normalised ground-truth video itself (the upper bound of every
reference metric); ``static_frame`` holds the reference image for the whole clip and keeps
the audio (the lower bound for motion, sync and expression metrics).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from auhead_bench import Clip, Generation, Method, Options, hookimpl, media


class GroundTruth(Method):
    id = "ground_truth"
    description = "Upper bound: the clip's own normalised ground-truth video."
    deterministic = True

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        shutil.copyfile(clip.video, out_path)
        return Generation()


class StaticFrameOptions(Options):
    """Which frame of the clip to hold: None uses the clip's reference image."""

    frame: int | None = None


class StaticFrame(Method):
    id = "static_frame"
    description = "Lower bound: the reference image held for the clip's length, audio kept."
    deterministic = True
    Options = StaticFrameOptions

    def generate(
        self, clip: Clip, options: StaticFrameOptions, seed: int, out_path: Path
    ) -> Generation:
        count = media.count_frames(clip.video)  # from the header: nothing decoded
        if options.frame is None:
            image = media.read_image(clip.reference)
        else:
            image = held_frame(clip.video, min(options.frame, count - 1))
        block = np.ascontiguousarray(np.broadcast_to(image, (min(count, 32), *image.shape)))
        blocks = (block[: min(32, count - start)] for start in range(0, count, 32))
        audio, _ = media.decode_audio(clip.audio)
        media.write_video(out_path, blocks, audio)
        return Generation(info={"held_frame": options.frame})


def held_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video, decoding chunks only up to it."""
    for chunk in media.iter_frames(path):
        if index < len(chunk):
            return chunk[index]
        index -= len(chunk)
    raise media.MediaError(f"has no frame {index}", path=path)


@hookimpl
def register_methods(register):
    register(GroundTruth)
    register(StaticFrame)
