"""Frames/s of the shared extraction stage vs the reference tools run one after another.

Run: ``python bench/bench_extraction.py [--clips 2] [--tools fid,lse,pyfeat] [--repeat 1]
[--out /tmp/bench_extraction.json]`` (tools: fid, lse, lse_s3fd, pyfeat; ours only:
fid_face, face_track). See bench/README.md for what each side does and the last figures.

Both sides read the same 25 fps clips (the ``demo`` dataset's real faces, normalised as the
runner prepares them) and the same weight files: random networks of the real architectures in
the real file formats, built by the tests' helpers (no weights can be downloaded here; the
time a network takes does not depend on its values, except where random values change the
work, see ``plausible_retinaface``). Each side runs in its own subprocess, so each peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own.

- ours: ``auhead_bench.features.FeatureStore.view`` on a fresh feature cache (cold): each
  video decoded once (one ``media.iter_frames`` pass, replayed to every extractor), each
  selected extractor run once on it, outputs written to the cache; then the same calls again
  (warm: cache reads, nothing decoded). Decoding happens while the first extractor reads
  frames; its time is counted as decode, not as that extractor's.
- reference: one subprocess per tool, as researchers run them today: pytorch-fid on PNG
  dumps, syncnet-python on each video file, py-feat ``Detectorv1.detect(video)``.

Models are loaded once per process on both sides; that set-up is timed apart from frames/s,
and the imports of the tools' libraries apart from set-up, alike on both sides (the references
import before their timer; ours imports lazily, so the bench imports the same first). Ours
hashes weight files once per file version (hash store in ``--workdir/cache``): the first run
on a workdir counts that hashing, later runs read the stored hashes.
Prints a markdown table and writes every figure to ``--out`` (JSON). Never asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "auhead-bench-extraction"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "bench_extraction.json"


@dataclass(frozen=True)
class Tool:
    """One comparison: our extractor vs the reference tool doing the same work (None: ours only)."""

    extractor: str
    weights: tuple[str, ...]  # weight groups to build: "inception", "syncnet", "s3fd", "pyfeat"
    reference: str | None


TOOLS = {
    "fid": Tool(
        "inception_pool3_full", ("inception",),
        "pytorch-fid 0.3.0: frames dumped as PNG (PIL), then compute_statistics_of_path",
    ),
    "lse": Tool(
        "syncnet_wholeframe", ("syncnet",),
        "syncnet-python 0.2.3 SyncNetInstance.evaluate per video on ffmpeg JPEG + WAV dumps, "
        "frames resized to 224 on read (Wav2Lip calculate_scores_LRS)",
    ),
    "lse_s3fd": Tool(
        "syncnet_s3fd", ("syncnet", "s3fd"),
        "syncnet-python 0.2.3 SyncNetPipeline.inference(video) per video (ffmpeg, S3FD, "
        "PySceneDetect, tracks, crops, evaluate)",
    ),
    "pyfeat": Tool(
        "pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet", ("pyfeat",),
        "py-feat 2.1.5 Detectorv1.detect(video, data_type='video') per video, keep_top_k=1",
    ),
    "fid_face": Tool("inception_pool3_face", ("inception",), None),
    "face_track": Tool("face_track", (), None),
}
# The libraries each side imports for a tool. The references import them before their set-up
# timer; ours imports them lazily inside set-up, so ours imports them first, timed apart: both
# sides' set-up is then model building alone, and both sides' imports are reported.
TOOL_IMPORTS = {
    "fid": ("pytorch_fid.inception",),
    "lse": ("syncnet_python.SyncNetModel", "syncnet_python.SyncNetInstance"),
    "lse_s3fd": ("syncnet_python.syncnet_pipeline",),
    "pyfeat": ("feat",),
}
PYFEAT_BATCH = 8  # the suite's PyFeatExpression.batch_size, given to the reference too
PYFEAT_THRESHOLD = 0.5
FID_BATCH = 50  # pytorch-fid's command-line default


# ---- preparation (driver): clips, weight files, tool environment -------------------------------


def prepare_clips(workdir: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` demo clips, normalised to 25 fps / 16 kHz as the runner scores them."""
    from auhead_bench import media
    from auhead_bench_datasets.demo import CUTS, Demo, DemoOptions

    if not 1 <= count <= len(CUTS):
        raise SystemExit(f"--clips must be between 1 and {len(CUTS)} (the demo has {len(CUTS)})")
    out = workdir / "clips"
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for clip in Demo(DemoOptions(), workdir / "dataset").clips()[:count]:
        path = out / f"{clip.id}.mp4"
        if not path.is_file():
            media.normalise(clip.video, path)
        frames = len(media.decode_video(path).frames)
        clips.append({"id": clip.id, "path": str(path), "frames": frames,
                      "sha256": media.sha256_file(path)})
    return clips


