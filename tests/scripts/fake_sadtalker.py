"""Stands in for SadTalker's inference.py: its arguments, <result_dir>/<timestamp>.mp4 at 25 fps."""

import os
import sys
from argparse import ArgumentParser
from time import strftime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

parser = ArgumentParser()
parser.add_argument("--driven_audio", default="./examples/driven_audio/bus_chinese.wav")
parser.add_argument("--source_image", default="./examples/source_image/full_body_1.png")
parser.add_argument("--result_dir", default="./results")
parser.add_argument("--preprocess", default="crop")
parser.add_argument("--still", action="store_true")
parser.add_argument("--enhancer", default=None)
args = parser.parse_args()

if not os.path.isfile("inference.py"):
    sys.exit("run me from the checkout, as SadTalker expects")
save_dir = os.path.join(args.result_dir, strftime("%Y_%m_%d_%H.%M.%S"))
image, audio = fakelib.load(args.source_image, args.driven_audio)
fakelib.write(save_dir + ".mp4", fakelib.talking(image, len(audio) / 16000, 25), audio, 25)
print("The generated video is named:", save_dir + ".mp4")
