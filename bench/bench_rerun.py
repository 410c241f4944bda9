"""Adding one method to a finished benchmark: the re-run into the same folder and cache vs a
cold run of every method from an empty cache.

Run: ``python bench/bench_rerun.py [--clips 4] [--methods ground_truth,static_frame]
[--add au_warp] [--json /tmp/bench_rerun.json]``.

Three cases, each a Runner in its own fresh process (the metrics of ``_clips.METRICS``: the
offline suite and FID on face crops, on distinct face clips):

1. ``first``: methods A and B (``--methods``) on ``--clips`` clips, out folder and cache new.
2. ``rerun``: A, B and C (``--add``) into the same out folder and cache, default
   ``overwrite: only-missing``: only C is generated and its features extracted; A and B
   are scored again from the cache (per-clip scores read back, FID folded again from cached
   features).
3. ``cold``: A, B and C into a new out folder with a new, empty cache.

Prints the three times, rerun/cold, and checks (prints) that A's and B's records after the
re-run equal those of the first run apart from measured seconds
(``auhead_bench.records.without_measurements``), and that every record of the re-run equals
the cold run's the same way. Never asserts a time. See bench/README.md.
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

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "auhead-bench-runs"
DEFAULT_JSON = Path(tempfile.gettempdir()) / "bench_rerun.json"


def read_records(out: Path) -> dict[str, dict[str, Any]]:
    """{experiment: {"full": record JSON, "compared": without_measurements}} of a run folder."""
    from auhead_bench.records import dump_record, load_record, without_measurements

    records = {}
    for path in sorted((out / "records").glob("*.json")):
        record = load_record(path)
        records[record.experiment] = {
            "full": dump_record(record),
            "compared": without_measurements(record),
        }
    return records


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """JSON paths at which ``a`` and ``b`` differ (empty: equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                found.append(f"{where}.{key} (only in {'second' if key in b else 'first'})")
            else:
                found += differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where} (length {len(a)} vs {len(b)})"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [where or "."]


def compare(
    label: str, before: dict[str, dict], after: dict[str, dict], experiments: list[str]
) -> dict[str, Any]:
    """Each experiment's record in both runs: equal without measurements? byte-equal?"""
    checks = {}
    for experiment in experiments:
        if experiment not in before or experiment not in after:
            checks[experiment] = {"equal": False, "identical": False,
                                  "differences": ["record missing"]}
            continue
        diff = differences(before[experiment]["compared"], after[experiment]["compared"])
        checks[experiment] = {
            "equal": not diff,
            "identical": before[experiment]["full"] == after[experiment]["full"],
            "differences": diff[:10],
        }
    return {"label": label, "records": checks, "all_equal": all(c["equal"] for c in
                                                                 checks.values())}


