"""Facial expression with py-feat: per-frame Action Units and emotions, AU error, emotion accuracy.

One extractor runs py-feat's ``Detectorv1`` (RetinaFace-R34 faces, MobileFaceNet landmarks,
XGBoost AU model on HOG features, ResMaskNet emotions) once per video on the decoded 25 fps
frames; the AU and emotion metrics read its arrays, on generated and ground-truth videos alike.

Weights: py-feat fetches each model with ``hf_hub_download(repo, file, cache_dir=<its
resources folder>)``. Here every such file is a declared ``WeightsSpec`` that
``auhead-bench weights pull NAME`` puts in our cache; while py-feat builds or runs a detector,
its hub calls are answered from that cache (or from py-feat's own resources folder, where an
earlier online py-feat run left them), and a file found in neither is refused, never
downloaded. Nothing goes to the network during a run: an unanswered hub call would otherwise
retry for about 20 s per file on an offline machine.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal
from unittest import mock

import numpy as np

# Imported at registration on purpose, before anything imports py-feat: `import feat` sets
# OMP_NUM_THREADS=1 when it is unset (a macOS OpenMP workaround in feat/__init__.py), and torch
# reads that variable when it is imported, so a torch imported after feat runs on one thread.
# py-feat itself is imported only when its detector is built (and by au_mesh.py, ...), all
# after plugin registration; the demo dataset finds its videos without importing it.
import torch

from auhead_bench import (
    Clip,
    ClipScore,
    ClipSkipped,
    ClipView,
    Extractor,
    NotComputed,
    Options,
    PerClipMetric,
    VideoView,
    hookimpl,
)
from auhead_bench.emotions import (
    EMOTIONS,
    HSEMOTION_CLASSES,
    HSEMOTION_LABEL_MAP,
    LABEL_ALIASES,
    RESMASKNET_CLASSES,
    RESMASKNET_LABEL_MAP,
    canonical_emotion,
)
from auhead_bench.errors import BenchError
from auhead_bench.faces import crop_faces
from auhead_bench.frames import rebatch, writable
from auhead_bench.parity import ParityCheck, ParityInputs
from auhead_bench.resources import Resources
from auhead_bench.weights import WeightsMissing, WeightsSpec, file_sha256, locate, locate_all

# py-feat's 20 AUs, in the order of its Fex columns (feat.pretrained.AU_LANDMARK_MAP["Feat"]).
AU_NAMES = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43",
)  # fmt: skip
LANDMARKS = 68
BLOCK = 32  # frames per py-feat call: a multiple of its batch size (8)

_MIT = "MIT (py-feat model card)"
RETINAFACE = WeightsSpec(
    name="pyfeat_retinaface_r34",
    filename="retinaface_r34.safetensors",
    source="hf://py-feat/retinaface_r34/model.safetensors",
    sha256=None,
    licence=_MIT,
    description="py-feat RetinaFace-R34 face detector (Detectorv1 face_model='retinaface')",
)
MOBILEFACENET = WeightsSpec(
    name="pyfeat_mobilefacenet",
    filename="mobilefacenet_model_best.pth.tar",
    source="hf://py-feat/mobilefacenet/mobilefacenet_model_best.pth.tar"
    "@78ffd5f682cc90e000c18854757071bff86575a9",
    sha256="b994af026bfddbafc507a6f1c8737a9896bab20ed2b0cfb6ae90b81736970313",
    licence=_MIT,
    description="py-feat MobileFaceNet 68-point landmarks (landmark_model='mobilefacenet')",
)
# No revision or hash of this file is published anywhere we could find (py-feat's code asks
# for the hub's `main`; its migration script, which made this _v2 file from
# xgb_au_classifier.skops, names none): revision and sha256 stay unpinned, each result records
# the cached file's own sha256 (weights_record), and loading trusts only SKOPS_TRUSTED.
XGB_AU = WeightsSpec(
    name="pyfeat_xgb_au",
    filename="xgb_au_classifier_v2.skops",
    source="hf://py-feat/xgb_au/xgb_au_classifier_v2.skops",
    sha256=None,
    licence=_MIT,
    description="py-feat XGBoost AU classifiers with HOG scalers/PCA (au_model='xgb'), skops",
)
RESMASKNET_CONFIG = WeightsSpec(
    name="pyfeat_resmasknet_config",
    filename="resmasknet_config.json",
    source="hf://py-feat/resmasknet/config.json",
    sha256=None,
    licence=_MIT,
    description="py-feat ResMaskNet config (input channels, number of classes)",
)
RESMASKNET = WeightsSpec(
    name="pyfeat_resmasknet",
    filename="ResMaskNet_Z_resmasking_dropout1_rot30.pth",
    source="hf://py-feat/resmasknet/ResMaskNet_Z_resmasking_dropout1_rot30.pth"
    "@8e7722eb4ad1e517f63cab2db887c03f2f863188",
    sha256="1aa0454662df6c59ab8bc4db80a25be5a109acfda970d32e7593cde2d3aeae68",
    licence=_MIT,
    description="py-feat ResMaskNet 7-class emotion network (emotion_model='resmasknet')",
)
ARCFACE_R50 = WeightsSpec(
    name="pyfeat_arcface_r50",
    filename="arcface_r50.safetensors",
    source="hf://py-feat/arcface_r50/arcface_r50.safetensors",
    sha256=None,
    licence="InsightFace buffalo_l recognition model: non-commercial research only",
    description="py-feat ArcFace ResNet-50 identity embeddings (identity_model='arcface')",
)
PYFEAT_PATH_VARIABLES = ("FEAT_ARCFACE_R50_PATH", "FEAT_POSE_MLP_PATH")
# The types beyond skops' defaults (numpy, scikit-learn's scalers and PCA) that the AU model
# needs: py-feat's wrapper and xgboost's classifiers. py-feat itself trusts whatever types the
# file names (`load(path, trusted=get_untrusted_types(file=path))`), which lets a tampered
# file construct any importable type; here any other type refuses the file. (The _v2 file is
# py-feat's migration re-save naming its real wrapper path, not `__main__.XGBClassifier`.)
SKOPS_TRUSTED = (
    "feat.au_detectors.StatLearning.SL_test.XGBClassifier",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
)
PYFEAT_WEIGHTS = (RETINAFACE, MOBILEFACENET, XGB_AU, RESMASKNET_CONFIG, RESMASKNET, ARCFACE_R50)


# ---- py-feat's hub calls, answered from our cache ------------------------------------------


def hub_location(spec: WeightsSpec) -> tuple[str, str]:
    """(repo id, file in repo) that py-feat asks ``hf_hub_download`` for."""
    path = spec.source.removeprefix("hf://").partition("@")[0]
    owner, repo, filename = path.split("/", 2)
    return f"{owner}/{repo}", filename


def pyfeat_resource_dir() -> Path:
    """py-feat's ``feat/resources`` (its hub cache), found without importing py-feat."""
    found = importlib.util.find_spec("feat")
    if found is None or not found.submodule_search_locations:
        raise WeightsMissing("py-feat is not installed; pip install py-feat==2.1.5")
    return Path(list(found.submodule_search_locations)[0]) / "resources"


