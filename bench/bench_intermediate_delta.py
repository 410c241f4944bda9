"""PSNR between the x264_crf18 and lossless preparations of the demo clips (the frames every
metric reads)."""
import tempfile
from pathlib import Path

import numpy as np

from auhead_bench import media
from auhead_bench.cache import Cache
from auhead_bench.plugins import get_registry
from auhead_bench.prepare import prepare_clip

registry = get_registry()
cache = Cache(Path(tempfile.mkdtemp(prefix="auhead-interm-")))
ds = registry.get("dataset", "demo").cls
inst = ds(ds.Options(), cache.root / "datasets")
psnrs, maxdiff = [], 0
for clip in inst.clips():
    a = prepare_clip(clip, cache, "x264_crf18")
    b = prepare_clip(clip, cache, "lossless")
    fa = np.concatenate(list(media.iter_frames(a.clip.video))).astype(np.float64)
    fb = np.concatenate(list(media.iter_frames(b.clip.video))).astype(np.float64)
    n = min(len(fa), len(fb))
    mse = ((fa[:n] - fb[:n]) ** 2).reshape(n, -1).mean(1)
    psnrs.append(float(np.mean(10 * np.log10(255**2 / mse))))
    maxdiff = max(maxdiff, int(np.abs(fa[:n] - fb[:n]).max()))
    print(clip.id, n, psnrs[-1], a.clip.video.stat().st_size, b.clip.video.stat().st_size)
print("mean PSNR x264_crf18 vs lossless", np.mean(psnrs), "max |diff|", maxdiff)
