"""``fvd_i3d_16f_stylegan_v_full`` against StyleGAN-V's OWN code, executed: its
``frechet_video_distance.compute_fvd`` (``fvd2048_16f``'s function) with its
``VideoFramesFolderDataset``, DataLoader, ``FeatureStats`` and ``sqrtm`` formula.

StyleGAN-V is not a package: its source comes from a checkout (``AUHEAD_STYLEGAN_V``: a folder
holding ``src/``) or the search tool's mirror of universome/stylegan-v (a git directory,
``AUHEAD_STYLEGAN_V_GIT``, default below), extracted into the test's folder and run from there;
nothing of it is committed. Its dataset code imports omegaconf (``pip install omegaconf``).
Without either the test is skipped with the reason.

Inputs: three clip pairs of exactly 16 frames (StyleGAN-V draws the real clip's start with an
unseeded ``random.randint``: with 16 frames the only start is 0, ours draws 0 too), written as
H.264 mp4; ours reads the mp4 files, StyleGAN-V reads PNG folders of the frames OpenCV
decodes from them (StyleGAN-V's input format). The detector is a random Inception-I3D
TorchScript (tests/test_fvd.py) placed in dnnlib's own download cache under the URL
``compute_fvd`` names, so StyleGAN-V loads it by its own ``open_url``. Tolerance 1e-4
relative (the parity default); measured 1.2e-6 (FVD 0.3487, three clips: singular
covariances, ``sqrtm`` vs our eigenvalue form).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_fvd import save_random_i3d

from auhead_bench import Clip, ClipSkipped, ClipView, VideoView, media
from auhead_bench.frames import FrameSource
from auhead_bench.media import sha256_file
from auhead_bench.weights import local_path
from auhead_bench_metrics import fvd

MIRROR = "/work/.mirror/universome+stylegan-v/repo"
DETECTOR_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"  # compute_fvd
RTOL = 1e-4

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def stylegan_v_source(folder: Path) -> Path | None:
    """A folder holding StyleGAN-V's ``src/``: the checkout, or the mirror extracted here."""
    checkout = os.environ.get("AUHEAD_STYLEGAN_V")
    if checkout:
        return Path(checkout) if (Path(checkout) / "src" / "metrics").is_dir() else None
    git_dir = os.environ.get("AUHEAD_STYLEGAN_V_GIT", MIRROR)
    if not Path(git_dir).is_dir() or shutil.which("git") is None:
        return None
    archive = subprocess.run(["git", "--git-dir", git_dir, "archive", "HEAD", "src"],
                             capture_output=True)
    if archive.returncode:
        return None
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


@pytest.fixture
def stylegan_v(tmp_path, monkeypatch):
    """StyleGAN-V's modules, imported from its source; removed from sys.modules afterwards."""
    if importlib.util.find_spec("omegaconf") is None:
        pytest.skip("StyleGAN-V's dataset code imports omegaconf: `pip install omegaconf`")
    root = stylegan_v_source(tmp_path / "stylegan-v")
    if root is None:
        pytest.skip("no StyleGAN-V source: set AUHEAD_STYLEGAN_V to a checkout of "
                    "universome/stylegan-v (or AUHEAD_STYLEGAN_V_GIT to its git directory)")
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    from src import dnnlib
    from src.metrics import frechet_video_distance, metric_utils

    yield dnnlib, frechet_video_distance, metric_utils, root
    for name in set(sys.modules) - before:
        if name == "src" or name.startswith("src."):
            del sys.modules[name]


def cached_i3d(tmp_path: Path, monkeypatch) -> Path:
    """A random Inception-I3D TorchScript where `auhead-bench weights pull` puts the real one."""
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    i3d = local_path(fvd.I3D)
    i3d.parent.mkdir(parents=True)
    shutil.copyfile(save_random_i3d(tmp_path / "i3d.pt"), i3d)
    return i3d


def ours(pairs: list[tuple[Path, Path]]) -> float:
    """``fvd_i3d_16f_stylegan_v_full`` on the mp4 files (a clip under 16 frames is skipped)."""
    extractor, metric = fvd.I3DLogitsStyleGANV(), fvd.FVDStyleGANVFull()
    extractor.setup("cpu")
    for k, (generated, truth) in enumerate(pairs):
        views = []
        for path in (generated, truth):
            view = VideoView(FrameSource(path), sha256_file(path))
            views.append(view.with_features({extractor.id: extractor.extract(view)}))
        try:
            metric.update(ClipView(Clip(id=f"c{k}", video=truth), *views))
        except ClipSkipped:
            continue
    return metric.compute()


