"""Stands in for Hallo's scripts/inference.py: its arguments, --output at 25 fps."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("-c", "--config", default="configs/inference/default.yaml")
parser.add_argument("--source_image", type=str, required=False)
parser.add_argument("--driving_audio", type=str, required=False)
parser.add_argument("--output", type=str, default=".cache/output.mp4")
parser.add_argument("--pose_weight", type=float, default=1.0)
args = parser.parse_args()

if not os.path.isfile(args.config):
    sys.exit(f"config {args.config} not found (run from the checkout)")
image, audio = fakelib.load(args.source_image, args.driving_audio)
# A visibly different "model" from the SadTalker stand-in: a darker face.
frames = (fakelib.talking(image, len(audio) / 16000, 25) * 0.8).astype("uint8")
fakelib.write(args.output, frames, audio, 25)