def case(args: argparse.Namespace, name: str, folder: str, methods: list[str],
         clips: Path) -> dict[str, Any]:
    """One run, in its own process, into ``workdir/rerun/<folder>``; its figures."""
    root = args.workdir / "rerun" / folder
    config = _clips.run_config(f"rerun-{name}", clips, args.clips, methods, root / "cache")
    print(f"{name}: {'+'.join(methods)} on {args.clips} clips ...", flush=True)
    load = os.getloadavg()[0]
    result = _clips.run_case(name, config, root / "out", args.workdir, args.workdir / "rerun" /
                             "logs")
    records = result.worker["records"]
    row = {
        "case": name,
        "methods": methods,
        "run_s": result.worker["run_s"],
        "process_s": result.process_s,
        "cpu_s": result.cpu_s,
        "import_s": result.worker["import_s"],
        "peak_rss_mib": result.peak_rss_mib,
        "faces_found": _clips.faces_found(records),
        "not_ok": _clips.not_ok(records),
        "cache_mib": _clips.disk_mib(root / "cache"),
        "load_average_before": load,
        "records": records,
    }
    print(f"  {row['run_s']:.1f} s ({row['cpu_s']:.0f} CPU s), "
          f"peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    return row


def table(rows: dict[str, dict], checks: list[dict], clips: int) -> str:
    first, rerun, cold = rows["first"], rows["rerun"], rows["cold"]
    lines = [
        "| case | methods | out folder and cache | run s | process s | CPU s | peak RSS MiB "
        "| faces found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    where = {"first": "new, empty", "rerun": "those of `first`", "cold": "new, empty"}
    for name, row in rows.items():
        lines.append(
            f"| {name} | {'+'.join(row['methods'])} | {where[name]} | {row['run_s']:.1f} "
            f"| {row['process_s']:.1f} | {row['cpu_s']:.0f} | {row['peak_rss_mib']:.0f} "
            f"| {row['faces_found']} |"
        )
    lines.append("")
    lines.append(
        f"{clips} clips. Adding {rerun['methods'][-1]} by re-running: {rerun['run_s']:.1f} s, "
        f"against {cold['run_s']:.1f} s for all methods cold: rerun/cold = "
        f"{rerun['run_s'] / cold['run_s']:.2f} (with process start-up: "
        f"{rerun['process_s'] / cold['process_s']:.2f}; CPU seconds: "
        f"{rerun['cpu_s'] / cold['cpu_s']:.2f}). The first run took "
        f"{first['run_s']:.1f} s."
    )
    for check in checks:
        verdicts = ", ".join(
            f"{experiment} {'equal' if c['equal'] else 'DIFFERENT'}"
            + (" (byte-identical)" if c["identical"] else "")
            for experiment, c in check["records"].items()
        )
        lines.append(f"- {check['label']}: {verdicts}")
        for experiment, c in check["records"].items():
            for diff in c["differences"]:
                lines.append(f"  - {experiment}: differs at {diff}")
    problems = sorted({p for row in rows.values() for p in row["not_ok"]})
    if problems:
        lines.append("Metrics not computed: " + "; ".join(problems))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="clips per run")
    parser.add_argument("--methods", default="ground_truth,static_frame",
                        help="the finished benchmark's methods (A,B), comma-separated")
    parser.add_argument("--add", default="au_warp", help="the method added afterwards (C)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="clips and weight files (kept), runs' outputs and logs")
    parser.add_argument("--keep", action="store_true", help="keep the caches")
    args = parser.parse_args()
    base = [m.strip() for m in args.methods.split(",") if m.strip()]
    added = args.add.strip()
    if args.clips < 1 or not base or not added or added in base:
        raise SystemExit("--clips must be positive, --methods non-empty, --add a new method id")

    shutil.rmtree(args.workdir / "rerun", ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    clips = _clips.build_clips(args.workdir, args.clips)
    _clips.prepare_weights(args.workdir)
    everything = [*base, added]

    rows = {"first": case(args, "first", "incremental", base, clips)}
    first_records = read_records(args.workdir / "rerun" / "incremental" / "out")
    rows["rerun"] = case(args, "rerun", "incremental", everything, clips)
    rerun_records = read_records(args.workdir / "rerun" / "incremental" / "out")
    rows["cold"] = case(args, "cold", "cold", everything, clips)
    cold_records = read_records(args.workdir / "rerun" / "cold" / "out")
    experiments = {row["experiment"]: None for row in rows["cold"]["records"]}
    base_experiments = [e for e in experiments if any(
        r["experiment"] == e for r in rows["first"]["records"])]
    checks = [
        compare("A and B after the re-run vs after the first run", first_records,
                rerun_records, base_experiments),
        compare("every record of the re-run vs the cold run", rerun_records, cold_records,
                list(experiments)),
    ]
    if not args.keep:
        for folder in ("incremental", "cold"):
            shutil.rmtree(args.workdir / "rerun" / folder / "cache", ignore_errors=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_rerun.py", *sys.argv[1:]]),
        "machine": _clips.machine(),
        "code": _clips.code_state(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "clips": args.clips,
        "metrics": _clips.METRICS,
        "cases": rows,
        "rerun_over_cold": rows["rerun"]["run_s"] / rows["cold"]["run_s"],
        "rerun_over_cold_cpu": rows["rerun"]["cpu_s"] / rows["cold"]["cpu_s"],
        "checks": checks,
        "table": table(rows, checks, args.clips),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print()
    print(report["table"])
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"results in {args.json}")


if __name__ == "__main__":
    main()
