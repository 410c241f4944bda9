"""The Ray executor on a local Ray instance (ray.init(num_cpus=2)): same records as the local
executor, and a worker killed mid-task is retried without changing them.

Each run is a script in its own process: Ray starts worker processes and a raylet, which
must not outlive the test, and classes defined in a script's ``__main__`` reach the workers
by value (the executor ships what the driver registered directly).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auhead_bench.records import load_record, without_measurements

# Shared by both scripts: a cheap extractor and a distribution metric defined here (so they
# reach the workers only through the executor), a slow copying method, and a run function.
PRELUDE = """
import json, sys, time
from pathlib import Path
import numpy as np
from auhead_bench import DistributionMetric, Extractor, Generation, Method
from auhead_bench.config import RunConfig, load_config
from auhead_bench.plugins import PluginInfo, load_plugins
from auhead_bench.runner import Runner

class MeanRGB(Extractor):
    id = "mean_rgb"
    description = "per-frame mean colour"
    def extract(self, video):
        return {"mean": np.concatenate([c.frames.reshape(len(c), -1, 3).mean(1)
                                        for c in video.chunks()])}

class MeanRGBDistance(DistributionMetric):
    id = "mean_rgb_distance"
    description = "distance between the mean colours of the two sides, over all clips"
    higher_is_better = False
    needs = ("mean_rgb",)
    def reset(self):
        self.sums = {"gen": np.zeros(3), "gt": np.zeros(3)}
        self.count = {"gen": 0, "gt": 0}
    def update(self, view):
        for side, video in (("gen", view.generated), ("gt", view.ground_truth)):
            self.sums[side] += video["mean_rgb"]["mean"].sum(0)
            self.count[side] += len(video["mean_rgb"]["mean"])
    def compute(self):
        mean = {s: self.sums[s] / self.count[s] for s in self.sums}
        return float(np.linalg.norm(mean["gen"] - mean["gt"]))
    def summary(self):
        return dict(self.count)

# As mean_rgb_distance, with declared state: the Ray tasks' partial sums are merged.
class MeanRGBGap(DistributionMetric):
    id = "mean_rgb_gap"
    description = "distance between the mean colours of the two sides (declared state)"
    higher_is_better = False
    needs = ("mean_rgb",)
    def __init__(self, options=None):
        super().__init__(options)
        self.add_state("sums", np.zeros((2, 3)), merge="sum")
        self.add_state("frames", 0, merge="sum")
        self.add_state("clips", [], merge="cat")
    def update(self, view):
        gen, gt = view.generated["mean_rgb"]["mean"], view.ground_truth["mean_rgb"]["mean"]
        self.sums = self.sums + np.stack([gen.sum(0) / len(gen), gt.sum(0) / len(gt)])
        self.frames += len(gen)
        self.clips = self.clips + [view.clip.id]
    def compute(self):
        return float(np.linalg.norm(self.sums[0] - self.sums[1]) / len(self.clips))
    def summary(self):
        return {"frames": self.frames, "clips": sorted(self.clips)}

class SlowCopy(Method):
    id = "slow_copy"
    description = "copies the ground truth, slowly"
    def generate(self, clip, options, seed, out_path):
        time.sleep(1.0)
        out_path.write_bytes(clip.video.read_bytes())
        return Generation()

def registry():
    reg = load_plugins()
    info = PluginInfo("tests", "tests", "tests", "0")
    reg.add("extractor", MeanRGB, info)
    reg.add("metric", MeanRGBDistance, info)
    reg.add("metric", MeanRGBGap, info)
    reg.add("method", SlowCopy, info)
    return reg

def run(config, out):
    Runner(config, Path(out), registry=registry()).run()
