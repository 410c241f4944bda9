"""How far the LSE exact modes' file round trips move SyncNet's input on the demo clips.

PSNR between what the fast modes feed SyncNet (decoded frames, crops made in memory) and
what the exact modes read back from FFmpeg's files, with a fixed centred face box (no real
S3FD weights here), and the JPEG sizes. Needs the ffmpeg binary.
Run: PYTHONPATH=<checkout and plugin folders> python lse_round_trip_delta.py [CACHE_DIR]
"""

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from auhead_bench.frames import FrameChunk, FrameSource
from auhead_bench_datasets.demo import Demo, DemoOptions
from auhead_bench_metrics import syncnet_exact as ex
from auhead_bench_metrics import syncnet_features as sf


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def lrs_delta(video: Path, frames: np.ndarray, work: Path) -> tuple[int, float, float]:
    """Wav2Lip LRS: 224 px frames vs default-quality JPEG dumps resized. The JPEG loss alone
    is measured against the file's frames at its own rate (cv2.VideoCapture), since the
    dumps keep the file's rate while the fast mode resamples to 25 fps."""
    (work / "lrs").mkdir()
    ex.ffmpeg(ex.SCORE_FRAMES, src=video, dst=work / "lrs" / "%06d.jpg")
    jpegs = sorted((work / "lrs").glob("*.jpg"))
    capture, native = cv2.VideoCapture(str(video)), []
    while (read := capture.read())[0]:
        native.append(read[1])
    memory = [cv2.resize(f, (224, 224)) for f in native]
    dumped = [cv2.resize(cv2.imread(str(f)), (224, 224)) for f in jpegs]
    pairs = list(zip(memory, dumped, strict=False))
    kb = np.mean([f.stat().st_size for f in jpegs]) / 1024
    return len(jpegs), float(np.mean([psnr(a, b) for a, b in pairs])), float(kb)


def pipeline_delta(video: Path, frames: np.ndarray, work: Path) -> tuple[int, float, float]:
    """joonson's pipeline: in-memory crops vs crops after re-encode, q2 JPEG, XVID, JPEG."""
    height, width = frames.shape[1:3]
    box = [width * 0.2, height * 0.15, width * 0.8, height * 0.85]
    track = {"frame": np.arange(len(frames)), "bbox": np.tile(box, (len(frames), 1))}
    memory = np.concatenate(list(sf.track_crops([FrameChunk(0, frames)], track)))
    avi, dumps, wav = work / "video.avi", work / "frames", work / "audio.wav"
    dumps.mkdir()
    ex.ffmpeg(ex.REENCODE, src=video, dst=avi)
    ex.ffmpeg(ex.DUMP_FRAMES, src=avi, dst=dumps / "%06d.jpg")
    ex.ffmpeg(ex.EXTRACT_AUDIO, src=avi, dst=wav)
    crop_dir = work / "crop"
    crop_dir.mkdir()
    crop_avi = ex.SyncNetPythonPipeline.write_crop_video(
        track, sorted(dumps.glob("*.jpg")), wav, crop_dir)
    (crop_dir / "frames").mkdir()
    ex.ffmpeg(ex.SCORE_FRAMES, src=crop_avi, dst=crop_dir / "frames" / "%06d.jpg")
    jpegs = sorted((crop_dir / "frames").glob("*.jpg"))
    back = [cv2.imread(str(f)) for f in jpegs]
    value = np.mean([psnr(a, b) for a, b in zip(memory, back, strict=False)])
    return len(jpegs), float(value), float(np.mean([f.stat().st_size for f in jpegs]) / 1024)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "lse-delta-cache") / "datasets"
    rows = []
    for clip in Demo(DemoOptions(), root).clips():
        frames = np.concatenate([c.frames for c in FrameSource(clip.video).chunks()])
        with tempfile.TemporaryDirectory() as work:
            lrs = lrs_delta(clip.video, frames, Path(work))
            crops = pipeline_delta(clip.video, frames, Path(work))
        rows.append([*lrs[1:], *crops[1:]])
        print(f"{clip.id}: {len(frames)} frames at 25 fps; LRS: {lrs[0]} JPEGs, "
              f"PSNR {lrs[1]:.2f} dB, {lrs[2]:.1f} KB/frame; pipeline: {crops[0]} crops, "
              f"PSNR {crops[1]:.2f} dB, {crops[2]:.2f} KB per 224 px crop")
    mean = np.mean(rows, axis=0)
    print(f"mean: LRS PSNR {mean[0]:.2f} dB, {mean[1]:.1f} KB; pipeline PSNR {mean[2]:.2f} dB, "
          f"{mean[3]:.2f} KB")


if __name__ == "__main__":
    main()