def find_pyfeat_file(spec: WeightsSpec) -> Path:
    """Our cache first (sha256-checked), then py-feat's own hub cache; else WeightsMissing."""
    try:
        return locate(spec)
    except WeightsMissing as missing:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = hub_location(spec)
        cached = try_to_load_from_cache(repo, filename, cache_dir=pyfeat_resource_dir())
        if isinstance(cached, str) and (
            spec.sha256 is None or file_sha256(Path(cached)) == spec.sha256
        ):
            return Path(cached)
        raise missing


def find_pyfeat_files(specs: tuple[WeightsSpec, ...]) -> dict[tuple[str, str], Path]:
    """Every file a detector needs, keyed as py-feat asks for it; WeightsMissing names one
    command that pulls every missing file."""
    found = locate_all(specs, find_pyfeat_file)
    return {hub_location(spec): found[spec.name] for spec in specs}


def weights_record(specs: tuple[WeightsSpec, ...]) -> dict[str, str]:
    """File name -> sha256 for records and cache keys ('missing' where a file is absent)."""
    record: dict[str, str] = {}
    for spec in specs:
        try:
            path = find_pyfeat_file(spec)
        except WeightsMissing:
            record[spec.filename] = "missing"
            continue
        record[spec.filename] = spec.sha256 or file_sha256(path)
    return record


class UntrustedWeights(BenchError):
    """A skops file names a type outside the fixed allowlist: it is not loaded."""


def audited_skops_types(file: str | Path) -> list[str]:
    """The non-default types ``file`` names, if all are in ``SKOPS_TRUSTED``; else refuse it.

    Stands in for ``skops.io.get_untrusted_types`` in py-feat's loader, whose answer py-feat
    passes straight to ``load(..., trusted=...)``: skops then loads only these types.
    """
    from skops.io import get_untrusted_types

    named = get_untrusted_types(file=file)
    unexpected = sorted(set(named) - set(SKOPS_TRUSTED))
    if unexpected:
        raise UntrustedWeights(
            f"refusing to load {Path(file).name}: it names types outside py-feat's AU model "
            f"({', '.join(unexpected)}; allowed beyond skops' defaults: "
            f"{', '.join(SKOPS_TRUSTED)})",
            path=file,
            fix=f"delete it and run `{XGB_AU.pull_command()} --force`; report it if the "
            "published file names these types",
        )
    return list(named)