"""

DEMO = PRELUDE + """
out, cache = Path(sys.argv[1]), Path(sys.argv[2])
config = load_config(None, {"cache_dir": cache / "local"})
metrics = [m for m in config.metrics if not m.id.startswith(("fid", "fvd", "lse", "au_", "emo"))]
metrics.append(metrics[0].model_copy(update={"id": "mean_rgb_distance"}))
metrics.append(metrics[0].model_copy(update={"id": "mean_rgb_gap"}))
datasets = [d.model_copy(update={"options": {"max_clips": 2}}) for d in config.datasets]
config = config.model_copy(update={"metrics": metrics, "datasets": datasets})
run(config, out / "local")
import ray
ray.init(num_cpus=2, include_dashboard=False)
run(config.model_copy(update={"executor": "ray", "clips_per_task": 1,
                              "cache_dir": cache / "ray"}), out / "ray")
"""

KILLED = PRELUDE + """
out, cache, root, executor = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
config = RunConfig.model_validate({
    "datasets": [{"id": "folder", "options": {"root": root}}],
    "methods": ["slow_copy", "static_frame"],
    "metrics": ["psnr_rgb", "mean_rgb_distance", "mean_rgb_gap"],
    "seeds": [0, 1],
    "cache_dir": str(cache),
    "executor": executor,
    "clips_per_task": 2,
    "skip_bad_clips": True,
})
if executor == "ray":
    import ray
    ray.init(num_cpus=2, include_dashboard=False)
run(config, out)
"""


def records(out: Path) -> dict[str, dict]:
    return {p.name: without_measurements(load_record(p)) for p in (out / "records").glob("*.json")}


# Metrics whose statistics a Ray run merges from its tasks' partial states (declared state):
# their values may differ from the local fold by float summation order only, so they are
# compared to this relative tolerance. Everything else (per-clip values and reasons, other
# metrics, counts, summaries) must be equal exactly.
MERGED = ("mean_rgb_gap",)
MERGED_RELATIVE_TOLERANCE = 1e-9


def assert_same_records(ours: dict[str, dict], reference: dict[str, dict]) -> None:
    assert ours.keys() == reference.keys()
    for name in reference:
        mine, theirs = json.loads(json.dumps(ours[name])), json.loads(json.dumps(reference[name]))
        for metric_id in MERGED:
            a, b = mine["metrics"][metric_id], theirs["metrics"][metric_id]
            for result in (a, b):
                assert result["status"] == "ok"
            assert a.pop("value") == pytest.approx(b.pop("value"), rel=MERGED_RELATIVE_TOLERANCE)
            seeds_a, seeds_b = a.pop("per_seed"), b.pop("per_seed")
            assert seeds_a.keys() == seeds_b.keys()
            for seed, value in seeds_b.items():
                assert seeds_a[seed] == pytest.approx(value, rel=MERGED_RELATIVE_TOLERANCE)
        assert mine == theirs


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ray_gives_the_local_records_on_the_demo(tmp_path):
    path = script(tmp_path, "demo.py", DEMO)
    subprocess.run(
        [sys.executable, str(path), str(tmp_path / "out"), str(tmp_path / "cache")],
        check=True,
        timeout=400,
    )
    local, distributed = records(tmp_path / "out/local"), records(tmp_path / "out/ray")
    assert len(local) == 3 and local.keys() == distributed.keys()
    assert_same_records(distributed, local)
    # The work was really done, on both sides: faces tracked, the test metric folded.
    for record in local.values():
        assert record["metrics"]["mean_rgb_distance"]["status"] == "ok"
        assert record["metrics"]["mean_rgb_distance"]["per_seed_info"]["0"]["gen"] == 100
        assert record["metrics"]["lmd_mouth_dlib68"]["n"] == 2
        assert record["metrics"]["mean_rgb_gap"]["per_seed_info"]["0"]["frames"] == 100
    features = list((tmp_path / "cache/ray/features").glob("*/*"))
    assert len(features) >= 2 * 4  # face_track and mean_rgb on 2 ground truths + generations


def _ray_task_pids(name: str) -> list[int]:
    """Ray worker processes whose title shows they are running task ``name`` now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if title.startswith(f"ray::{name}"):
                pids.append(int(entry.name))
    return pids


