"""A run with every face metric on decodes each distinct video once and face-tracks it once;
each reference image is tracked once (methods included); a warm re-run does neither.

The networks behind the face-crop FID and FVD and HSEmotion are cheap stand-ins (no weights
can be downloaded here, and counting calls needs no real ones); the dlib face track, the
decoder, the cache and the runner are the real ones.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from auhead_bench import media
from auhead_bench.config import RunConfig
from auhead_bench.faces import image_landmarks
from auhead_bench.plugins import load_plugins
from auhead_bench.runner import Runner
from auhead_bench_metrics import face_track, fid, fvd, pyfeat, theval, theval_mesh, theval_vad

FACE_METRICS = [
    "fid_inception_pool3_face",
    "fvd_i3d_16f_stylegan_v_face",
    "emotion_acc_hsemotion_video",
    "csim_dlib_resnet",
    "lmd_mouth_dlib68",
    "lmd_face_dlib68",
    "psnr_rgb",
    # THEval's: the mediapipe extractors (RGB feeds, BGR feed, silent frames) and the VAD
    "theval_lip_dynamics_mp",
    "theval_eyebrow_dynamics_mp_gt_norm",
    "theval_silent_lip_stability_mp",
    "theval_lip_sync_mp",
    "theval_score_partial4_mp",
]


class FakeInception(torch.nn.Module):
    def forward(self, batch: torch.Tensor) -> list[torch.Tensor]:
        return [batch.mean(dim=(2, 3)).repeat(1, 683)[:, :2048, None, None]]


class FakeI3D(torch.nn.Module):
    def forward(self, clips: torch.Tensor, **kwargs) -> torch.Tensor:
        return clips.float().mean(dim=(2, 3, 4)).repeat(1, 134)[:, :400]


class FakeVAD:
    """Silero's call pattern; speech wherever a window's mean amplitude passes 0.02."""

    def reset_states(self) -> None:
        pass

    def __call__(self, chunk: torch.Tensor, rate: int) -> torch.Tensor:
        return (chunk.abs().mean() > 0.02).float()


class FakeRecognizer:
    calls = 0

    def predict_multi_emotions(self, faces, logits=False):
        FakeRecognizer.calls += 1
        scores = np.array([np.resize(np.asarray(f, np.float64).mean(axis=(0, 1)), 8)
                           for f in faces])
        return None, scores / scores.sum(axis=1, keepdims=True)


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Counters of decode passes (by file content) and face tracks (by content)."""
    dummy = tmp_path / "weights.bin"
    dummy.write_bytes(b"stand-in")
    for module in (fid, fvd, pyfeat):
        monkeypatch.setattr(module, "locate", lambda spec: dummy)
    monkeypatch.setattr(fid, "load_inception", lambda path, device: FakeInception())
    monkeypatch.setattr(fvd, "load_i3d", lambda device: FakeI3D())
    monkeypatch.setattr(pyfeat, "hsemotion_recognizer", lambda path, device: FakeRecognizer())

    monkeypatch.setattr(theval, "_check_vad", lambda: None)
    monkeypatch.setattr(theval_vad.SileroVAD, "setup",
                        lambda self, device: setattr(self, "_model", FakeVAD()))

    decodes: Counter[str] = Counter()
    tracks: Counter[str] = Counter()
    images: Counter[str] = Counter()
    iter_frames, extract = media.iter_frames, face_track.FaceTrack.extract
    for cls in (theval_mesh.THEvalFaceMesh, theval_mesh.THEvalFaceMeshBGR,
                theval_mesh.THEvalSilentFaceMesh):
        def counting_mesh(self, video, _extract=cls.extract, _id=cls.id):
            meshes[(_id, video.content_sha256)] += 1
            return _extract(self, video)

        monkeypatch.setattr(cls, "extract", counting_mesh)

    def counting_iter_frames(path, *args, **kwargs):
        decodes[media.sha256_file(Path(path))] += 1
        return iter_frames(path, *args, **kwargs)

    def counting_extract(self, video):
        (images if video.is_image else tracks)[video.content_sha256] += 1
        return extract(self, video)

    def no_direct_tracking(image):
        raise AssertionError("a method tracked the reference outside the feature store")

    monkeypatch.setattr(media, "iter_frames", counting_iter_frames)
    monkeypatch.setattr(face_track.FaceTrack, "extract", counting_extract)
    from auhead_bench_methods.auhead import au_mesh

    monkeypatch.setattr(au_mesh, "image_landmarks", no_direct_tracking)
    return decodes, tracks, images


meshes: Counter[tuple[str, str]] = Counter()  # (extractor id, content) -> extract calls


def test_every_video_is_decoded_and_tracked_once(counted, tmp_path):
    decodes, tracks, images = counted
    meshes.clear()
    config = RunConfig.model_validate({
        "name": "once",
        "datasets": [{"id": "demo", "options": {"max_clips": 2}}],
        "methods": ["ground_truth", "static_frame", "au_warp"],
        "metrics": FACE_METRICS,
        "cache_dir": str(tmp_path / "cache"),
    })
    records = Runner(config, tmp_path / "cold", registry=load_plugins()).run()
    for record in records:  # every face metric ran (the demo has no emotion labels: HSEmotion
        for metric in ("csim_dlib_resnet", "lmd_mouth_dlib68"):  # runs, its accuracy skips)
            assert record.metrics[metric].status == "ok", record.metrics[metric].reason
    assert FakeRecognizer.calls > 0
    assert decodes and max(decodes.values()) == 1, decodes
    assert tracks and max(tracks.values()) == 1, tracks
    assert len(images) == 2 and max(images.values()) == 1, images
    # ground_truth's videos are byte-identical to the clips' own: the clip's decode pass and
    # face track serve both, so the tracked contents are exactly the 6 generated ones
    generated = {g.content_sha256 for r in records for g in r.generations}
    assert len(generated) == 6 and set(tracks) == generated

    decodes.clear(), tracks.clear(), images.clear(), meshes.clear()
    FakeRecognizer.calls = 0
    again = Runner(config, tmp_path / "warm", registry=load_plugins()).run()
    assert not decodes and not tracks and not images and not FakeRecognizer.calls
    assert not meshes
    assert [r.metrics for r in again] == [r.metrics for r in records]


def test_methods_outside_a_run_track_the_reference_themselves():
    """image_features answers only inside a run; au_mesh then falls back to dlib directly."""
    from auhead_bench.features import image_features

    assert image_features(Path("missing.png"), "face_track") is None
    assert image_landmarks(np.zeros((32, 32, 3), np.uint8)) is None
