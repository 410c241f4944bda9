"""AUs -> a structured 2D face representation: py-feat's AU->mesh model, placed on the reference.

How AUHead turns AUs into landmarks is not published (docs/auhead.md, filled in). We use the model
py-feat ships offline for exactly this mapping: ``au_to_mesh_pls_v4`` (a PLS regression from
20 FACS AU intensities to the 478-vertex MediaPipe face mesh, frontalised), loaded with
``feat.plotting.load_face_mesh_viz_model(model_version="v4")`` and evaluated with
``predict_face_mesh``. The 24 FEAFA+ AUs are first mapped to py-feat's 20 AUs (FEAFA_TO_FEAT,
in the core's auhead_bench.aus, shared with the AU-control metric); the mesh is then placed
on the reference face by a similarity transform fitted to the reference's dlib 68 landmarks
(py-feat's ``DLIB68_FROM_MP478`` gives the corresponding mesh vertices), and its contours
(lips, eyes, brows, face oval) are drawn on a black image.

FEAFA+ AU (index)              -> py-feat AU (FACS)        how
left/right eye closure (0, 1)  -> AU43 eyes closed         mean of the pair
left/right lid raise (2, 3)    -> AU05 upper lid raiser    mean of the pair
left/right brow lower (4, 5)   -> AU04 brow lowerer        mean of the pair
left/right brow raise (6, 7)   -> AU01 and AU02            mean of the pair, to both
jaw drop / mouth open (8)      -> AU26 jaw drop            as is (in this model AU25 "lips
                                                           part" narrows the lip gap, so it
                                                           is not driven)
lip corner raise (11, 12)      -> AU12 lip corner puller   mean of the pair
lip corner stretch (13, 14)    -> AU20 lip stretcher       mean of the pair
upper/lower lip suck (15, 16)  -> AU28 lip suck            sum, clipped to 1
upper lip raise (18)           -> AU10 upper lip raiser    as is
chin raise (20)                -> AU17 chin raiser         as is
nose wrinkle (23)              -> AU09 nose wrinkler       as is

Without a counterpart (UNMAPPED): lower lip slide left/right (9, 10; FACS AD30, jaw sideways),
jaw thrust (17; AD29, a forward motion invisible in a frontal 2D view), lower lip depress (19;
AU16, absent from the v4 model), lip pucker (21; AU18, absent from the v4 model), cheek puff
(22; AD34). They do not move the mesh; stage 2 still sees them through its AU tokens.
py-feat AUs no FEAFA AU drives (AU06, AU07, AU11, AU14, AU15, AU23, AU24, AU25) stay at 0.
The mesh model is left/right symmetric in its inputs, so bilateral pairs lose their asymmetry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from auhead_bench.aus import FEAFA_TO_FEAT as FEAFA_TO_FEAT  # the mapping lives in the core
from auhead_bench.aus import FEAT_AUS as FEAT_AUS
from auhead_bench.aus import UNMAPPED as UNMAPPED
from auhead_bench.aus import feafa_to_feat as feafa_to_feat
from auhead_bench.aus import feat_matrix as feat_matrix
from auhead_bench.errors import BenchError, MediaError
from auhead_bench.faces import image_landmarks
from auhead_bench.features import image_features
from auhead_bench_methods.auhead.au_space import N_AUS

MESH_MODEL_VERSION = "v4"  # the AU->mesh model py-feat ships inside its package (offline)
# Region -> colour (RGB) of its contour lines, so the encoder can tell regions apart.
REGION_COLOURS: dict[str, tuple[int, int, int]] = {
    "FACE_LANDMARKS_FACE_OVAL": (255, 255, 255),
    "FACE_LANDMARKS_LEFT_EYEBROW": (255, 128, 0),
    "FACE_LANDMARKS_RIGHT_EYEBROW": (255, 128, 0),
    "FACE_LANDMARKS_LEFT_EYE": (0, 160, 255),
    "FACE_LANDMARKS_RIGHT_EYE": (0, 160, 255),
    "FACE_LANDMARKS_LIPS": (255, 0, 96),
}
DEFAULT_FACE_HEIGHT = 0.6  # without a detected face: mesh height as a fraction of the image


@lru_cache(maxsize=1)
def _mesh_model() -> Any:
    try:
        from feat.plotting import load_face_mesh_viz_model
    except ImportError as exc:  # pragma: no cover - py-feat is a core dependency
        raise BenchError("py-feat is needed for AU->mesh", fix="pip install py-feat") from exc
    model = load_face_mesh_viz_model(model_version=MESH_MODEL_VERSION)
    if tuple(model.au_columns) != FEAT_AUS:
        raise BenchError(
            f"py-feat's AU->mesh {MESH_MODEL_VERSION} columns changed: {model.au_columns}",
            fix="pin py-feat==2.1.5",
        )
    return model


def mesh_weights_sha256() -> str:
    """sha256 of the shipped AU->mesh file, for fingerprints. The file is found where py-feat's
    ``get_resource_path`` looks (``feat/resources``) without importing py-feat: ``import
    feat`` took 6 s of a warm demo re-run that only needs this hash."""
    import importlib.util

    from auhead_bench.weights import file_sha256

    found = importlib.util.find_spec("feat")
    if found is None or not found.submodule_search_locations:  # pragma: no cover - core dep
        raise BenchError("py-feat is needed for AU->mesh", fix="pip install py-feat")
    resources = Path(list(found.submodule_search_locations)[0]) / "resources"
    return file_sha256(resources / f"au_to_mesh_pls_{MESH_MODEL_VERSION}.npz")


def mesh_points(aus: np.ndarray) -> np.ndarray:
    """(T, 24) FEAFA+ AUs -> (T, 478, 2) mesh vertices, x right and y down, model units."""
    from feat.plotting import predict_face_mesh

    mesh = predict_face_mesh(feafa_to_feat(aus), _mesh_model())
    if mesh.ndim == 2:
        mesh = mesh[None]
    return np.stack([mesh[..., 0], -mesh[..., 1]], axis=-1)  # the model's +y points up


@lru_cache(maxsize=1)
def _dlib68_vertices() -> np.ndarray:
    from feat.utils.blendshape_to_au import DLIB68_FROM_MP478

    return np.asarray(DLIB68_FROM_MP478, np.int64)


def dlib68_vertices() -> np.ndarray:
    """Mesh vertex index for each of the 68 dlib landmarks (py-feat's correspondence)."""
    return _dlib68_vertices().copy()


@dataclass(frozen=True)
class Placement:
    """A similarity transform from mesh units to reference-image pixels (x, y)."""

    matrix: np.ndarray  # (3, 3) homogeneous
    source: str  # "dlib68" (fitted to the reference face) or "default" (no face found)

    def apply(self, points: np.ndarray) -> np.ndarray:
        flat = points.reshape(-1, 2)
        out = flat @ self.matrix[:2, :2].T + self.matrix[:2, 2]
        return out.reshape(points.shape)

    def apply_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Displacements: rotation and scale only."""
        return (vectors.reshape(-1, 2) @ self.matrix[:2, :2].T).reshape(vectors.shape)

    def scaled(self, sx: float, sy: float) -> Placement:
        """The same placement on an image resized by (sx, sy)."""
        return Placement(np.diag([sx, sy, 1.0]) @ self.matrix, self.source)


def neutral_points() -> np.ndarray:
    """(478, 2) mesh at all-zero AUs: the rest face every displacement is measured from."""
    return mesh_points(np.zeros((1, N_AUS), np.float32))[0]


def fit_placement(landmarks68: np.ndarray) -> Placement:
    """Least-squares similarity (Umeyama) from the rest mesh's 68 dlib vertices to the face."""
    from skimage.transform import SimilarityTransform

    source = neutral_points()[dlib68_vertices()]
    transform = SimilarityTransform.from_estimate(source, np.asarray(landmarks68, np.float64))
    if not transform:
        raise BenchError("cannot fit the face mesh to the reference landmarks")
    return Placement(np.asarray(transform.params, np.float64), "dlib68")


def default_placement(height: int, width: int) -> Placement:
    """The rest mesh centred, DEFAULT_FACE_HEIGHT of the image tall: used when no face is found."""
    points = neutral_points()
    low, high = points.min(axis=0), points.max(axis=0)
    scale = DEFAULT_FACE_HEIGHT * height / (high[1] - low[1])
    centre = (low + high) / 2
    matrix = np.array(
        [
            [scale, 0.0, width / 2 - scale * centre[0]],
            [0.0, scale, height / 2 - scale * centre[1]],
            [0.0, 0.0, 1.0],
        ]
    )
    return Placement(matrix, "default")


def reference_landmarks(image: np.ndarray, path: Path | None = None) -> np.ndarray | None:
    """dlib's 68 landmarks on ``image`` (as the face_track extractor finds them), None if no
    face. With the image's ``path``, inside a run: the run's cached ``face_track`` of that
    file (tracked once, shared with the metrics that read the reference)."""
    if path is not None:
        try:
            track = image_features(path, "face_track")
        except MediaError:  # the extractor found no face
            return None
        if track is not None:
            return np.asarray(track["landmarks"][0], np.float64)
    return image_landmarks(image)


def place_on(image: np.ndarray, path: Path | None = None) -> tuple[Placement, np.ndarray | None]:
    """The placement for ``image`` and its landmarks (None and the default without a face)."""
    landmarks = reference_landmarks(image, path)
    if landmarks is None:
        return default_placement(*image.shape[:2]), None
    return fit_placement(landmarks), landmarks


@lru_cache(maxsize=1)
def _region_edges() -> tuple[tuple[tuple[int, int, int], np.ndarray], ...]:
    from feat.utils.mp_plotting import FaceLandmarksConnections

    regions = []
    for name, colour in REGION_COLOURS.items():
        edges = np.array([(c.start, c.end) for c in getattr(FaceLandmarksConnections, name)])
        regions.append((colour, edges))
    return tuple(regions)


def render_landmarks(points: np.ndarray, height: int, width: int, thickness: int = 1) -> np.ndarray:
    """(478, 2) pixel points -> (H, W, 3) uint8: coloured contour lines on black."""
    image = np.zeros((height, width, 3), np.uint8)
    fixed = np.round(points * 16).astype(np.int32)  # 4 fractional bits: sub-pixel lines
    for colour, edges in _region_edges():
        lines = [fixed[[a, b]] for a, b in edges]
        cv2.polylines(image, lines, False, colour, thickness, cv2.LINE_AA, shift=4)
    return image


def render_track(
    aus: np.ndarray, placement: Placement, height: int, width: int, thickness: int = 1
) -> np.ndarray:
    """(T, 24) AUs -> (T, H, W, 3) landmark images, the mesh placed by ``placement``."""
    points = placement.apply(mesh_points(aus))
    return np.stack([render_landmarks(p, height, width, thickness) for p in points])
