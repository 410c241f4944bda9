"""Faults a long run meets: a full disk, kill -9 at random moments, two runs sharing one cache
at once, a method crashing on one clip. After each, the same command must finish with the
records of a run that met no fault.

The runs are real `auhead-bench run` processes (tests/scripts/fault_bench.py: a few built-in
plugins and cheap test plugins). A full disk is simulated there at the file-write level: once
the process has finished K entries of one kind, files under the cache and output folders
still open but their write() raises OSError(ENOSPC), as on a real full disk. SQLite's own
"database or disk is full" is provoked for real, with PRAGMA max_page_count.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_audio, make_frames

from auhead_bench import media
from auhead_bench.cache import Cache, write_json_atomic
from auhead_bench.config import RunConfig
from auhead_bench.errors import DiskFullError
from auhead_bench.records import load_record, without_measurements
from auhead_bench.runner import Runner

SCRIPT = Path(__file__).parent / "scripts" / "fault_bench.py"
METHODS = ["static_frame", "test_copy"]
SLOW = "0.25"  # seconds per test_copy generation where a run must last long enough to hit

# What each cache kind's entry folder must hold to be whole.
ENTRY_FILES = {
    "clips": {"meta.json", "video.mp4", "audio.wav", "reference.png"},
    "generations": {"meta.json", "video.mp4"},
    "scores": {"value.json"},
}


def config_text(root: Path, methods: list[str]) -> str:
    return json.dumps(  # JSON is YAML
        {
            "name": "faults",
            "datasets": [{"id": "folder", "options": {"root": str(root)}}],
            "methods": methods,
            "metrics": ["test_mae_rgb", "test_brightness_gap"],
            "seeds": [0, 1],
            "device": "cpu",  # "auto" would import torch: 2 s per process
        }
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """Two short clips and the config every run here uses."""
    base = tmp_path_factory.mktemp("bench")
    for index in range(2):
        media.write_video(
            base / "data" / f"clip{index}.mp4", make_frames(20, 48, index), make_audio(0.8)
        )
    (base / "config.yaml").write_text(config_text(base / "data", METHODS))
    return base


def command(config: Path, out: Path, cache: Path) -> list[str]:
    return [sys.executable, str(SCRIPT), str(config), str(out), str(cache)]


def environment(**extra: str) -> dict[str, str]:
    # Records name the git commit, and other people commit to this checkout while the tests
    # run: every run here sees no repository, so all records agree on it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULT_")}
    return {**env, "GIT_DIR": os.path.join(os.sep, "nonexistent-repo"), **extra}


def run(config: Path, out: Path, cache: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(config, out, cache), env=environment(**env), capture_output=True, text=True,
        timeout=120,
    )


def records(out: Path) -> dict[str, dict]:
    """Records by file name, without measured seconds (no two runs share those)."""
    return {p.name: without_measurements(load_record(p)) for p in (out / "records").glob("*.json")}


@pytest.fixture(scope="module")
def reference(bench) -> tuple[dict[str, dict], float]:
    """The records of a run that met no fault, and how long that run took (test_copy slow)."""
    start = time.monotonic()
    done = run(bench / "config.yaml", bench / "ref-out", bench / "ref-cache", FAULT_SLOW=SLOW)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    found = records(bench / "ref-out")
    assert len(found) == 2
    return found, seconds


def entries(cache: Path) -> dict[Path, int]:
    """Every entry folder of the cache with its mtime; fails on any entry that is not whole."""
    found: dict[Path, int] = {}
    if not cache.is_dir():  # a run killed before it made its cache
        return found
    # tmp: unfinished entries; datasets: the datasets' own scratch files (probe caches)
    kinds = (p for p in cache.iterdir() if p.is_dir() and p.name not in ("tmp", "datasets"))
    for kind_dir in sorted(kinds):
        for entry in kind_dir.glob("*/*"):
            names = {f.name for f in entry.iterdir()}
            if kind_dir.name == "features":
                assert names in ({"arrays.npz"}, {"error.txt"}), f"partial entry {entry}: {names}"
            else:
                assert kind_dir.name in ENTRY_FILES, f"unexpected cache kind {kind_dir}"
                missing = ENTRY_FILES[kind_dir.name] - names
                assert not missing, f"partial entry {entry}: no {sorted(missing)}"
            for name in names:
                path = entry / name
                assert path.stat().st_size > 0, f"empty {path}"
                if name.endswith(".json"):
                    json.loads(path.read_text())
                elif name.endswith(".npz"):
                    with np.load(path) as data:
                        assert data.files
            found[entry] = entry.stat().st_mtime_ns
    return found


def no_stray_files(cache: Path, out: Path) -> None:
    """Temp folders removed, no half-written record beside the records."""
    assert not list((cache / "tmp").iterdir()), "temp folders left in cache/tmp"
    records_dir = out / "records"
    if records_dir.is_dir():
        stray = [p.name for p in records_dir.iterdir() if not p.name.endswith(".json")]
        stray += [p.name for p in records_dir.iterdir() if p.name.startswith(".")]
        assert not stray, f"temp files left in {records_dir}: {stray}"


# ---- a full disk -------------------------------------------------------------------------


def test_cache_put_turns_a_full_disk_into_one_line(tmp_path):
    cache = Cache(tmp_path / "cache")
    for code in (errno.ENOSPC, errno.EDQUOT):
        with pytest.raises(DiskFullError) as info:
            with cache.put("generations", "ab" * 32) as folder:
                (folder / "video.mp4").write_bytes(b"half a video")
                try:  # a plugin wrapping the write's error still stops the run
                    raise OSError(code, os.strerror(code), str(folder / "meta.json"))
                except OSError as exc:
                    raise RuntimeError("the method could not write its output") from exc
        message = str(info.value)
        assert message.startswith(f"{cache.root}: out of disk space while writing a generations")
        assert os.strerror(code) in message and "free space" in message and "\n" not in message
        assert cache.get("generations", "ab" * 32) is None
        assert not list((cache.root / "tmp").iterdir())
    # Other errors are not a full disk: unchanged, and the temp folder is still removed.
    with pytest.raises(PermissionError):
        with cache.put("scores", "cd" * 32):
            raise PermissionError(errno.EACCES, "Permission denied")
    assert not list((cache.root / "tmp").iterdir())


def test_a_full_disk_at_the_rename_or_in_a_record(tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    record = tmp_path / "out" / "records" / "r.json"
    write_json_atomic(record, {"old": True})
    real_rename, real_replace = os.rename, os.replace

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "rename", full)
    with pytest.raises(DiskFullError, match="free space"):
        cache.write_json("scores", "ef" * 32, {"value": 1.0})
    monkeypatch.setattr(os, "rename", real_rename)
    assert cache.get("scores", "ef" * 32) is None and not list((cache.root / "tmp").iterdir())

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskFullError) as info:
        write_json_atomic(record, {"old": False})
    monkeypatch.setattr(os, "replace", real_replace)
    assert str(info.value).startswith(f"{record.parent}: out of disk space while writing r.json")
    assert json.loads(record.read_text()) == {"old": True}  # the old record is whole
    assert [p.name for p in record.parent.iterdir()] == ["r.json"]  # no temp file left


def test_a_full_index_keeps_the_entry_and_is_repaired(tmp_path, monkeypatch):
    """SQLite's own SQLITE_FULL: the database may not grow by a page (max_page_count)."""
    cache = Cache(tmp_path / "cache")
    connect = sqlite3.connect

    def no_new_pages(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    monkeypatch.setattr(sqlite3, "connect", no_new_pages)
    with pytest.raises(DiskFullError, match="the cache index .database or disk is full"):
        # A long label needs overflow pages, so the insert must grow the database.
        with cache.put("scores", "12" * 32, label="x" * 20000) as folder:
            (folder / "value.json").write_text("{}")
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert cache.get("scores", "12" * 32) is not None  # the entry is whole and is reused
    assert cache.indexed() == set()
    assert cache.repair_index() == 1 and cache.indexed() == {("scores", "12" * 32)}


# Where each fault lands, in the order the runs meet them on one cache and one output folder:
# the 6th generation (test_copy's own write of its video), the ground truth's features (the
# generated video's were the first), a per-clip score, and the second record.
FAULTS = [
    ("generations:5", "a generations cache entry"),
    ("features:1", "a features cache entry"),
    ("scores:2", "a scores cache entry"),
    ("records:1", "test_copy__folder"),
]


def test_full_disk_stops_with_one_line_and_the_same_command_resumes(bench, reference, tmp_path):
    cache, out, log = tmp_path / "cache", tmp_path / "out", tmp_path / "generated.log"
    config = bench / "config.yaml"
    seen: dict[Path, int] = {}
    for fault, where in FAULTS:
        done = run(config, out, cache, FAULT_FULL_AFTER=fault, FAULT_LOG=str(log))
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        context = f"fault {fault}: exit {done.returncode}\n{done.stderr}"
        assert done.returncode == 2 and len(errors) == 1, context
        assert "Traceback" not in done.stderr, context
        folder = out / "records" if fault.startswith("records") else cache
        assert errors[0].startswith(f"error: {folder}: out of disk space while writing"), context
        assert where in errors[0] and "free space" in errors[0], context
        now = entries(cache)
        assert {p: now.get(p) for p in seen} == seen, f"{fault}: a finished entry was redone"
        seen = now
        no_stray_files(cache, out)
    assert len(records(out)) == 1  # the first record was written before the disk filled

    done = run(config, out, cache, FAULT_LOG=str(log))
    assert done.returncode == 0, done.stderr
    assert records(out) == reference[0]
    assert {p: p.stat().st_mtime_ns for p in seen} == seen  # reused, not redone
    # test_copy finished each of its generations once over all the runs.
    made = Counter(log.read_text().split("\n")[:-1])
    assert made == Counter(f"clip{c} {s}" for c in range(2) for s in range(2))
    no_stray_files(cache, out)


def test_full_disk_while_writing_the_tables(bench, tmp_path):
    out = tmp_path / "out"
    done = run(bench / "config.yaml", out, tmp_path / "cache", FAULT_FULL_AFTER="records:2")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"error: {out}: out of disk space")
    assert not (out / "table.md").exists() or (out / "table.md").stat().st_size


