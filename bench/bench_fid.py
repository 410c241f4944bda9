"""How long FID takes: Inception extraction per frame, running statistics, the distance.

Run: ``python bench/bench_fid.py [--device cuda] [--frames 64] [--size 256]``. The network
is pytorch-fid's InceptionV3 with random weights (the timing does not depend on the values);
the Fréchet distance is timed at 2048-d in our eigenvalue form and as pytorch-fid computes
it (``scipy.linalg.sqrtm``). Prints one line per stage; never asserts a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from auhead_bench_metrics import fid
from auhead_bench_metrics.frechet import RunningGaussian, frechet_distance


def timed(label: str, work, repeat: int = 1, per: int = 1):
    """Run ``work`` ``repeat`` times; print seconds per call (and per item if ``per`` > 1)."""
    start = time.perf_counter()
    for _ in range(repeat):
        result = work()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeat
    each = f"  ({seconds / per * 1000:.1f} ms each)" if per > 1 else ""
    print(f"{label:<48} {seconds:8.3f} s{each}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels")
    parser.add_argument("--skip-sqrtm", action="store_true", help="skip the ~10 s scipy sqrtm")
    args = parser.parse_args()

    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / fid.INCEPTION.filename
        torch.save(net.state_dict(), path)
        extractor = fid.InceptionPool3()
        extractor._model = timed("load pytorch-fid InceptionV3", lambda: fid.load_inception(
            path, args.device))
        extractor._device = args.device
    frames = np.random.default_rng(0).integers(
        0, 256, (args.frames, args.size, args.size, 3), dtype=np.uint8
    )
    extractor.embed(frames[:2])  # warm-up (cuDNN autotuning, allocator)
    features = timed(f"pool3 of {args.frames} frames {args.size}px ({args.device})",
                     lambda: extractor.embed(frames), per=args.frames)

    rng = np.random.default_rng(1)
    batch = rng.normal(size=(100, 2048)).astype(np.float32) + features.mean()
    stream = RunningGaussian(2048)
    timed("fold in one 100-frame clip (2048-d)", lambda: stream.update(batch, "bench"), 5)
    x, y = rng.normal(size=(2100, 2048)), rng.normal(size=(2100, 2048)) * 1.1 + 0.1
    mu_1, mu_2 = x.mean(axis=0), y.mean(axis=0)
    s_1, s_2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ours = timed("Fréchet distance, eigenvalue form (2048-d)",
                 lambda: frechet_distance(mu_1, s_1, mu_2, s_2))
    if not args.skip_sqrtm:
        from pytorch_fid.fid_score import calculate_frechet_distance

        theirs = timed("Fréchet distance, pytorch-fid sqrtm (2048-d)",
                       lambda: calculate_frechet_distance(mu_1, s_1, mu_2, s_2))
        print(f"{'relative difference':<48} {abs(ours - theirs) / abs(theirs):8.1e}")


if __name__ == "__main__":
    main()