def _test_helpers() -> types.SimpleNamespace:
    """The tests' builders of random weights in the real formats (one place defines them)."""
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))
    import test_fid
    import test_lse
    import test_pyfeat_metrics

    return types.SimpleNamespace(fid=test_fid, lse=test_lse, pyfeat=test_pyfeat_metrics)


def plausible_retinaface(path: Path) -> None:
    """py-feat's RetinaFace-R34, random, except that its heads find one sane face.

    Fully random heads give boxes millions of pixels wide, and landmarks py-feat cannot align
    (it raises, the suite's extractor then falls back to frame by frame): neither side would
    do its normal per-frame work. Box and landmark regressions are zeroed (boxes = anchors)
    and only the coarsest level's anchors (256 and 512 px) are classed as faces.
    """
    import torch
    from feat.face_detectors.Retinaface.Retinaface_model import RETINAFACE_R34_CFG, RetinaFace

    net = RetinaFace(RETINAFACE_R34_CFG)
    with torch.no_grad():
        for head in (net.BboxHead, net.LandmarkHead, net.ClassHead):
            for conv in head._convs:
                conv.weight.zero_()
                conv.bias.zero_()
        for level, conv in enumerate(net.ClassHead._convs):  # logits (background, face) x 2
            face = 4.0 if level == len(net.ClassHead._convs) - 1 else -4.0
            conv.bias.copy_(conv.bias.new_tensor([-face, face, -face, face]))
    _test_helpers().pyfeat._save_safetensors(net, path)


def plausible_mobilefacenet(path: Path) -> None:
    """py-feat's MobileFaceNet, random, whose 68 landmarks stay near py-feat's own neutral face
    (``feat/resources/neutral_face_coordinates.csv``, scaled into the crop) so faces align."""
    import feat
    import torch
    from feat.landmark_detectors.mobilefacenet_test import MobileFaceNet

    points = np.loadtxt(Path(feat.__file__).parent / "resources" /
                        "neutral_face_coordinates.csv", delimiter=",", skiprows=1)
    low, high = points.min(axis=0), points.max(axis=0)
    template = 0.15 + 0.7 * (points - low) / (high - low)  # normalised crop coordinates
    net = MobileFaceNet([112, 112], 136)
    with torch.no_grad():
        net.output_layer.linear.weight.mul_(1e-3)  # input-dependent, but barely
        net.output_layer.bn.bias.copy_(torch.from_numpy(template.reshape(-1).astype(np.float32)))
    torch.save({"state_dict": net.state_dict()}, path)