# ---- kill -9 -------------------------------------------------------------------------------


def test_kill_9_at_random_moments_then_resume(bench, reference, tmp_path):
    """Kills at random delays over the length of a measured run. The seed is new each time
    (FAULT_TEST_SEED=N repeats one): a failure names it."""
    seed = int(os.environ.get("FAULT_TEST_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    expected, duration = reference
    delays = [round(rng.uniform(0.1, 0.9) * duration, 2) for _ in range(4)]
    cache, out = tmp_path / "cache", tmp_path / "out"
    history = []
    for delay in delays:
        process = subprocess.Popen(
            command(bench / "config.yaml", out, cache),
            env=environment(FAULT_SLOW=SLOW),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
        stderr = process.communicate()[1]
        history.append((delay, process.returncode))
        context = f"seed {seed}, delays {delays}, (delay, exit) so far {history}:\n{stderr}"
        assert process.returncode in (0, -signal.SIGKILL), context
        try:
            entries(cache)  # every entry whole, whenever the kill came
        except AssertionError as exc:
            pytest.fail(f"{exc} ({context})")
    done = run(bench / "config.yaml", out, cache)
    assert done.returncode == 0, f"seed {seed}, delays {delays}: {done.stderr}"
    assert records(out) == expected, f"seed {seed}, delays {delays}, (delay, exit) {history}"


# ---- two runs at once --------------------------------------------------------------------


def test_two_runs_share_one_cache_at_the_same_time(bench, reference, tmp_path):
    """Same config into two output folders, the methods in opposite orders: the runs race
    for the same clips, generations, features and scores from both ends."""
    cache = tmp_path / "cache"
    # beside config.yaml: records name data paths relative to their config's folder
    reverse = bench / "reverse.yaml"
    reverse.write_text(config_text(bench / "data", METHODS[::-1]))
    configs = {"a": bench / "config.yaml", "b": reverse}
    processes = {
        name: subprocess.Popen(
            command(config, tmp_path / name, cache),
            env=environment(FAULT_SLOW=SLOW),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, config in configs.items()
    }
    for name, process in processes.items():
        stderr = process.communicate(timeout=120)[1]
        assert process.returncode == 0, f"run {name}: {stderr}"
    for name in configs:
        assert records(tmp_path / name) == reference[0], f"run {name}"
        no_stray_files(cache, tmp_path / name)
    on_disk = entries(cache)
    shared = Cache(cache)
    assert shared.indexed() == {(p.parent.parent.name, p.name) for p in on_disk}
    counts = Counter(kind for kind, _ in shared.indexed())
    assert {k: v["entries"] for k, v in shared.summary().items()} == dict(counts)
    assert shared.repair_index() == 0


# ---- a method that crashes on one clip -----------------------------------------------------


def test_a_crashing_method_is_counted_in_the_table(tmp_path):
    """tests/test_runner.py checks the record; here the tables show the n actually scored."""
    spec = importlib.util.spec_from_file_location("fault_bench", SCRIPT)
    fault_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fault_bench)
    for index in range(2):
        media.write_video(
            tmp_path / "data" / f"clip{index}.mp4", make_frames(20, 48, index), make_audio(0.8)
        )
    config = json.loads(config_text(tmp_path / "data", ["test_crash_on_clip1"]))
    config["cache_dir"] = str(tmp_path / "cache")
    out = tmp_path / "out"
    (record,) = Runner(
        RunConfig.model_validate(config), out, registry=fault_bench.load_registry()
    ).run()
    failed = [g for g in record.generations if g.status == "failed"]
    assert [(g.clip_id, g.seed) for g in failed] == [("clip1", 0), ("clip1", 1)]
    assert all("simulated crash on clip1" in g.error for g in failed)
    for metric in ("test_mae_rgb", "test_brightness_gap"):
        result = record.metrics[metric]
        assert (result.status, result.n, result.n_skipped) == ("ok", 2, 2)
        assert "generation failed" in result.reason
        row = pd.read_csv(out / "table.csv").iloc[0]
        # the tables count clips (2 seeds of one clip are one sample): 1 scored, 1 skipped
        assert (row[f"{metric}_n"], row[f"{metric}_n_skipped"]) == (1, 1)
    table = (out / "table.md").read_text()
    assert table.count("(n=1, n too small, ") == 2 and table.count(", 1 skipped [1])") == 2
    assert "(n=2" not in table