@contextlib.contextmanager
def pyfeat_hub(files: Mapping[tuple[str, str], Path]) -> Iterator[None]:
    """While active, py-feat's ``hf_hub_download`` calls return our files, and only those.

    py-feat has no setting for where its weights are (it passes its own resources folder as
    ``cache_dir``), so its two references to ``hf_hub_download`` are swapped for a lookup in
    ``files``; any other request (e.g. the optional pose MLP) fails at once as a cache miss,
    which py-feat handles (the pose stays NaN). py-feat's environment overrides of weight
    paths (``FEAT_ARCFACE_R50_PATH``, ``FEAT_POSE_MLP_PATH``) are hidden for the same reason.
    Its skops loads trust only ``SKOPS_TRUSTED`` (``audited_skops_types``), not every type
    the file names.
    Also hides py-feat's progress bars and warnings, which would interleave with the runner's
    output, and restores autograd's mode on the way out: py-feat's RetinaFace turns it off
    process-wide (``torch.set_grad_enabled(False)`` in its ``__init__``), after which any
    training in the same process (AUHead's stages, a test suite) failed with "does not
    require grad".
    """
    import feat.detector
    import feat.pretrained
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def resolve(repo_id: str, filename: str, *args: Any, **kwargs: Any) -> str:
        path = files.get((repo_id, filename))
        if path is None:
            raise LocalEntryNotFoundError(f"{repo_id}/{filename} is not a declared weight file")
        return str(path)

    hidden = {k: v for k, v in os.environ.items() if k not in PYFEAT_PATH_VARIABLES}
    grad = torch.is_grad_enabled()
    with (
        mock.patch.dict(os.environ, hidden, clear=True),
        mock.patch.object(huggingface_hub, "hf_hub_download", resolve),
        mock.patch.object(feat.detector, "hf_hub_download", resolve),
        mock.patch.object(feat.detector, "get_untrusted_types", audited_skops_types),
        mock.patch.object(feat.pretrained, "get_untrusted_types", audited_skops_types),
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            torch.set_grad_enabled(grad)


def build_detector(models: Mapping[str, Any], files: Mapping[tuple[str, str], Path], device: str):
    """py-feat's ``Detectorv1`` with the given models, built from ``files`` only.

    One face per frame: RetinaFace keeps only its highest-scoring detection (its
    ``keep_top_k`` set to 1). A talking-head video shows one face; this also stops a detector
    from sending hundreds of candidate boxes through the landmark, AU and emotion models.
    """
    with pyfeat_hub(files):
        from feat import Detectorv1

        detector = Detectorv1(**models, device=torch.device(device))
    detector.facepose_detector.keep_top_k = 1
    return detector


def detect_frames(
    detector: Any,
    frames: np.ndarray,
    files: Mapping[tuple[str, str], Path],
    batch_size: int,
    threshold: float,
):
    """py-feat's ``detect`` on (T, H, W, 3) uint8 RGB frames; returns its Fex DataFrame.

    Frames go in as a tensor (``data_type='tensor'``): the frames the suite decoded, at 25 fps,
    rather than py-feat decoding the file again at its native rate.
    """
    tensor = torch.from_numpy(writable(frames)).permute(0, 3, 1, 2)
    with pyfeat_hub(files):
        return detector.detect(
            tensor,
            data_type="tensor",
            batch_size=batch_size,
            face_detection_threshold=threshold,
            progress_bar=False,
        )


# ---- the extractor ---------------------------------------------------------------------------


def fex_to_arrays(fex: Any, count: int) -> dict[str, np.ndarray]:
    """One row per frame (NaN where no face) from a Fex with at most one face per frame."""
    frame = fex["frame"].to_numpy().astype(int)
    in_range = len(frame) == 0 or (frame.min() >= 0 and frame.max() < count)
    if len(np.unique(frame)) != len(frame) or not in_range:
        raise ValueError(f"py-feat returned rows for frames {frame.tolist()} of {count}")

    def table(columns: list[str]) -> np.ndarray:
        out = np.full((count, len(columns)), np.nan, np.float32)
        out[frame] = fex[columns].to_numpy(dtype=np.float64)
        return out

    box = table(["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"])
    score = table(["FaceScore"])[:, 0]
    x = table([f"x_{i}" for i in range(LANDMARKS)])
    y = table([f"y_{i}" for i in range(LANDMARKS)])
    aus = table(list(AU_NAMES))
    emotions = table(list(RESMASKNET_CLASSES))
    detected = np.isfinite(box).all(axis=1) & np.isfinite(aus).all(axis=1)
    return {
        "aus": aus,
        "emotions": emotions,
        "detected": detected,
        "boxes": np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1),
        "face_score": score,
        "landmarks": np.stack([x, y], axis=-1),
    }


def no_face(count: int) -> dict[str, np.ndarray]:
    """The arrays of ``count`` frames without a face."""
    nan = np.float32(np.nan)
    return {
        "aus": np.full((count, len(AU_NAMES)), nan),
        "emotions": np.full((count, len(RESMASKNET_CLASSES)), nan),
        "detected": np.zeros(count, bool),
        "boxes": np.full((count, 4), nan),
        "face_score": np.full(count, nan),
        "landmarks": np.full((count, LANDMARKS, 2), nan),
    }