def build_group(group: str, root: Path) -> dict[str, str]:
    """One group's random weight files, written into our cache layout: {spec name: sha256}."""
    import torch

    from auhead_bench.media import sha256_file
    from auhead_bench_metrics import fid, pyfeat
    from auhead_bench_metrics import syncnet_features as sf

    helpers = _test_helpers()
    torch.manual_seed(0)
    writers: dict[Any, Callable[[Path], None]] = {
        "inception": {fid.INCEPTION: lambda p: torch.save(helpers.fid.random_inception_state(), p)},
        "syncnet": {
            sf.SYNCNET_WEIGHTS: lambda p: torch.save(helpers.lse._random_syncnet().state_dict(), p)
        },
        # Background everywhere (the tests' detector): both sides run S3FD on every frame and
        # find no track, so SyncNet is not reached in this mode (see bench/README.md).
        "s3fd": {
            sf.S3FD_WEIGHTS: lambda p: torch.save(helpers.lse._faceless_s3fd().state_dict(), p)
        },
        "pyfeat": {
            pyfeat.RETINAFACE: plausible_retinaface,
            pyfeat.MOBILEFACENET: plausible_mobilefacenet,
        },
    }[group]
    hashes = {}
    if group == "pyfeat":  # the other py-feat files as the tests build them
        rest = tuple(s for s in pyfeat.PyFeatExpression.specs if s not in writers)
        hashes.update({s.name: s.sha256 for s in helpers.pyfeat.install_random_weights(root, rest)})
    for spec, write in writers.items():
        path = root / spec.name / spec.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        hashes[spec.name] = sha256_file(path)
    return hashes


WEIGHTS_BUILD = "2"  # bump when a builder changes: the files in --workdir are then rebuilt


def prepare_weights(workdir: Path, groups: set[str]) -> dict[str, str]:
    """Build each weight group once into ``workdir/weights`` (our cache layout) and lay it out
    where each reference tool looks; returns {spec name: sha256} for the specs to expect."""
    from auhead_bench_metrics import fid, pyfeat
    from auhead_bench_metrics import syncnet_features as sf

    root = workdir / "weights"
    manifest_path = workdir / "weights.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("_build") != WEIGHTS_BUILD:
        manifest = {"_build": WEIGHTS_BUILD}
    specs = {
        "inception": (fid.INCEPTION,),
        "syncnet": (sf.SYNCNET_WEIGHTS,),
        "s3fd": (sf.S3FD_WEIGHTS,),
        "pyfeat": pyfeat.PyFeatExpression.specs,
    }
    for group in sorted(groups):
        built = all(s.name in manifest and (root / s.name / s.filename).is_file()
                    for s in specs[group])
        if not built:
            print(f"building random {group} weights into {root} (once)", flush=True)
            manifest.update(build_group(group, root))
    manifest_path.write_text(json.dumps(manifest, indent=2))

    if "inception" in groups:  # pytorch-fid reads torch.hub's cache: $TORCH_HOME/hub/checkpoints
        hub = workdir / "torch" / "hub" / "checkpoints" / fid.INCEPTION.filename
        hub.parent.mkdir(parents=True, exist_ok=True)
        hub.unlink(missing_ok=True)
        hub.symlink_to(root / fid.INCEPTION.name / fid.INCEPTION.filename)
    if "pyfeat" in groups:  # py-feat reads its own HF-hub cache (feat/resources)
        resources = workdir / "feat_resources"
        shutil.rmtree(resources, ignore_errors=True)
        _test_helpers().pyfeat.hub_cache(resources, root, _with_hashes(specs["pyfeat"], manifest))
    return manifest


def _with_hashes(specs: tuple, manifest: dict[str, str]) -> tuple:
    """The specs expecting the built files' sha256 (published ones rightly refuse them)."""
    return tuple(dataclasses.replace(s, sha256=manifest[s.name]) for s in specs)


def tool_environment(workdir: Path) -> dict[str, str]:
    """PATH and LD_LIBRARY_PATH under which the reference tools run on this machine.

    syncnet-python shells out to ``ffmpeg``: the system's, else imageio-ffmpeg's binary put on
    PATH under that name. py-feat decodes videos with torchcodec, which needs FFmpeg's shared
    libraries; the ones PyAV bundles (the FFmpeg our side decodes with) are exposed under
    their sonames.
    """
    import av

    bin_dir, lib_dir = workdir / "bin", workdir / "ffmpeg_libs"
    for folder in (bin_dir, lib_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    system = shutil.which("ffmpeg")  # a system FFmpeg when there is one, else imageio-ffmpeg's
    if system is None:
        import imageio_ffmpeg

        system = imageio_ffmpeg.get_ffmpeg_exe()
    (bin_dir / "ffmpeg").symlink_to(system)
    bundled = Path(av.__file__).parent.parent / "av.libs"
    for library in bundled.glob("lib*.so.*"):
        stem, _, rest = library.name.partition("-")  # libavcodec-5e6b81c2.so.62.28.102
        if stem.startswith(("libav", "libsw")):
            major = rest.split(".so.")[1].split(".")[0]
            (lib_dir / f"{stem}.so.{major}").symlink_to(library)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(lib_dir), str(bundled), env.get("LD_LIBRARY_PATH")) if p
    )
    return env


