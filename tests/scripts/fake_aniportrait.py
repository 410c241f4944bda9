"""Stands in for AniPortrait's scripts/audio2vid.py: YAML test_cases, output/<date>/..., 1x3 grid.

Cells (torchvision make_grid, padding 2): the reference, a white "pose" image, and the result,
which here is the inverted reference, so a test can tell which cell was kept.
"""

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--config", type=str, default="./configs/prompts/animation_audio.yaml")
parser.add_argument("-W", type=int, default=512)
parser.add_argument("-H", type=int, default=512)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--fps", type=int, default=30)
parser.add_argument("-acc", "--accelerate", action="store_true")
args = parser.parse_args()

config = yaml.safe_load(open(args.config))
assert config["pretrained_vae_path"], "template keys must survive"
date_str, time_str = datetime.now().strftime("%Y%m%d"), datetime.now().strftime("%H%M")
save_dir = Path(f"output/{date_str}/{time_str}--seed_{args.seed}-{args.W}x{args.H}")
for ref_path, audios in config["test_cases"].items():
    for audio_path in audios:
        image, audio = fakelib.load(ref_path, audio_path)
        image = np.asarray(Image.fromarray(image).resize((args.W, args.H)))
        count = int(round(len(audio) / 16000 * args.fps))
        grid = np.zeros((count, args.H + 4, 3 * (args.W + 2) + 2, 3), np.uint8)
        cells = (image, np.full_like(image, 255), 255 - image)
        for i, cell in enumerate(cells):
            x = 2 + i * (args.W + 2)
            grid[:, 2 : 2 + args.H, x : x + args.W] = cell
        name = f"{Path(ref_path).stem}_{Path(audio_path).stem}_{args.H}x{args.W}_3_{time_str}.mp4"
        fakelib.write(save_dir / name, grid, audio, args.fps)