class PyFeatExpression(Extractor):
    """py-feat Detectorv1 per frame: 20 AU presence probabilities and 7 emotion probabilities.

    Output arrays (T = decoded frames): ``aus`` (T, 20) in ``AU_NAMES`` order, xgb presence
    probabilities in [0, 1]; ``emotions`` (T, 7) ResMaskNet softmax in ``RESMASKNET_CLASSES``
    order; ``detected`` (T,) bool; ``boxes`` (T, 4) ``[x0, y0, x1, y1]``; ``face_score`` (T,);
    ``landmarks`` (T, 68, 2). Frames without a face are NaN rows (``detected`` False), and so
    are frames whose face py-feat cannot align for its HOG features (a singular transform): the
    video is then run frame by frame so that one such frame does not lose the others.

    Both videos of a comparison go through the same pipeline: full decoded frames at their own
    resolution, RetinaFace at threshold 0.5, the single best face, and py-feat's own crops
    (112 px for landmarks and HOG, 224 px at 1.1x the box for ResMaskNet).
    """

    id = "pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet"
    description = "py-feat Detectorv1 per frame: 20 AU probabilities (xgb), 7 ResMaskNet emotions."
    resources = Resources(gpus=0.5, memory_gb=2)  # five networks, ~1.5 GB on the host
    version = "1"
    models: ClassVar[dict[str, Any]] = {
        "face_model": "retinaface",
        "landmark_model": "mobilefacenet",
        "au_model": "xgb",
        "emotion_model": "resmasknet",
        "identity_model": None,
        "gaze_model": None,
    }
    specs: ClassVar[tuple[WeightsSpec, ...]] = (
        RETINAFACE, MOBILEFACENET, XGB_AU, RESMASKNET_CONFIG, RESMASKNET,
    )  # fmt: skip
    batch_size = 8
    threshold = 0.5

    def __init__(self) -> None:
        self._detector: Any = None
        self._files: dict[tuple[str, str], Path] = {}

    def params(self) -> dict[str, Any]:
        return {
            "package": f"py-feat=={importlib.metadata.version('py-feat')}",
            "detector": "Detectorv1",
            **self.models,
            "input": "decoded 25 fps RGB frames, native resolution, detect(data_type='tensor')",
            "face_detection_threshold": self.threshold,
            "faces_per_frame": "1 (RetinaFace keep_top_k=1: highest score)",
            "unalignable_faces": f"NaN rows (that block of {BLOCK} frames rerun frame by frame)",
            "batch_size": self.batch_size,
            "aus": list(AU_NAMES),
            "emotions": list(RESMASKNET_CLASSES),
        }

    def weights(self) -> dict[str, str]:
        return weights_record(self.specs)

    def setup(self, device: str) -> None:
        if self._detector is None:
            self._files = find_pyfeat_files(self.specs)
            self._detector = build_detector(self.models, self._files, device)

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        """py-feat on blocks of ``BLOCK`` frames (a multiple of its batch size, so its batches
        are those of one call over the whole video), walking the chunks."""
        self.setup("cpu")
        parts = [
            self._detect_block(block)
            for block in rebatch((c.frames for c in video.chunks()), BLOCK)
        ]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def _detect_block(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        try:
            return self._detect(frames)
        except torch.linalg.LinAlgError:  # a degenerate face alignment somewhere in the block
            rows = [self._detect_or_nan(frame[None]) for frame in frames]
            return {key: np.concatenate([row[key] for row in rows]) for key in rows[0]}

    def _detect(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        fex = detect_frames(self._detector, frames, self._files, self.batch_size, self.threshold)
        return fex_to_arrays(fex, len(frames))

    def _detect_or_nan(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """One frame; a NaN row (no face) where py-feat cannot align the face it found."""
        try:
            return self._detect(frames)
        except torch.linalg.LinAlgError:
            return no_face(len(frames))


# ---- AU error --------------------------------------------------------------------------------


class AUOptions(Options):
    """``truncate``: frame t is compared with frame t; frames past the shorter video are dropped."""

    align: Literal["truncate"] = "truncate"


def aligned_aus(
    generated: VideoView, ground_truth: VideoView | None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(generated, ground truth) AU rows of the frames with a face on both sides, and counts."""
    if ground_truth is None:
        raise ClipSkipped("no ground-truth video")
    gen = np.asarray(generated[PyFeatExpression.id]["aus"], np.float64)
    gt = np.asarray(ground_truth[PyFeatExpression.id]["aus"], np.float64)
    frames_generated, frames_ground_truth = len(gen), len(gt)  # one row per frame
    count = min(len(gen), len(gt))
    gen, gt = gen[:count], gt[:count]
    both = np.isfinite(gen).all(axis=1) & np.isfinite(gt).all(axis=1)
    if not both.any():
        raise ClipSkipped("no frame with a py-feat face on both sides")
    counts = {
        "frames": int(both.sum()),
        "frames_compared": count,
        "frames_generated": frames_generated,
        "frames_ground_truth": frames_ground_truth,
    }
    return gen[both], gt[both], counts


class _PyFeatMetric(PerClipMetric):
    """Needs the py-feat extractor; not computed where its weights are missing."""

    needs = (PyFeatExpression.id,)

    def setup(self, device: str) -> None:
        find_pyfeat_files(PyFeatExpression.specs)

    def weights(self) -> dict[str, str]:
        return {}  # the extractor's weights are recorded with the extractor


class AUMAE(_PyFeatMetric):
    id = "au_mae_pyfeat_xgb"
    description = "AU error: mean absolute difference of py-feat xgb AU probabilities vs GT."
    higher_is_better = False
    Options = AUOptions

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "extractor": PyFeatExpression.id,
            "aus": list(AU_NAMES),
            "values": "xgb AU presence probabilities in [0, 1] (not FACS intensities)",
            "frames": "aligned frames with a face on both sides",
            "reduction": "per-AU MAE over frames, mean over the 20 AUs; mean over clips",
        }

    def score(self, view: ClipView) -> ClipScore:
        gen, gt, counts = aligned_aus(view.generated, view.ground_truth)
        per_au = np.abs(gen - gt).mean(axis=0)
        info = {**counts, "per_au": dict(zip(AU_NAMES, map(float, per_au), strict=True))}
        return ClipScore(float(per_au.mean()), info)


class AUF1(_PyFeatMetric):
    id = "au_f1_pyfeat_xgb_t05"
    description = "AU F1: py-feat xgb AU probabilities >= 0.5 on generated vs ground-truth frames."
    higher_is_better = True
    Options = AUOptions
    threshold: ClassVar[float] = 0.5

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "extractor": PyFeatExpression.id,
            "aus": list(AU_NAMES),
            "threshold": self.threshold,
            "active": "probability >= threshold, on each side",
            "frames": "aligned frames with a face on both sides",
            "reduction": "per clip, F1 per AU over frames (AUs active on neither side are "
            "undefined and left out), mean over the defined AUs; mean over clips",
        }

    def score(self, view: ClipView) -> ClipScore:
        gen, gt, counts = aligned_aus(view.generated, view.ground_truth)
        pred, true = gen >= self.threshold, gt >= self.threshold
        tp = (pred & true).sum(axis=0)
        wrong = (pred != true).sum(axis=0)  # false positives + false negatives
        defined = (tp + wrong) > 0
        if not defined.any():
            raise ClipSkipped(f"no AU reaches {self.threshold} on either side: F1 undefined")
        f1 = np.where(defined, 2 * tp / np.maximum(2 * tp + wrong, 1), np.nan)
        per_au = {
            au: (float(value) if ok else None)
            for au, value, ok in zip(AU_NAMES, f1, defined, strict=True)
        }
        info = {**counts, "aus_defined": int(defined.sum()), "per_au": per_au}
        return ClipScore(float(f1[defined].mean()), info)


# ---- HSEmotion: the second classifier ---------------------------------------------------------

HSEMOTION_MODEL = "enet_b0_8_best_vgaf"
HSEMOTION = WeightsSpec(
    name=f"hsemotion_{HSEMOTION_MODEL}",
    filename=f"{HSEMOTION_MODEL}.pt",
    source="https://github.com/HSE-asavchenko/face-emotion-recognition/raw/main/models/"
    f"affectnet_emotions/{HSEMOTION_MODEL}.pt",
    sha256=None,
    licence="Apache-2.0 (HSE-asavchenko/face-emotion-recognition)",
    description="HSEmotion EfficientNet-B0, 8 AffectNet emotions (a pickled timm model)",
)


def hsemotion_weights() -> Path:
    """The cached HSEmotion file; NotComputed when it or the ``hsemotion`` package is missing."""
    if importlib.util.find_spec("hsemotion") is None:
        raise NotComputed("the hsemotion package is not installed: pip install hsemotion==0.3.0")
    return locate(HSEMOTION)


class _PickledModule:
    """Stands in for every class a pickled model names, keeping only the state it is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def pickled_module_tensors(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The state dict of a whole pickled ``nn.Module`` (``torch.save(model)``), and the
    globals the pickle names, without running any of its classes' code.

    HSEmotion publishes whole pickled timm models. Unpickling them would run code named by the
    file (and those timm 0.4 classes no longer work with timm 1.x). Written by hand because no
    library reads tensors out of such a file safely: ``torch.load(weights_only=True)`` is given
    an inert stand-in for every global the file names, and the module tree of stand-ins is
    walked for its parameters and persistent buffers.
    """
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    with torch.serialization.safe_globals([(_PickledModule, name) for name in names]):
        root = torch.load(path, map_location="cpu", weights_only=True)

    def walk(node: Any, prefix: str) -> dict[str, Any]:
        state = getattr(node, "state", None)
        if not isinstance(state, dict):
            return {}
        skip = state.get("_non_persistent_buffers_set") or set()
        found = {
            prefix + key: value
            for table in ("_parameters", "_buffers")
            for key, value in (state.get(table) or {}).items()
            if value is not None and key not in skip
        }
        for key, child in (state.get("_modules") or {}).items():
            found.update(walk(child, f"{prefix}{key}."))
        return found

    return walk(root, ""), list(names)


def build_hsemotion_network(path: Path):
    """HSEmotion's EfficientNet-B0 rebuilt with timm and loaded strictly from ``path``.

    The architecture follows the file: TensorFlow-style 'same' padding (``tf_efficientnet_b0``)
    where it names ``Conv2dSame``, and HSEmotion's ``classifier = Sequential(Linear)`` head.
    """
    import timm

    state, names = pickled_module_tensors(path)
    if "classifier.0.weight" not in state:
        raise WeightsMissing(
            f"{path} is not an HSEmotion model (no classifier.0.weight); "
            f"run `{HSEMOTION.pull_command()} --force`"
        )
    same = any(name.endswith("Conv2dSame") for name in names)
    classes, features = state["classifier.0.weight"].shape
    model = timm.create_model("tf_efficientnet_b0" if same else "efficientnet_b0")
    model.classifier = torch.nn.Sequential(torch.nn.Linear(features, classes))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("num_batches_tracked")]:
        raise WeightsMissing(
            f"{path} does not fit HSEmotion's EfficientNet-B0 (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}); run `{HSEMOTION.pull_command()} --force`"
        )
    return model.eval()


def hsemotion_recognizer(path: Path, device: str):
    """The ``hsemotion`` package's ``HSEmotionRecognizer`` (its preprocessing and scoring),
    holding the network read from our cache instead of one it downloads and unpickles."""
    from unittest import mock

    from hsemotion import facial_emotions

    network = build_hsemotion_network(path)
    with (
        mock.patch.object(facial_emotions, "get_model_path", lambda name: str(path)),
        mock.patch.object(torch, "load", lambda *args, **kwargs: network),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        return facial_emotions.HSEmotionRecognizer(model_name=HSEMOTION_MODEL, device=device)


class HSEmotionExpression(Extractor):
    """HSEmotion 8-class probabilities per frame, on face crops from the shared dlib tracker.

    Output: ``emotions`` (T, 8) softmax in ``HSEMOTION_CLASSES`` order, NaN rows where the
    tracker found no face (interpolated boxes are not used); ``detected`` (T,) bool. Crops:
    ``crop_faces`` (square, 1.2x the dlib box, 224 px), then hsemotion's own transform (resize
    to 224, ImageNet normalisation). The boxes are the shared ``face_track`` extractor's.
    """

    id = f"hsemotion_{HSEMOTION_MODEL}_dlib_crop"
    needs = ("frames", "face_track")
    description = "HSEmotion (EfficientNet-B0, AffectNet 8 classes) per frame on dlib face crops."
    resources = Resources(gpus=0.25)
    version = "1"
    crop_scale = 1.2
    crop_size = 224
    batch_size = 32

    def __init__(self) -> None:
        self._recognizer: Any = None

    def params(self) -> dict[str, Any]:
        try:
            package = f"hsemotion=={importlib.metadata.version('hsemotion')}"
        except importlib.metadata.PackageNotFoundError:
            package = "hsemotion (not installed)"
        return {
            "package": package,
            "model": HSEMOTION_MODEL,
            "classes": list(HSEMOTION_CLASSES),
            "frames": "frames where dlib detected a face",
            "crop": {"scale": self.crop_scale, "size": self.crop_size},
            "scores": "softmax (predict_multi_emotions, logits=False)",
        }

    def weights(self) -> dict[str, str]:
        try:
            return {HSEMOTION.filename: file_sha256(hsemotion_weights())}
        except NotComputed:
            return {HSEMOTION.filename: "missing"}

    def setup(self, device: str) -> None:
        if self._recognizer is None:
            self._recognizer = hsemotion_recognizer(hsemotion_weights(), device)

    def extract(self, video: VideoView) -> dict[str, np.ndarray]:
        self.setup("cpu")
        track = video["face_track"]
        detected = np.asarray(track["detected"], bool)
        emotions = np.full((len(detected), len(HSEMOTION_CLASSES)), np.nan, np.float32)
        indices: list[int] = []

        def crops() -> Iterator[np.ndarray]:  # crops of detected frames, chunk by chunk
            for chunk in video.chunks():
                frames = np.flatnonzero(detected[chunk.start : chunk.stop])
                indices.extend(chunk.start + frames)
                if len(frames):
                    boxes = track["boxes"][chunk.start + frames]
                    yield crop_faces(chunk.frames[frames], boxes, self.crop_size, self.crop_scale)

        done = 0
        for batch in rebatch(crops(), self.batch_size):
            _, scores = self._recognizer.predict_multi_emotions(list(batch), logits=False)
            emotions[indices[done : done + len(batch)]] = scores
            done += len(batch)
        return {"emotions": emotions, "detected": detected}


# ---- emotion accuracy --------------------------------------------------------------------------

# Dataset labels are read in MEAD's spelling (auhead_bench.emotions; CREMA-D's six map onto the
# same words), with LABEL_ALIASES for the other spellings in use.


@dataclass(frozen=True)
class EmotionClassifier:
    """Where a classifier's per-frame probabilities are, its classes, and the label map."""

    key: str  # as it appears in metric ids
    extractor: str
    array: str
    classes: tuple[str, ...]
    label_map: Mapping[str, str | None]  # dataset emotion -> class; None: no such class
    check_weights: Callable[[], object]  # raises NotComputed when the classifier cannot run

    def target(self, clip: Clip) -> str:
        """The class a clip should be recognised as; ClipSkipped where there is none."""
        if not clip.emotion:
            raise ClipSkipped("clip has no emotion label")
        emotion = canonical_emotion(clip.emotion, free_text=False)
        if emotion is None:
            raise ClipSkipped(f"emotion label {clip.emotion!r} is not one of {', '.join(EMOTIONS)}")
        target = self.label_map[emotion]
        if target is None:
            raise ClipSkipped(f"{emotion} has no {self.key} class: clip excluded")
        return target


RESMASKNET_EMOTIONS = EmotionClassifier(
    key="resmasknet",
    extractor=PyFeatExpression.id,
    array="emotions",
    classes=RESMASKNET_CLASSES,
    label_map=RESMASKNET_LABEL_MAP,
    check_weights=lambda: find_pyfeat_files(PyFeatExpression.specs),
)


HSEMOTION_EMOTIONS = EmotionClassifier(
    key="hsemotion",
    extractor=HSEmotionExpression.id,
    array="emotions",
    classes=HSEMOTION_CLASSES,
    label_map=HSEMOTION_LABEL_MAP,
    check_weights=hsemotion_weights,
)


def recognise(
    classifier: EmotionClassifier, video: VideoView, target: str, voting: str
) -> tuple[float, str, int]:
    """(score, predicted class, frames used) for one video.

    ``video`` voting: 1.0 if the argmax of the mean probability over frames with a face is the
    target, else 0.0. ``frame`` voting: the fraction of those frames whose argmax is the target.
    """
    probs = np.asarray(video[classifier.extractor][classifier.array], np.float64)
    probs = probs[np.isfinite(probs).all(axis=1)]
    if len(probs) == 0:
        raise ClipSkipped(f"no frame with a face for {classifier.key}")
    index = classifier.classes.index(target)
    predicted = classifier.classes[int(np.argmax(probs.mean(axis=0)))]
    if voting == "video":
        return float(predicted == target), predicted, len(probs)
    return float((probs.argmax(axis=1) == index).mean()), predicted, len(probs)


class _EmotionAccuracy(PerClipMetric):
    """Accuracy of one classifier against the clip's emotion label, with its GT ceiling.

    Subclasses fix the classifier, the voting (``video`` or ``frame``) and which side is scored:
    the generated video (the ground truth's result is kept in the info as the ceiling) or the
    ground truth itself (the ceiling as a metric of its own).
    """

    higher_is_better = True
    classifier: ClassVar[EmotionClassifier]
    voting: ClassVar[Literal["video", "frame"]]
    scores_ground_truth: ClassVar[bool] = False

    def setup(self, device: str) -> None:
        self.classifier.check_weights()

    def protocol(self) -> dict[str, Any]:
        voting = {
            "video": "argmax of the mean class probability over frames with a face",
            "frame": "fraction of frames with a face whose argmax is the label",
        }[self.voting]
        return {
            **super().protocol(),
            "classifier": self.classifier.key,
            "extractor": self.classifier.extractor,
            "classes": list(self.classifier.classes),
            "label_map": dict(self.classifier.label_map),
            "label_aliases": LABEL_ALIASES,
            "unmapped_labels": "clip skipped and counted",
            "voting": f"{self.voting}: {voting}",
            "scored": "ground truth (ceiling)" if self.scores_ground_truth else "generated",
            "reduction": "mean over clips",
        }

    def score(self, view: ClipView) -> ClipScore:
        generated, ground_truth = view.generated, view.ground_truth
        target = self.classifier.target(view.clip)
        if self.scores_ground_truth:
            if ground_truth is None:
                raise ClipSkipped("no ground-truth video")
            value, predicted, frames = recognise(self.classifier, ground_truth, target, self.voting)
            return ClipScore(value, {"target": target, "predicted": predicted, "frames": frames})
        value, predicted, frames = recognise(self.classifier, generated, target, self.voting)
        info: dict[str, Any] = {"target": target, "predicted": predicted, "frames": frames}
        info["ground_truth_correct"] = info["ground_truth_predicted"] = None
        if ground_truth is not None:
            with contextlib.suppress(ClipSkipped):
                gt_value, gt_predicted, _ = recognise(
                    self.classifier, ground_truth, target, self.voting
                )
                info["ground_truth_correct"] = gt_value
                info["ground_truth_predicted"] = gt_predicted
        return ClipScore(value, info)


def emotion_metrics(classifier: EmotionClassifier) -> list[type[_EmotionAccuracy]]:
    """The four metrics of a classifier: video/frame voting, on generated and ground truth."""
    made: list[type[_EmotionAccuracy]] = []
    for voting in ("video", "frame"):
        for on_gt in (False, True):
            suffix = "_gt_ceiling" if on_gt else ""
            side = "ground-truth videos (ceiling)" if on_gt else "generated videos"
            made.append(
                type(
                    f"EmotionAccuracy_{classifier.key}_{voting}{'_gt' if on_gt else ''}",
                    (_EmotionAccuracy,),
                    {
                        "id": f"emotion_acc_{classifier.key}_{voting}{suffix}",
                        "description": f"Emotion accuracy of {side}: {classifier.key}, "
                        f"{voting} voting.",
                        "needs": (classifier.extractor,),
                        "classifier": classifier,
                        "voting": voting,
                        "scores_ground_truth": on_gt,
                        "__module__": __name__,
                    },
                )
            )
    return made


RESMASKNET_METRICS = emotion_metrics(RESMASKNET_EMOTIONS)
HSEMOTION_METRICS = emotion_metrics(HSEMOTION_EMOTIONS)


@hookimpl
def register_weights(register):
    for spec in PYFEAT_WEIGHTS:
        register(spec)
    register(HSEMOTION)


@hookimpl
def register_extractors(register):
    register(PyFeatExpression)
    register(HSEmotionExpression)


@hookimpl
def register_metrics(register):
    register(AUMAE)
    register(AUF1)
    for metric in RESMASKNET_METRICS + HSEMOTION_METRICS:
        register(metric)


# ---- parity: py-feat's own video pipeline ------------------------------------------------------


def best_face_per_frame(fex: Any) -> Any:
    """The highest-scoring face of each frame (py-feat keeps every face it finds by default)."""
    fex = fex.dropna(subset=["FaceScore"])
    return fex.sort_values("FaceScore", ascending=False).drop_duplicates("frame").set_index(
        "frame").sort_index()


class AUMAEPyFeatDetect(ParityCheck):
    """``au_mae_pyfeat_xgb`` against ``Detectorv1.detect(path, data_type="video")``: py-feat
    decodes each mp4 itself (torchcodec) and runs its default settings; a user then keeps
    the best face per frame and averages |AU_gen - AU_gt| over the frames with a face on
    both sides, per AU, then over AUs. Our extractor feeds py-feat our decoded frames in
    blocks of 32.

    RetinaFace's ``keep_top_k`` is set to 1 here too: it keeps the highest-scoring face
    after NMS, which is the best face a user picks from the default's rows, and every face
    goes through the other networks on its own, so the values are the same; it only spares
    the other faces' networks (hundreds per frame with untrained weights). A clip py-feat's
    own pipeline cannot align (a singular transform, where ours leaves that frame out) has
    no reference value, and the check fails on it."""

    id = "pyfeat-detect"
    metric = "au_mae_pyfeat_xgb"
    reference = "feat.Detectorv1(...).detect(mp4, data_type='video', batch_size=8)"
    requires = {"feat": "py-feat==2.1.5", "torchcodec": "torchcodec"}

    def reference_values(self, inputs: ParityInputs) -> dict[str, float | None]:
        files = find_pyfeat_files(PyFeatExpression.specs)
        with pyfeat_hub(files):
            from feat import Detectorv1

            detector = Detectorv1(**PyFeatExpression.models, device=torch.device(inputs.device))
        detector.facepose_detector.keep_top_k = 1
        values: dict[str, float | None] = {}
        for clip in inputs.clips:
            sides = []
            for path in (clip.generated, clip.ground_truth):
                try:
                    with pyfeat_hub(files):
                        fex = detector.detect(
                            str(path), data_type="video", batch_size=8,
                            face_detection_threshold=PyFeatExpression.threshold,
                            progress_bar=False)
                except torch.linalg.LinAlgError:
                    break
                sides.append(best_face_per_frame(fex)[list(AU_NAMES)].dropna())
            if len(sides) < 2:
                values[clip.clip_id] = None
                continue
            gen, gt = sides
            both = gen.index.intersection(gt.index)
            values[clip.clip_id] = (
                float(np.abs(gen.loc[both].to_numpy(float) - gt.loc[both].to_numpy(float))
                      .mean(axis=0).mean()) if len(both) else None)
        return values


@hookimpl
def register_parity_checks(register):
    register(AUMAEPyFeatDetect)