def run_config(workdir: Path, clips: list[dict]) -> dict[str, Any]:
    """What every worker reads: the clips, each weight file's path, py-feat's model names."""
    from auhead_bench_metrics import fid, pyfeat
    from auhead_bench_metrics import syncnet_features as sf

    specs = (fid.INCEPTION, sf.SYNCNET_WEIGHTS, sf.S3FD_WEIGHTS, *pyfeat.PyFeatExpression.specs)
    files = {s.name: str(workdir / "weights" / s.name / s.filename) for s in specs}
    return {"clips": clips, "files": files, "pyfeat_models": pyfeat.PyFeatExpression.models}


# ---- timing helpers (workers) ------------------------------------------------------------------


class Stopwatch:
    """Seconds spent in wrapped callables, summed per label; time spent in a wrapped call
    nested inside another (decoding pulled by an extractor) counts only for the inner one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._nested: list[float] = []  # per open call: seconds of the calls nested in it

    def _timed(self, label: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            return work()
        finally:
            spent = time.perf_counter() - start
            inner = self._nested.pop()
            self.seconds[label] = self.seconds.get(label, 0.0) + spent - inner
            if self._nested:
                self._nested[-1] += spent

    def wrap(self, label: str, work: Callable) -> Callable:
        def timed(*args, **kwargs):
            return self._timed(label, lambda: work(*args, **kwargs))

        return timed

    def wrap_iterator(self, label: str, work: Callable[..., Iterator]) -> Callable:
        """As ``wrap``, for a generator function: each step of the iterator is timed."""

        def timed(*args, **kwargs):
            steps = work(*args, **kwargs)
            while True:
                try:
                    item = self._timed(label, lambda: next(steps))
                except StopIteration:
                    return
                yield item

        return timed


def peaks() -> dict[str, float]:
    """Peak resident memory of this process in MiB (Linux reports KiB), and torch's threads.

    Children are left out: a forked child's ru_maxrss starts at its parent's size, so the
    figure for ffmpeg or DataLoader workers would count the parent's pages a second time.
    """
    import torch

    return {
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hide the reference tools' prints (progress, per-video scores) from the table."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# ---- our side ----------------------------------------------------------------------------------


def run_ours(
    workdir: Path, run_dir: Path, clips: list[dict], tools: list[str], repeat: int
) -> dict[str, Any]:
    """The shared stage, each repeat on a fresh cache (cold): decode once, every extractor once
    per video. The fastest repeat is kept; then one warm pass on its filled cache."""
    from auhead_bench import media, weights
    from auhead_bench.cache import Cache
    from auhead_bench.features import FeatureStore
    from auhead_bench.plugins import get_registry
    from auhead_bench_metrics import fid
    from auhead_bench_metrics import syncnet_features as sf
    from auhead_bench_metrics.pyfeat import PyFeatExpression

    # The random files' hashes stand in for the published ones (which rightly refuse them).
    manifest = json.loads((workdir / "weights.json").read_text())
    fid.INCEPTION = dataclasses.replace(fid.INCEPTION, sha256=manifest.get(fid.INCEPTION.name))
    for name in list(sf.WEIGHTS):
        if name in manifest:
            sf.WEIGHTS[name] = dataclasses.replace(sf.WEIGHTS[name], sha256=manifest[name])
    if all(s.name in manifest for s in PyFeatExpression.specs):
        PyFeatExpression.specs = _with_hashes(PyFeatExpression.specs, manifest)

    features = FeatureStore(get_registry(), Cache(run_dir / "cache" / "0"), "cpu")
    idents = {TOOLS[t].extractor: t for t in tools}
    watch = Stopwatch()
    imports = timed_imports(tools)
    # Weight files are hashed (sha256 check, cache keys) once per file version, then read
    # from the hash store in AUHEAD_BENCH_CACHE: the first run pays it, later runs do not.
    weights.sha256_file = watch.wrap("hash", weights.sha256_file)
    start = time.perf_counter()
    for ident in idents:
        extractor = features.extractor(ident, ready=True)  # models loaded once, as in a run
        features.spec(ident)  # hashes the weight files, part of every cache key
        extractor.extract = watch.wrap(ident, extractor.extract)
    setup = time.perf_counter() - start
    hashing = watch.seconds.pop("hash", 0.0)
    media.iter_frames = watch.wrap_iterator("decode", media.iter_frames)

    def one_pass() -> dict[str, Any]:
        watch.seconds = {}
        begin = time.perf_counter()
        for clip in clips:
            _, errors = features.view(Path(clip["path"]), clip["sha256"], list(idents))
            features.release()  # the clip's decoded frames, as the runner drops them
            if errors:
                raise SystemExit(f"{clip['id']}: {errors}")
        total = time.perf_counter() - begin
        return {
            "total_s": total,
            "decode_s": watch.seconds.get("decode", 0.0),
            "extract_s": {idents[i]: watch.seconds.get(i, 0.0) for i in idents},
        }

    passes = []
    for index in range(repeat):
        features.cache = Cache(run_dir / "cache" / str(index))  # empty: a cold run
        passes.append(one_pass())
    best = min(passes, key=lambda p: p["total_s"])
    features.cache = Cache(run_dir / "cache" / str(passes.index(best)))
    warm = one_pass()
    return {
        "setup_s": setup,
        "hash_s": hashing,  # part of setup_s
        "imports_s": imports,
        "cold_s": best["total_s"],
        "decode_s": best["decode_s"],
        "extract_s": best["extract_s"],
        "cold_repeats_s": [p["total_s"] for p in passes],
        "warm_s": warm["total_s"],
        "warm_decode_s": warm["decode_s"],
        **peaks(),
    }


def timed_imports(tools: list[str]) -> float:
    """Seconds to import the libraries the tools' code imports (TOOL_IMPORTS)."""
    import importlib

    import torch  # noqa: F401  torch before feat, as on the reference side

    start = time.perf_counter()
    for tool in tools:
        for module in TOOL_IMPORTS.get(tool, ()):
            importlib.import_module(module)
    return time.perf_counter() - start