def test_a_worker_killed_mid_task_is_retried_and_records_do_not_change(
    video_factory, tmp_path
):
    for index in range(3):
        video_factory(f"data/clip{index}.mp4", seed=index)
    (tmp_path / "data/broken.mp4").write_bytes(b"not a video" * 100)  # skipped, listed
    path = script(tmp_path, "killed.py", KILLED)
    root = str(tmp_path / "data")

    def start(name: str, executor: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(path), str(tmp_path / name), str(tmp_path / f"cache-{name}"),
             root, executor],
            stderr=subprocess.PIPE,
            text=True,
        )

    reference = start("local", "local")
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    run = start("ray", "ray")
    killed = None
    deadline = time.monotonic() + 240
    tmp = tmp_path / "cache-ray" / "tmp"
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        generating = tmp.is_dir() and any(p.name.startswith("generations-") for p in tmp.iterdir())
        pids = _ray_task_pids("generate") if generating else []
        if pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None, "no generation task was seen running"
    assert run.wait(timeout=300) == 0, run.stderr.read()

    ours = records(tmp_path / "ray")
    assert_same_records(ours, records(tmp_path / "local"))
    for record in ours.values():
        assert all(g["status"] == "ok" for g in record["generations"])
        assert list(record["skipped_clips"]) == ["broken"]
        assert record["clip_ids"] == ["clip0", "clip1", "clip2"]
    # Nothing half-written was left behind by the killed worker as an entry.
    for entry in (tmp_path / "cache-ray" / "generations").glob("*/*"):
        assert json.loads((entry / "meta.json").read_text())["frames"] == 20


# ---- set-up errors, without a cluster: Ray's cluster queries are replaced ---------------


def _executor(tmp_path, **config):
    from auhead_bench.config import RunConfig
    from auhead_bench.ray_executor import RayExecutor
    from auhead_bench.runner import Runner

    config = RunConfig.model_validate(
        {
            "datasets": [{"id": "folder", "options": {"root": str(tmp_path)}}],
            "methods": ["static_frame"],
            "metrics": ["psnr_rgb"],
            "cache_dir": str(tmp_path / "cache"),
            "executor": "ray",
            **config,
        }
    )
    return RayExecutor(Runner(config, tmp_path / "out").context)


def _cluster(monkeypatch, *nodes: dict) -> None:
    import ray

    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": n} for n in nodes])
    totals: dict[str, float] = {}
    for node in nodes:
        for name, value in node.items():
            totals[name] = totals.get(name, 0) + value
    monkeypatch.setattr(ray, "cluster_resources", lambda: totals)


def test_a_request_no_node_can_meet_is_an_error_not_a_hang(tmp_path, monkeypatch):
    from auhead_bench import BenchError, Resources

    _cluster(monkeypatch, {"CPU": 8, "memory": 8 * 2**30}, {"CPU": 2, "GPU": 1})
    executor = _executor(tmp_path)
    assert executor._options(Resources(gpus=1, memory_gb=4), False, "x")["num_gpus"] == 0
    options = executor._options(Resources(cpus=2, gpus=1), True, "x")
    assert options == {"num_cpus": 2, "num_gpus": 1}
    with pytest.raises(BenchError) as error:  # GPU on one node, memory on the other
        executor._options(Resources(gpus=1, memory_gb=4), True, "method 'big'")
    message = str(error.value)
    assert "method 'big' asks for 1 CPU, 1 GPU, 4 GiB memory" in message
    assert "auhead_bench.Resources" in message and "\n" not in message


def test_cuda_on_a_cluster_without_gpus_is_an_error(tmp_path, monkeypatch):
    import ray

    from auhead_bench import BenchError

    _cluster(monkeypatch, {"CPU": 4})
    with pytest.raises(BenchError, match="has no GPU"):
        _executor(tmp_path, device="cuda")._job(ray)
    assert _executor(tmp_path, device="auto")._job(ray).use_gpu is False
    _cluster(monkeypatch, {"CPU": 4, "GPU": 2})
    job = _executor(tmp_path, device="auto")._job(ray)
    assert job.use_gpu is True and job.config.cache_dir.is_absolute()


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    from auhead_bench import BenchError
    from auhead_bench.ray_executor import _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BenchError, match=r"pip install 'auhead-bench\[ray\]'"):
        _import_ray()
