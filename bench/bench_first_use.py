"""First use: `auhead-bench --help` (repeated, hyperfine-like) and the demo cold vs warm.

    python bench/bench_first_use.py [--help-runs 10] [--demo-warm-runs 2] [--no-demo] \
        [--compare 501c8af] [--out /tmp/bench_first_use.json]

Every timing is one fresh interpreter (`python -m auhead_bench.cli ...`), its wall time and
its peak RSS (``os.wait4``). The demo runs into a fresh cache and output folder: once cold
(clips built, videos generated, features extracted), then ``--demo-warm-runs`` times again
into the same folders (everything read back). ``--compare REF`` runs the same measures on the
code of git commit REF too (``git archive`` into a temporary folder put first on PYTHONPATH),
in the same script, so load on the machine hits both sides alike. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = ("", "methods", "metrics", "datasets")


def timed(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Wall seconds, peak RSS (MiB) and exit code of one command, run in ``cwd`` (``python -m``
    puts it first on sys.path: it must be the code measured)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code != 0:
        print(f"  exit {code}: {' '.join(args[-4:])}\n{err[-1500:]}", file=sys.stderr)
    return {"wall_s": wall, "peak_mib": usage.ru_maxrss / 1024, "exit": code}


def env_for(code_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(code_root / d) if d else str(code_root)
                                        for d in PLUGIN_DIRS)
    env.pop("OMP_NUM_THREADS", None)  # as most users run it
    return env


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    walls = [r["wall_s"] for r in runs]
    return {
        "runs": len(runs),
        "mean_s": statistics.mean(walls),
        "sd_s": statistics.stdev(walls) if len(walls) > 1 else 0.0,
        "min_s": min(walls),
        "max_s": max(walls),
        "peak_mib": max(r["peak_mib"] for r in runs),
    }


def measure(label: str, code_root: Path, help_runs: int, warm_runs: int, demo: bool) -> dict:
    env = env_for(code_root)
    cli = [sys.executable, "-m", "auhead_bench.cli"]
    timed(cli + ["--help"], env, code_root)  # one untimed run: the OS file cache, .pyc files
    helps = [timed(cli + ["--help"], env, code_root) for _ in range(help_runs)]
    out: dict = {"code": label, "help": summarise(helps)}
    print(f"{label}: --help {out['help']['mean_s']:.2f} s ± {out['help']['sd_s']:.2f} "
          f"(min {out['help']['min_s']:.2f}), peak {out['help']['peak_mib']:.0f} MiB", flush=True)
    if demo:
        with tempfile.TemporaryDirectory(prefix="bench-first-use-") as tmp:
            args = cli + ["run", "--out", f"{tmp}/out", "--cache-dir", f"{tmp}/cache",
                          "--device", "cpu"]
            cold = timed(args, env, code_root)
            warm = [timed(args, env, code_root) for _ in range(warm_runs)]
        out["demo_cold"] = cold
        out["demo_warm"] = summarise(warm) if warm else None
        if warm:
            ratio = out["demo_warm"]["mean_s"] / cold["wall_s"]
            out["warm_over_cold"] = ratio
            print(f"{label}: demo cold {cold['wall_s']:.1f} s, warm "
                  f"{out['demo_warm']['mean_s']:.1f} s ({100 * ratio:.0f}% of cold)", flush=True)
    return out


def export(ref: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def table(results: list[dict]) -> str:
    lines = [
        "| code | `--help` mean ± sd (min) | `--help` peak RSS | demo cold | demo warm | "
        "warm / cold |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        h = r["help"]
        cold = f"{r['demo_cold']['wall_s']:.1f} s" if "demo_cold" in r else "-"
        warm = f"{r['demo_warm']['mean_s']:.1f} s" if r.get("demo_warm") else "-"
        ratio = f"{100 * r['warm_over_cold']:.0f}%" if "warm_over_cold" in r else "-"
        lines.append(f"| {r['code']} | {h['mean_s']:.2f} ± {h['sd_s']:.2f} s "
                     f"({h['min_s']:.2f}) | {h['peak_mib']:.0f} MiB | {cold} | {warm} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--demo-warm-runs", type=int, default=2)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--compare", metavar="REF", help="also measure git commit REF")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_first_use.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-first-use-ref-") as ref_dir:
        sides = [("working tree", ROOT)]
        if args.compare:
            sides.insert(0, (args.compare, export(args.compare, Path(ref_dir))))
        for label, code_root in sides:
            results.append(measure(label, code_root, args.help_runs, args.demo_warm_runs,
                                   not args.no_demo))
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "results": results,
        "table": table(results),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(report["table"])
    print(f"load average {os.getloadavg()}; figures in {args.out}")


if __name__ == "__main__":
    main()