# ---- the reference tools -----------------------------------------------------------------------
# Each returns (model set-up seconds, work): work(scratch) runs the tool over every clip.

Work = Callable[[Path], None]


def reference_fid(workdir: Path, run: dict) -> tuple[float, Work]:
    """pytorch-fid as used on videos: every frame dumped as PNG, then its statistics of the
    folder (its command line's batch size and DataLoader workers)."""
    import av
    from pytorch_fid.fid_score import compute_statistics_of_path
    from pytorch_fid.inception import InceptionV3

    os.environ["TORCH_HOME"] = str(workdir / "torch")  # the random file, as a cached download
    start = time.perf_counter()
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    setup = time.perf_counter() - start
    workers = min(len(os.sched_getaffinity(0)), 8)

    def work(scratch: Path) -> None:
        for clip in run["clips"]:
            with av.open(clip["path"]) as container:
                for t, frame in enumerate(container.decode(video=0)):
                    frame.to_image().save(scratch / f"{clip['id']}_{t:06d}.png")
        with quiet():
            compute_statistics_of_path(str(scratch), model, FID_BATCH, 2048, "cpu", workers)

    return setup, work


def reference_lse(workdir: Path, run: dict) -> tuple[float, Work]:
    """Wav2Lip's LRS scoring with syncnet-python: per video, ffmpeg dumps its frames (JPEG)
    and its audio (16 kHz WAV), and ``evaluate`` reads them back, each frame resized to 224
    (Wav2Lip's evaluate resizes on read; syncnet-python's lacks that one line, so its
    ``cv2.imread`` is given it)."""
    import importlib

    import cv2
    from syncnet_python.SyncNetInstance import SyncNetInstance
    from syncnet_python.SyncNetModel import S

    start = time.perf_counter()
    instance = SyncNetInstance(S(), device="cpu")
    instance.loadParameters(run["files"]["syncnet_v2"])
    setup = time.perf_counter() - start
    instance_module = importlib.import_module("syncnet_python.SyncNetInstance")
    instance_module.cv2 = types.SimpleNamespace(
        imread=lambda name: cv2.resize(cv2.imread(name), (224, 224))
    )

    def work(scratch: Path) -> None:
        for clip in run["clips"]:
            folder = scratch / clip["id"]
            folder.mkdir()
            ffmpeg = ["ffmpeg", "-loglevel", "error", "-y", "-i", clip["path"]]
            subprocess.run([*ffmpeg, "-threads", "1", "-f", "image2", str(folder / "%06d.jpg")],
                           check=True)
            subprocess.run([*ffmpeg, "-af", "aresample=async=1", "-ac", "1", "-vn", "-acodec",
                            "pcm_s16le", "-ar", "16000", str(folder / "audio.wav")], check=True)
            with quiet():
                instance.evaluate(
                    types.SimpleNamespace(tmp_dir=str(folder), batch_size=20, vshift=15)
                )
            shutil.rmtree(folder)

    return setup, work


