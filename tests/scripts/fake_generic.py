"""A generic fake baseline: --reference IMG --audio WAV --out MP4 [--fps N] [--size N]."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--reference", required=True)
parser.add_argument("--audio", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--fps", type=float, default=25)
parser.add_argument("--size", type=int, default=0)
parser.add_argument("--no-audio", action="store_true")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

image, audio = fakelib.load(args.reference, args.audio)
if args.size:
    image = image[: args.size, : args.size]
frames = fakelib.talking(image, len(audio) / 16000, args.fps)
fakelib.write(args.out, frames, None if args.no_audio else audio, args.fps)
print(f"wrote {args.out} (seed {args.seed})")