def frame_folders(out: Path, videos: list[Path]) -> Path:
    """StyleGAN-V's input: one folder of PNG frames per video, as OpenCV decodes the mp4."""
    for k, path in enumerate(videos):
        folder = out / f"video{k}"
        folder.mkdir(parents=True)
        capture = cv2.VideoCapture(str(path))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            cv2.imwrite(str(folder / f"{index:06d}.png"), frame)
            index += 1
        capture.release()
    return out


def test_stylegan_v_exact_fvd_equals_stylegan_v_compute_fvd(tmp_path, monkeypatch, stylegan_v):
    dnnlib, frechet_video_distance, metric_utils, _ = stylegan_v
    from omegaconf import OmegaConf

    i3d = cached_i3d(tmp_path, monkeypatch)
    # dnnlib's download cache: open_url finds the file under the URL's md5, as after a download
    monkeypatch.setenv("DNNLIB_CACHE_DIR", str(tmp_path / "dnnlib"))
    downloads = tmp_path / "dnnlib" / "downloads"
    downloads.mkdir(parents=True)
    md5 = hashlib.md5(DETECTOR_URL.encode()).hexdigest()
    shutil.copyfile(i3d, downloads / f"{md5}_i3d_torchscript.pt")

    rng = np.random.default_rng(0)
    pairs = []
    for k in range(3):
        generated, truth = tmp_path / f"gen{k}.mp4", tmp_path / f"gt{k}.mp4"
        media.write_video(generated, rng.integers(0, 256, (16, 128, 128, 3), np.uint8), None)
        media.write_video(truth, rng.integers(0, 256, (16, 128, 128, 3), np.uint8), None)
        pairs.append((generated, truth))

    def dataset(path: Path) -> dict:
        return dnnlib.EasyDict(class_name="src.training.dataset.VideoFramesFolderDataset",
                               path=str(path), cfg=OmegaConf.create({"max_num_frames": 16}),
                               resolution=128, use_labels=False, xflip=False)

    opts = metric_utils.MetricOptions(
        dataset_kwargs=dataset(frame_folders(tmp_path / "real", [t for _, t in pairs])),
        gen_dataset_kwargs=dataset(frame_folders(tmp_path / "fake", [g for g, _ in pairs])),
        generator_as_dataset=True, device=torch.device("cpu"), cache=False)
    theirs = frechet_video_distance.compute_fvd(opts, max_real=2048, num_gen=2048,
                                                num_frames=16)

    assert theirs > 0
    assert abs(ours(pairs) - theirs) <= RTOL * max(abs(theirs), 1.0), (ours(pairs), theirs)


def test_the_parity_check_runs_stylegan_v_code_given_a_checkout(tmp_path, monkeypatch,
                                                                stylegan_v):
    """`auhead-bench parity`'s stylegan-v-fvd check with AUHEAD_STYLEGAN_V set: StyleGAN-V's
    compute_fvd on every clip (20 and 24 frames: the real start seeded from the file, as ours;
    a 10-frame clip both sides leave out) equals our metric."""
    from auhead_bench.parity import ParityClip, ParityInputs

    cached_i3d(tmp_path, monkeypatch)
    rng = np.random.default_rng(1)
    pairs = []
    for k, frames in enumerate((20, 24, 10)):
        generated, truth = tmp_path / f"gen{k}.mp4", tmp_path / f"gt{k}.mp4"
        media.write_video(generated, rng.integers(0, 256, (frames, 64, 64, 3), np.uint8), None)
        media.write_video(truth, rng.integers(0, 256, (frames, 64, 64, 3), np.uint8), None)
        pairs.append((generated, truth))
    monkeypatch.setenv(fvd.STYLEGAN_V_ENV, str(stylegan_v[3]))
    clips = [ParityClip(f"c{k}", g, t, None, None) for k, (g, t) in enumerate(pairs)]
    theirs = fvd.StyleGANVFVD().reference_values(ParityInputs(clips, "cpu", tmp_path / "ref"))
    assert abs(ours(pairs) - theirs) <= RTOL * max(abs(theirs), 1.0), (ours(pairs), theirs)