def reference_lse_s3fd(workdir: Path, run: dict) -> tuple[float, Work]:
    """syncnet-python's real-video pipeline, one ``inference(video)`` call per file."""
    from syncnet_python.syncnet_pipeline import PipelineConfig, SyncNetPipeline

    config = PipelineConfig(
        s3fd_weights=run["files"]["s3fd_sfd_face"], syncnet_weights=run["files"]["syncnet_v2"]
    )
    start = time.perf_counter()
    pipeline = SyncNetPipeline(config, device="cpu")
    setup = time.perf_counter() - start

    def work(scratch: Path) -> None:
        for clip in run["clips"]:
            with quiet():
                pipeline.inference(clip["path"], None, cache_dir=str(scratch / clip["id"]))
            shutil.rmtree(scratch / clip["id"])

    return setup, work


def reference_pyfeat(workdir: Path, run: dict) -> tuple[float, Work]:
    """py-feat's own video path: ``Detectorv1.detect(file, data_type='video')`` per video,
    its weights read from its own hub cache, faces capped as the suite's extractor caps them."""
    # torch before feat: importing feat first sets OMP_NUM_THREADS=1 (when unset), and torch
    # then runs single-threaded. The suite imports torch first; same threads on both sides.
    import torch  # noqa: F401  isort: skip
    import huggingface_hub.constants
    from feat import Detectorv1
    from feat import detector as feat_detector
    from feat.utils import io as feat_io

    resources = str(workdir / "feat_resources")
    feat_io.get_resource_path = feat_detector.get_resource_path = lambda: resources
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    start = time.perf_counter()
    with quiet(), contextlib.redirect_stderr(io.StringIO()):
        detector = Detectorv1(**run["pyfeat_models"], device="cpu")
    detector.facepose_detector.keep_top_k = 1  # random weights: hundreds of boxes otherwise
    setup = time.perf_counter() - start

    def work(scratch: Path) -> None:
        for clip in run["clips"]:
            with quiet():
                detector.detect(clip["path"], data_type="video", batch_size=PYFEAT_BATCH,
                                face_detection_threshold=PYFEAT_THRESHOLD, progress_bar=False)

    return setup, work


REFERENCES = {
    "fid": reference_fid,
    "lse": reference_lse,
    "lse_s3fd": reference_lse_s3fd,
    "pyfeat": reference_pyfeat,
}


