"""A fake baseline that makes 25 fps worth of frames but writes them as a 30 fps video."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--reference", required=True)
parser.add_argument("--audio", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

image, audio = fakelib.load(args.reference, args.audio)
frames = fakelib.talking(image, len(audio) / 16000, 25)
fakelib.write(args.out, frames, audio, 30)
