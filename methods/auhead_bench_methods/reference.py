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

    def generate(self, clip: Clip, options: Options, seed: int, out_path: Path) -> Generation:
        shutil.copyfile(clip.video, out_path)
        return Generation()


class StaticFrameOptions(Options):
    """Which frame of the clip to hold: None uses the clip's reference image."""

    frame: int | None = None


class StaticFrame(Method):
    id = "static_frame"
    description = "Lower bound: the reference image held for the clip's length, audio kept."
    Options = StaticFrameOptions

    def generate(
        self, clip: Clip, options: StaticFrameOptions, seed: int, out_path: Path
    ) -> Generation:
        truth = media.decode_video(clip.video)
        if options.frame is None:
            image = media.read_image(clip.reference)
        else:
            image = truth.frames[min(options.frame, len(truth.frames) - 1)]
        frames = np.broadcast_to(image, (len(truth.frames), *image.shape))
        audio, _ = media.decode_audio(clip.audio)
        media.write_video(out_path, np.ascontiguousarray(frames), audio)
        return Generation(info={"held_frame": options.frame})


@hookimpl
def register_methods(register):
    register(GroundTruth)
    register(StaticFrame)