def run_reference(workdir: Path, run_dir: Path, run: dict, tool: str, repeat: int) -> dict:
    """One reference tool over all clips, ``repeat`` times (fastest kept). Imports nothing of
    the suite, so its memory is the tool's own: paths and model names come in ``run``."""
    imports = timed_imports([tool])
    setup, work = REFERENCES[tool](workdir, run)
    times = []
    for index in range(repeat):
        scratch = run_dir / f"reference_{tool}_{index}"
        scratch.mkdir()
        start = time.perf_counter()
        work(scratch)
        times.append(time.perf_counter() - start)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"setup_s": setup, "imports_s": imports, "extract_s": min(times), "repeats_s": times,
            **peaks()}


# ---- driver ------------------------------------------------------------------------------------


def spawn(args: argparse.Namespace, side: str, run_dir: Path, env: dict[str, str]) -> dict:
    """One side in a fresh interpreter; its stdout/stderr go to a log in the run folder."""
    result = run_dir / f"{side}.json"
    log = run_dir / f"{side}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", side,
               "--workdir", str(args.workdir), "--run-dir", str(run_dir),
               "--clips", str(args.clips), "--tools", ",".join(args.tools),
               "--repeat", str(args.repeat)]
    with open(log, "w") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                               cwd=run_dir)
    if code != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"{side} failed (exit {code}); end of {log}:\n" + "\n".join(tail))
    return json.loads(result.read_text())


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def summarise(clips: list[dict], tools: list[str], ours: dict, refs: dict[str, dict]) -> dict:
    """frames/s per tool and overall, ratios (ours / reference: > 1 means ours is faster)."""
    frames = sum(c["frames"] for c in clips)
    rows = []
    for tool in tools:
        # Alone, a tool would decode every video itself: ours per tool counts a whole decode.
        ours_s = ours["extract_s"][tool] + ours["decode_s"]
        ref = refs.get(tool)
        rows.append({
            "tool": tool,
            "extractor": TOOLS[tool].extractor,
            "reference": TOOLS[tool].reference,
            "ours_s": ours_s,
            "ours_fps": frames / ours_s,
            "reference_s": ref["extract_s"] if ref else None,
            "reference_fps": frames / ref["extract_s"] if ref else None,
            "ratio": ref["extract_s"] / ours_s if ref else None,
            "reference_setup_s": ref["setup_s"] if ref else None,
            "reference_peak_rss_mib": ref["peak_rss_mib"] if ref else None,
        })
    compared = [t for t in tools if t in refs]
    only_ours = sum(ours["extract_s"][t] for t in tools if t not in refs)
    ours_total = ours["cold_s"] - only_ours
    ref_total = sum(refs[t]["extract_s"] for t in compared)
    ref_setup = sum(refs[t]["setup_s"] for t in compared)
    overall = {
        "tools": compared,
        "ours_s": ours_total,
        "ours_fps": frames / ours_total if compared else None,
        "ours_warm_fps": frames / ours["warm_s"],
        "reference_s": ref_total,
        "reference_fps": frames / ref_total if compared else None,
        "ratio": ref_total / ours_total if compared else None,
        # Once per process on each side, the libraries' imports timed apart on both sides;
        # ours also checks every weight file's sha256 (hash_s: 0 once the store has them).
        # Ours sets up every selected extractor: comparable only when all have a reference.
        "ours_setup_s": ours["setup_s"],
        "ours_hash_s": ours.get("hash_s"),
        "reference_setup_s": ref_setup,
        "setup_ratio": ours["setup_s"] / ref_setup if compared == tools and ref_setup else None,
        "ours_imports_s": ours.get("imports_s"),
        "reference_imports_s": sum(refs[t].get("imports_s", 0.0) for t in compared),
        "ratio_with_setup": (ref_total + ref_setup) / (ours_total + ours["setup_s"])
        if compared == tools else None,
        "ours_peak_rss_mib": ours["peak_rss_mib"],
        "reference_peak_rss_mib": max((refs[t]["peak_rss_mib"] for t in compared), default=None),
    }
    return {"frames": frames, "rows": rows, "overall": overall}


