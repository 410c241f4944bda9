"""How long ``leaderboard build`` takes on many ordinary records (issue 22: under 10 s at 2,000).

Run: ``python bench/bench_leaderboard.py [--records 2000] [--n-boot 2000] [--limit 10]``.
Writes N synthetic records (12 clips, one seed, two per-clip metrics and FID, half on MEAD
and half on CREMA-D under the repository's board.yaml protocol, plus the shipped reported
rows), then times ``build_site`` with the board, flags and no plots (plots are drawn per
figure, not per record), the way CI's ``leaderboard build --strict --no-plots`` runs. The
build also runs every size-limit and recomputation check. Prints the seconds and whether
they are under ``--limit``; exits 1 when they are not. On a shared, loaded machine the wall
time measures the load: the CPU time of the process is the fairer number there.
It also runs against a checkout without the board (older ``build_site``): the board
arguments are passed only where the function takes them, so the two can be compared.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import synthetic_records as syn  # noqa: E402

from auhead_bench.records import dump_record  # noqa: E402
from auhead_bench.reporting import leaderboard  # noqa: E402


def board_protocol() -> dict:
    return yaml.safe_load((ROOT / "leaderboard" / "board.yaml").read_text())


def first(value):
    return value["any_of"][0] if isinstance(value, dict) and "any_of" in value else value


def make_records(folder: Path, count: int) -> None:
    board = board_protocol()
    options = {m["id"]: m for m in board["metrics"]}
    datasets = {d["id"]: d for d in board["datasets"]}
    for i in range(count):
        dataset = "mead" if i % 2 == 0 else "crema_d"
        base = 20.0 + (i % 97) / 10
        record = syn.record(
            f"method{i:04d}",
            [
                syn.metric("psnr_rgb", {0: [base + (k % 3) / 10 for k in range(12)]}),
                syn.metric("lmd_mouth_dlib68", {0: [1.0 + (i % 13) / 10] * 12},
                           higher_is_better=False),
                syn.metric("fid_inception_pool3_full", None, higher_is_better=False,
                           distribution={0: 10.0 + (i % 31) / 3}),
            ],
            dataset=dataset,
        )
        record.dataset.options = {k: first(v) for k, v in datasets[dataset]["split"].items()}
        record.preparation = dict(board["preparation"])
        for metric_id, result in record.metrics.items():
            result.options = dict(options[metric_id]["options"])
            result.protocol = {"version": options[metric_id]["version"], **result.options}
        (folder / f"r{i:05d}.json").write_text(json.dumps(dump_record(record)))
    shutil.copytree(ROOT / "leaderboard" / "results" / "reported", folder / "reported")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=10.0, help="seconds the build must beat")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        results.mkdir()
        start = time.perf_counter()
        make_records(results, args.records)
        print(f"wrote {args.records} records in {time.perf_counter() - start:.1f} s")
        extra = {}
        params = inspect.signature(leaderboard.build_site).parameters
        if "board" in params:
            from auhead_bench.reporting.board import load_board, load_flags

            extra = {"board": load_board(), "flags": load_flags(None)}
        start, cpu = time.perf_counter(), time.process_time()
        site = leaderboard.build_site(
            Path(tmp) / "site", results=results, plots=False, n_boot=args.n_boot, **extra
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = sum(p.stat().st_size for p in site.out.rglob("*") if p.is_file())
        print(
            f"build_site: {len(site.accepted)} records, {len(site.rejected)} rejected, "
            f"{len(getattr(site, 'reported', []))} reported, {size / 2**20:.1f} MiB site: "
            f"{seconds:.2f} s wall, {cpu:.2f} s CPU (limit {args.limit:g} s: "
            f"{'under' if seconds < args.limit else 'OVER'})"
        )
    sys.exit(0 if seconds < args.limit else 1)


if __name__ == "__main__":
    main()
