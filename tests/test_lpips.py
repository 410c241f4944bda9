"""LPIPS through the weights cache equals the `lpips` package used directly, same trunk weights.

torchvision's ImageNet AlexNet cannot be downloaded here: a random AlexNet of the real
architecture is saved as a state dict (torchvision's file format) in the weights cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auhead_bench.clip import Clip
from auhead_bench.media import sha256_file
from auhead_bench.metric import ClipSkipped
from auhead_bench.views import ClipView, VideoView
from auhead_bench.weights import WeightsMissing, local_path, registered_weights
from auhead_bench_metrics import lpips_metric
from auhead_bench_metrics.lpips_metric import ALEXNET, LPIPS

CLIP = Clip(id="c", video=Path("gt.mp4"))
# Which modules of torchvision's alexnet().features each LPIPS slice holds (lpips'
# pretrained_networks.alexnet): restated here to load the reference independently.
SLICES = {1: range(0, 2), 2: range(2, 5), 3: range(5, 8), 4: range(8, 10), 5: range(10, 12)}


def video(frames: np.ndarray) -> VideoView:
    return VideoView.from_arrays(frames, path=Path("v.mp4"), content_sha256="x")


@pytest.fixture
def trunk(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """A random AlexNet in the cache, accepted as if it were torchvision's file."""
    from torchvision.models import alexnet

    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    torch.manual_seed(0)
    state = alexnet().state_dict()
    path = local_path(ALEXNET)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    monkeypatch.setattr(lpips_metric, "ALEXNET_SHA256_PREFIX", sha256_file(path)[:8])
    return state


def reference_lpips(state: dict[str, torch.Tensor], gen: np.ndarray, gt: np.ndarray) -> float:
    """The `lpips` package on its own: trunk loaded by key, frames through `lpips.im2tensor`."""
    import lpips

    model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    mapped = {
        f"net.slice{k}.{key.removeprefix('features.')}": value
        for key, value in state.items()
        for k, modules in SLICES.items()
        if key.startswith("features.") and int(key.split(".")[1]) in modules
    }
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    assert not unexpected and not [m for m in missing if m.startswith("net.")]
    with torch.no_grad():
        values = [
            float(model(lpips.im2tensor(a), lpips.im2tensor(b)))
            for a, b in zip(gen, gt, strict=True)
        ]
    return float(np.mean(values))


def test_lpips_equals_the_package_with_the_same_trunk(trunk):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (3, 64, 72, 3), dtype=np.uint8)
    gen = np.clip(gt.astype(int) + rng.integers(-40, 40, gt.shape), 0, 255).astype(np.uint8)
    metric = LPIPS()
    metric.setup("cpu")
    longer = np.concatenate([gen, gen[:1]])  # one extra frame: truncated away
    score = metric.score(ClipView(CLIP, video(longer), video(gt)))
    expected = reference_lpips(trunk, gen, gt)
    assert score.info["frames"] == 3
    assert score.value == pytest.approx(expected, rel=1e-4)
    assert expected > 0
    assert metric.score(ClipView(CLIP, video(gt), video(gt))).value == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ClipSkipped, match="ground-truth"):
        metric.score(ClipView(CLIP, video(gen), None))
    assert metric.weights()[ALEXNET.filename] == sha256_file(local_path(ALEXNET))
    assert metric.protocol()["align"] == "truncate"


def test_missing_or_wrong_trunk_is_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(WeightsMissing, match="auhead-bench weights pull torchvision_alexnet"):
        LPIPS().setup("cpu")
    assert LPIPS().weights()[ALEXNET.filename] == "missing"
    path = local_path(ALEXNET)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not alexnet")
    with pytest.raises(WeightsMissing, match="hash prefix 7be5be79.*--force"):
        LPIPS().setup("cpu")


def test_trunk_is_declared_with_torchvisions_url():
    spec = registered_weights()["torchvision_alexnet"]
    assert spec.source == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert spec.filename == "alexnet-owt-7be5be79.pth"


def test_parity_with_the_lpips_package_on_two_demo_clips(trunk, tmp_path):
    """`auhead-bench parity` for lpips_alex_v01: the package builds its own trunk through
    torch.hub from our cached file and reads the mp4 files with OpenCV."""
    from auhead_bench.config import RunConfig
    from auhead_bench.parity import run_parity
    from auhead_bench.plugins import load_plugins

    config = RunConfig.model_validate({
        "methods": ["ground_truth", "static_frame"], "datasets": ["demo"],
        "metrics": ["lpips_alex_v01"], "cache_dir": str(tmp_path / "cache"), "device": "cpu",
    })
    report = run_parity(config, tmp_path / "parity", wanted=["lpips-package"], clips=2,
                        registry=load_plugins(), say=lambda m: None)
    assert [r.status for r in report.rows] == ["pass", "pass"], report.rows
    static = next(r for r in report.rows if r.record.startswith("static_frame"))
    assert static.clips == 2 and static.theirs > 0
    ground_truth = next(r for r in report.rows if r.record.startswith("ground_truth"))
    assert ground_truth.theirs == pytest.approx(0.0, abs=1e-6)