def table(summary: dict, ours: dict) -> str:
    def num(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    def times(ratio: float | None) -> str:
        return "-" if ratio is None else f"{ratio:.2f}x"

    lines = [
        "| tool | ours extractor | ours frames/s | reference frames/s | ratio ours/ref "
        "| reference peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        lines.append(
            f"| {row['tool']}{'' if row['reference'] else ' (ours only)'} | `{row['extractor']}` "
            f"| {num(row['ours_fps'])} "
            f"| {num(row['reference_fps'])} | {times(row['ratio'])} "
            f"| {num(row['reference_peak_rss_mib'], 0)} |"
        )
    o = summary["overall"]
    lines.append(
        f"| **overall** ({'+'.join(o['tools'])}) | decode once + these extractors "
        f"| {num(o['ours_fps'])} | {num(o['reference_fps'])} | {times(o['ratio'])} "
        f"| ours {num(o['ours_peak_rss_mib'], 0)} vs max {num(o['reference_peak_rss_mib'], 0)} |"
    )
    lines.append("")
    lines.append(
        f"{summary['frames']} frames. Ours per tool = its extractor + one full decode of every "
        f"video; overall = one decode + all extractors + cache writes. Ours warm re-run "
        f"(cache hits): {num(o['ours_warm_fps'], 1)} frames/s. Model set-up, once per process, "
        f"is not in frames/s: ours {num(o['ours_setup_s'], 1)} s (all extractors; "
        f"{num(o['ours_hash_s'], 1)} s of it hashing weight files), references "
        f"{num(o['reference_setup_s'], 1)} s in all ({times(o['setup_ratio'])}); the libraries' "
        f"imports, timed apart on both sides: ours {num(o['ours_imports_s'], 1)} s, references "
        f"{num(o['reference_imports_s'], 1)} s in all"
        + (f"; overall ratio with set-up counted: {times(o['ratio_with_setup'])}."
           if o["ratio_with_setup"] else ".")
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2, help="demo clips to use (1-5)")
    parser.add_argument("--tools", default="fid,lse,pyfeat",
                        help=f"comma-separated, from {', '.join(TOOLS)}")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed passes per side (fastest kept; models loaded once)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="clips and weight files, kept between runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown:
        raise SystemExit(f"unknown --tools {unknown}; choose from {', '.join(TOOLS)}")
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")

    if args.worker:  # one side, in its own process
        run = json.loads((args.run_dir / "run.json").read_text())
        if args.worker == "ours":
            result = run_ours(args.workdir, args.run_dir, run["clips"], args.tools, args.repeat)
        else:
            tool = args.worker.removeprefix("reference_")
            result = run_reference(args.workdir, args.run_dir, run, tool, args.repeat)
        (args.run_dir / f"{args.worker}.json").write_text(json.dumps(result, indent=2))
        return

    load_before = os.getloadavg()
    args.workdir.mkdir(parents=True, exist_ok=True)
    clips = prepare_clips(args.workdir, args.clips)
    prepare_weights(args.workdir, {g for t in args.tools for g in TOOLS[t].weights})
    env = tool_environment(args.workdir)
    env["AUHEAD_BENCH_WEIGHTS"] = str(args.workdir / "weights")
    env["AUHEAD_BENCH_CACHE"] = str(args.workdir / "cache")  # its hash store: kept between runs
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    (run_dir / "run.json").write_text(json.dumps(run_config(args.workdir, clips)))
    print(f"{len(clips)} clips, {sum(c['frames'] for c in clips)} frames; logs in {run_dir}",
          flush=True)
    print("ours (shared extraction stage) ...", flush=True)
    ours = spawn(args, "ours", run_dir, env)
    refs = {}
    for tool in args.tools:
        if TOOLS[tool].reference:
            print(f"reference {tool} ...", flush=True)
            refs[tool] = spawn(args, f"reference_{tool}", run_dir, env)
    summary = summarise(clips, args.tools, ours, refs)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_extraction.py", *sys.argv[1:]]),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "clips": clips,
        "ours": ours,
        "reference": refs,
        **summary,
        "table": table(summary, ours),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    shutil.rmtree(run_dir / "cache", ignore_errors=True)
    print()
    print(report["table"])
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"results in {args.out}")


if __name__ == "__main__":
    main()
