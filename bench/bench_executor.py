"""The same benchmark run with the local executor and with the Ray executor, on this machine.

Run: ``python bench/bench_executor.py [--clips 8] [--methods ground_truth,static_frame,au_warp]
[--clips-per-task 2] [--json /tmp/bench_executor.json]``.

Two cases, each a Runner in its own fresh process on a new, empty cache, with the clips and
metrics of bench_scaling.py (``_clips.METRICS``: the offline suite and FID on face crops):

1. ``local``: ``executor: local`` (torch with its default threads: one per core);
2. ``ray``: ``executor: ray`` without an address, so the executor starts a local Ray
   instance with every core and shuts it down at the end; its ``ray.init``, its tasks and
   its ``ray.shutdown`` are timed apart. Ray sets OMP_NUM_THREADS=1 in each worker (one
   CPU per task), so torch runs one thread per worker there;
3. with ``--local-one-thread`` only, ``local_omp1``: the local executor with
   OMP_NUM_THREADS=1, which tells how much of the difference is torch's thread count.

Ray runs the work in worker processes that are children of its raylet: os.wait4 on the
driver does not count them. Each case's process tree is therefore sampled with psutil every
0.5 s (``_clips.TreeSampler``): summed RSS and PSS, and the CPU seconds of every process in
it. Prints a table and checks (prints) that both runs' records are equal apart from measured
seconds (``auhead_bench.records.without_measurements``). Never asserts a time. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _clips
from bench_rerun import compare, read_records

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "auhead-bench-runs"
DEFAULT_JSON = Path(tempfile.gettempdir()) / "bench_executor.json"
# case name -> (executor, extra environment of the case's process)
CASES: dict[str, tuple[str, dict[str, str]]] = {
    "local": ("local", {}),
    "ray": ("ray", {}),
    "local_omp1": ("local", {"OMP_NUM_THREADS": "1"}),
}


def case(args: argparse.Namespace, name: str, clips: Path) -> dict[str, Any]:
    """One run of case ``name``, in its own process, into ``workdir/executor/<name>``."""
    executor, env = CASES[name]
    root = args.workdir / "executor" / name
    shutil.rmtree(root, ignore_errors=True)
    config = _clips.run_config(f"executor-{name}", clips, args.clips, args.methods,
                               root / "cache")
    # Identical configs but for the executor: clips_per_task only matters to Ray.
    config.update(executor=executor, clips_per_task=args.clips_per_task)
    print(f"{name}: {'+'.join(args.methods)} on {args.clips} clips ...", flush=True)
    load = os.getloadavg()
    result = _clips.run_case(name, config, root / "out", args.workdir, root / "logs",
                             sample_tree=True, extra_env=env)
    tree = result.tree or {}
    records = result.worker["records"]
    row = {
        "case": name,
        "executor": executor,
        "env": env,
        "run_s": result.worker["run_s"],
        "process_s": result.process_s,
        "import_s": result.worker["import_s"],
        "ray_start_s": result.worker.get("ray_start_s"),
        "ray_tasks_s": result.worker.get("ray_tasks_s"),
        "ray_shutdown_s": result.worker.get("ray_shutdown_s"),
        "tree_cpu_s": tree.get("cpu_s"),
        "wait4_cpu_s": result.cpu_s,
        "driver_peak_rss_mib": result.worker["self_peak_rss_mib"],
        "wait4_peak_rss_mib": result.peak_rss_mib,
        "tree_peak_rss_sum_mib": tree.get("peak_rss_sum_mib"),
        "tree_peak_pss_sum_mib": tree.get("peak_pss_sum_mib"),
        "tree_sum_of_peaks_mib": tree.get("sum_of_peaks_mib"),
        "peak_processes": tree.get("peak_processes"),
        "sampler_cpu_s": tree.get("sampling_cpu_s"),
        "others_cpu_s": tree.get("others_cpu_s"),
        "driver_torch_threads": result.worker.get("torch_threads"),
        "faces_found": _clips.faces_found(records),
        "not_ok": _clips.not_ok(records),
        "cache_mib": _clips.disk_mib(root / "cache"),
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        "tree": tree,
        "records": records,
    }
    print(f"  {row['run_s']:.1f} s, {row['tree_cpu_s']:.0f} CPU s (tree), driver peak RSS "
          f"{row['driver_peak_rss_mib']:.0f} MiB, tree peak RSS sum "
          f"{row['tree_peak_rss_sum_mib']:.0f} MiB", flush=True)
    return row


def at(data: Any, path: str) -> Any:
    """The value at a path of ``bench_rerun.differences`` (".metrics.x.per_seed.0", "[3]")."""
    for key, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        data = data[int(index)] if index else data[key]
    return data


def values(first: dict, second: dict, experiment: str, path: str) -> str:
    """': A vs B' (and their relative difference for numbers) at a differing path."""
    try:
        a, b = (at(r[experiment]["compared"], path) for r in (first, second))
    except (KeyError, IndexError, TypeError):
        return ""
    text = f": {a!r} vs {b!r}"
    if isinstance(a, float) and isinstance(b, float) and a != 0:
        text += f" (relative difference {abs(a - b) / abs(a):.1e})"
    return text


def table(rows: dict[str, dict], checks: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "| case | run s | process s | CPU s (tree) | CPU s (wait4) | driver peak RSS MiB "
        "| tree RSS sum, sampled peak MiB | tree sum of per-process peak RSS MiB "
        "| tree PSS sum, sampled peak MiB | processes (peak) | faces found "
        "| other processes' CPU s meanwhile |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        label = name + "".join(f" ({k}={v})" for k, v in r["env"].items())
        lines.append(
            f"| {label} | {r['run_s']:.1f} | {r['process_s']:.1f} | {r['tree_cpu_s']:.0f} "
            f"| {r['wait4_cpu_s']:.0f} | {r['driver_peak_rss_mib']:.0f} "
            f"| {r['tree_peak_rss_sum_mib']:.0f} | {r['tree_sum_of_peaks_mib']:.0f} "
            f"| {r['tree_peak_pss_sum_mib']:.0f} "
            f"| {r['peak_processes']} | {r['faces_found']} | {r['others_cpu_s']:.0f} |"
        )
    local, ray = rows["local"], rows["ray"]
    lines.append("")
    lines.append(
        f"{args.clips} clips x {len(args.methods)} methods, {args.clips_per_task} clips per "
        f"Ray task. ray/local: run time {ray['run_s'] / local['run_s']:.2f}, CPU seconds "
        f"(tree) {ray['tree_cpu_s'] / local['tree_cpu_s']:.2f}, peak RSS sum "
        f"{ray['tree_peak_rss_sum_mib'] / local['tree_peak_rss_sum_mib']:.2f}, peak PSS sum "
        f"{ray['tree_peak_pss_sum_mib'] / local['tree_peak_pss_sum_mib']:.2f}."
    )
    if "local_omp1" in rows:
        one = rows["local_omp1"]
        lines.append(
            f"local with OMP_NUM_THREADS=1 / local: run time {one['run_s'] / local['run_s']:.2f},"
            f" CPU seconds (tree) {one['tree_cpu_s'] / local['tree_cpu_s']:.2f}; ray / it: run "
            f"time {ray['run_s'] / one['run_s']:.2f}."
        )
    if ray["ray_start_s"] is not None:
        driver_s = ray["run_s"] - ray["ray_start_s"] - ray["ray_tasks_s"] - ray["ray_shutdown_s"]
        lines.append(
            f"Ray run: ray.init {ray['ray_start_s']:.1f} s, tasks {ray['ray_tasks_s']:.1f} s, "
            f"ray.shutdown {ray['ray_shutdown_s']:.1f} s, the rest in the driver (plugins, "
            f"plan, scoring pass from the cache with FID's Fréchet distances, records) "
            f"{driver_s:.1f} s."
        )
    for name, r in rows.items():
        roles = ", ".join(
            f"{role} {v['processes']}: {v['cpu_s']:.0f} CPU s, largest peak RSS "
            f"{v['largest_peak_rss_mib']:.0f} MiB"
            for role, v in sorted(r["tree"]["roles"].items())
        )
        lines.append(f"- {name} by role: {roles}; the sampler's own CPU: "
                     f"{r['sampler_cpu_s']:.1f} s")
    for check in checks:
        verdict = "EQUAL" if check["all_equal"] else "DIFFERENT"
        lines.append(f"Records {check['label']}, without measurements: {verdict}")
        for experiment, c in check["records"].items():
            lines.append(f"- {experiment}: {'equal' if c['equal'] else 'DIFFERENT'}"
                         + (" (byte-identical)" if c["identical"] else ""))
            for diff in c["differences"]:
                found = check["values"].get(f"{experiment} {diff}", "")
                lines.append(f"  - differs at {diff}{found}")
    problems = sorted({p for r in rows.values() for p in r["not_ok"]})
    if problems:
        lines.append("Metrics not computed: " + "; ".join(problems))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips per run")
    parser.add_argument("--methods", default="ground_truth,static_frame,au_warp",
                        help="comma-separated method ids")
    parser.add_argument("--clips-per-task", type=int, default=2,
                        help="clips of one dataset per Ray task (config clips_per_task)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="clips and weight files (kept), runs' outputs and logs")
    parser.add_argument("--local-one-thread", action="store_true",
                        help="also run the local executor with OMP_NUM_THREADS=1")
    parser.add_argument("--keep", action="store_true", help="keep the caches")
    args = parser.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.clips < 1 or args.clips_per_task < 1 or not args.methods:
        raise SystemExit("--clips and --clips-per-task must be positive, --methods non-empty")
    try:
        import psutil  # noqa: F401
        import ray  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"bench_executor.py needs {exc.name}: pip install 'auhead-bench[ray]' "
                         "psutil") from None

    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    clips = _clips.build_clips(args.workdir, args.clips)
    _clips.prepare_weights(args.workdir)
    names = ["local", "ray", *(["local_omp1"] if args.local_one_thread else [])]
    rows = {name: case(args, name, clips) for name in names}
    outs = {name: read_records(args.workdir / "executor" / name / "out") for name in names}
    experiments = [r["experiment"] for r in rows["local"]["records"]]
    checks = []
    for name in names[1:]:
        check = compare(f"local vs {name}", outs["local"], outs[name], experiments)
        check["values"] = {
            f"{experiment} {diff}": values(outs["local"], outs[name], experiment, diff)
            for experiment, c in check["records"].items()
            for diff in c["differences"]
        }
        checks.append(check)
    if not args.keep:
        for name in names:
            shutil.rmtree(args.workdir / "executor" / name / "cache", ignore_errors=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_executor.py", *sys.argv[1:]]),
        "machine": _clips.machine(),
        "code": _clips.code_state(),
        "ray_version": __import__("ray").__version__,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "clips": args.clips,
        "clips_per_task": args.clips_per_task,
        "methods": args.methods,
        "metrics": _clips.METRICS,
        "cases": rows,
        "ray_over_local": rows["ray"]["run_s"] / rows["local"]["run_s"],
        "ray_over_local_cpu": rows["ray"]["tree_cpu_s"] / rows["local"]["tree_cpu_s"],
        "checks": checks,
        "table": table(rows, checks, args),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print()
    print(report["table"])
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"results in {args.json}")


if __name__ == "__main__":
    main()
