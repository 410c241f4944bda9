"""A fake baseline that fails on its first call and works on the next: --state PATH."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--reference", required=True)
parser.add_argument("--audio", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--state", required=True)
args = parser.parse_args()

if not os.path.exists(args.state):
    open(args.state, "w").close()
    print("transient failure (fake)", file=sys.stderr)
    sys.exit(1)
image, audio = fakelib.load(args.reference, args.audio)
fakelib.write(args.out, fakelib.talking(image, len(audio) / 16000, 25), audio, 25)
