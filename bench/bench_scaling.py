"""Wall time and peak memory of one benchmark at 1x, 4x and 16x the clips, each from an empty cache.

Run: ``python bench/bench_scaling.py [--base 2] [--factors 1,4,16]
[--methods ground_truth,static_frame] [--json /tmp/bench_scaling.json]``.

Each case is the same benchmark (methods x the offline metric suite + FID on face crops, see
``_clips.METRICS``) on the first ``base * factor`` distinct face clips, run by the Runner in
a fresh process with an empty cache: clips normalised, generated, decoded once, shared
features (dlib face track, Inception pool3 of face crops, dlib descriptors) extracted,
metrics scored, records and tables written. The claim it checks: time grows linearly with
the clips (a fixed start-up cost plus a constant cost per clip), and peak memory stays flat
(clips are scored one after another, FID keeps running sums only). Prints a markdown table;
``--json`` gets every figure. Never asserts a time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _clips
import numpy as np

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "auhead-bench-runs"
DEFAULT_JSON = Path(tempfile.gettempdir()) / "bench_scaling.json"


def measure(args: argparse.Namespace, clips: Path) -> list[dict[str, Any]]:
    """One case per factor, smallest first, each in its own process on its own empty cache."""
    rows = []
    for factor in args.factors:
        count = args.base * factor
        case_dir = args.workdir / "scaling" / f"clips_{count:03d}"
        shutil.rmtree(case_dir, ignore_errors=True)
        config = _clips.run_config(f"scaling-{count}", clips, count, args.methods,
                                   case_dir / "cache")
        print(f"{count} clips x {len(args.methods)} methods ...", flush=True)
        load = os.getloadavg()[0]
        result = _clips.run_case(f"clips_{count:03d}", config, case_dir / "out", args.workdir,
                                 case_dir / "logs")
        records = result.worker["records"]
        rows.append({
            "factor": factor,
            "clips": count,
            "generations": count * len(args.methods),
            "run_s": result.worker["run_s"],
            "s_per_clip": result.worker["run_s"] / count,
            "process_s": result.process_s,
            "cpu_s": result.cpu_s,
            "cpu_s_per_clip": result.cpu_s / count,
            "import_s": result.worker["import_s"],
            "peak_rss_mib": result.peak_rss_mib,
            "faces_found": _clips.faces_found(records),
            "not_ok": _clips.not_ok(records),
            "cache_mib": _clips.disk_mib(case_dir / "cache"),
            "load_average_before": load,
            "records": records,
        })
        if not args.keep:
            shutil.rmtree(case_dir / "cache", ignore_errors=True)
        print(f"  {rows[-1]['run_s']:.1f} s ({rows[-1]['cpu_s']:.0f} CPU s), "
              f"peak RSS {rows[-1]['peak_rss_mib']:.0f} MiB", flush=True)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Least-squares line run_s = fixed + per_clip * clips, and the largest/smallest ratios."""
    small, large = rows[0], rows[-1]
    summary: dict[str, Any] = {
        "clips_ratio": large["clips"] / small["clips"],
        "time_ratio": large["run_s"] / small["run_s"],
        "cpu_ratio": large["cpu_s"] / small["cpu_s"],
        "peak_rss_ratio": large["peak_rss_mib"] / small["peak_rss_mib"],
    }
    if len(rows) >= 2:
        for key, prefix in (("run_s", "fit"), ("cpu_s", "cpu_fit")):
            per_clip, fixed = np.polyfit([r["clips"] for r in rows], [r[key] for r in rows], 1)
            predicted = [fixed + per_clip * r["clips"] for r in rows]
            summary.update({
                f"{prefix}_fixed_s": float(fixed),
                f"{prefix}_per_clip_s": float(per_clip),
                f"{prefix}_max_residual": max(
                    abs(p - r[key]) / r[key] for p, r in zip(predicted, rows, strict=True)
                ),
            })
    return summary


def table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        "| clips | generations | run s | s per clip | process s | CPU s | CPU s per clip "
        "| peak RSS MiB | faces found | cache MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['clips']} ({r['factor']}x) | {r['generations']} | {r['run_s']:.1f} "
            f"| {r['s_per_clip']:.2f} | {r['process_s']:.1f} | {r['cpu_s']:.0f} "
            f"| {r['cpu_s_per_clip']:.2f} | {r['peak_rss_mib']:.0f} "
            f"| {r['faces_found']} | {r['cache_mib']:.0f} |"
        )
    small, large = rows[0], rows[-1]
    lines.append("")
    lines.append(
        f"{large['clips']}/{small['clips']} clips ({summary['clips_ratio']:.0f}x): run time "
        f"{summary['time_ratio']:.2f}x, CPU time {summary['cpu_ratio']:.2f}x, peak RSS "
        f"{summary['peak_rss_ratio']:.2f}x."
    )
    for prefix, what in (("fit", "run s"), ("cpu_fit", "CPU s")):
        if f"{prefix}_per_clip_s" in summary:
            lines.append(
                f"Least-squares line: {what} = {summary[f'{prefix}_fixed_s']:.1f} + "
                f"{summary[f'{prefix}_per_clip_s']:.2f} x clips (largest deviation of a case "
                f"from it: {100 * summary[f'{prefix}_max_residual']:.1f}%)."
            )
    problems = sorted({p for r in rows for p in r["not_ok"]})
    if problems:
        lines.append("Metrics not computed: " + "; ".join(problems))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2, help="clips at 1x")
    parser.add_argument("--factors", default="1,4,16", help="comma-separated multiples of --base")
    parser.add_argument("--methods", default="ground_truth,static_frame",
                        help="comma-separated method ids (cheap ones: the point is the suite)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="clips and weight files (kept), cases' outputs and logs")
    parser.add_argument("--keep", action="store_true", help="keep each case's cache")
    args = parser.parse_args()
    try:
        args.factors = sorted({int(f) for f in args.factors.split(",") if f.strip()})
    except ValueError:
        raise SystemExit(f"--factors {args.factors!r}: expected integers, e.g. 1,4,16") from None
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.base < 1 or not args.factors or args.factors[0] < 1 or not args.methods:
        raise SystemExit("--base and --factors must be positive, --methods non-empty")

    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    clips = _clips.build_clips(args.workdir, args.base * args.factors[-1])
    _clips.prepare_weights(args.workdir)
    rows = measure(args, clips)
    summary = summarise(rows)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_scaling.py", *sys.argv[1:]]),
        "machine": _clips.machine(),
        "code": _clips.code_state(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "methods": args.methods,
        "metrics": _clips.METRICS,
        "cases": rows,
        **summary,
        "table": table(rows, summary),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print()
    print(report["table"])
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"results in {args.json}")


if __name__ == "__main__":
    main()
