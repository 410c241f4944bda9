"""The AUHead methods: ``auhead`` (stage 1 -> stage 2) and ``auhead_gt_aus`` (ablation).

``auhead`` predicts the AU track from the clip's audio with stage 1 (the audio-language
model) and renders the video with stage 2. ``auhead_gt_aus`` feeds stage 2 the clip's own
AU labels instead, isolating stage 2 from stage 1 (the ablation reviewers asked for). Both
return the AU track they were conditioned on (``arrays["au_track"]``, (T, 24) at 25 fps).

Models load lazily on the first clip for each set of options: ``setup`` does not see the
options (which name the model folders), so weights that are missing are reported per clip
(``WeightsMissing`` with the commands that fetch or build them).

Registration imports only declarations.py and stage 1's options (no torch, diffusers,
transformers or peft): every CLI command and Ray worker loads the plugins. The stage-2 model
code is imported when a clip is first generated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from auhead_bench import Clip, Generation, Method, hookimpl, media
from auhead_bench.errors import MediaError
from auhead_bench.resources import Resources
from auhead_bench.weights import file_sha256, local_path, weights_root
from auhead_bench_methods.auhead import au_mesh
from auhead_bench_methods.auhead.au_labels import clip_conditioning_track, fit_length
from auhead_bench_methods.auhead.declarations import (
    DEFAULT_MODEL_NAME,
    STAGE2_VERSION,
    Stage2Options,
    hallo_specs,
    memo_specs,
    sd15_specs,
)
from auhead_bench_methods.auhead.stage1 import STAGE1_WEIGHTS, AUPredictor, Stage1Options


class _Stage2Method(Method):
    """Shared by both methods: load stage 2 once per (model, precision), write the video."""

    Options = Stage2Options
    # A UNet, a VAE and the adapter (and stage 1's 7B audio-language model for `auhead`):
    # a GPU to itself, and host memory to load the checkpoints.
    resources = Resources(gpus=1, memory_gb=16)

    def __init__(self) -> None:
        self._device = "cpu"
        self._stage2: tuple[tuple[Any, ...], Any] | None = None

    def setup(self, device: str) -> None:
        self._device = device

    def fingerprint(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage2": STAGE2_VERSION,
            "au_to_mesh": f"py-feat au_to_mesh_pls_{au_mesh.MESH_MODEL_VERSION}",
        }

    def content_fingerprint(self, options: Stage2Options) -> dict[str, Any]:
        """The stage-2 model folder's files, all hashed: `train stage2` rewrites the adapter
        (and with --trainable backbone the UNet) in place, same names and sizes."""
        content: dict[str, Any] = {
            "stage2_model": stage2_content(stage2_folder(options), options.model)
        }
        released = {"hallo_v1": ("hallo", hallo_specs), "memo": ("memo", memo_specs)}
        if options.backbone in released:  # its files, unless the folder holds a backbone
            key, specs = released[options.backbone]
            content[key] = {
                spec.name: file_sha256(local_path(spec)) if local_path(spec).is_file() else None
                for spec in specs().values() if not spec.snapshot
            }
        return content

    def weights(self) -> dict[str, str]:
        if self._stage2 is None:
            return {}
        return {f"stage2/{name}": sha for name, sha in self._stage2[1].files.items()}

    def stage2(self, options: Stage2Options) -> Any:
        """The stage-2 model of ``options.backbone``, loaded once per (model, precision)."""
        key = (options.backbone, options.model, options.precision, self._device)
        if self._stage2 is None or self._stage2[0] != key:
            self._stage2 = None  # free the previous model before loading another
            self._stage2 = (key, load_stage2_model(options, self._device))
        return self._stage2[1]

    def render(
        self, clip: Clip, aus: np.ndarray, audio: np.ndarray, options: Stage2Options, seed: int,
        out_path: Path,
    ) -> dict[str, Any]:
        model = self.stage2(options)
        reference = media.read_image(clip.reference)
        frames, info = model.generate(reference, audio, aus, options, seed)
        media.write_video(out_path, frames, audio)
        return info


class AUHeadGTAUs(_Stage2Method):
    id = "auhead_gt_aus"
    description = "AUHead stage 2 driven by the clip's ground-truth AU labels (stage-1 ablation)."
    version = "1"

    def generate(self, clip: Clip, options: Stage2Options, seed: int, out_path: Path) -> Generation:
        if clip.au_labels is None:
            raise MediaError(
                "clip has no AU labels", path=clip.video,
                fix="give the dataset an au_labels column (.npy or .csv, (T, 24) at 25 fps)",
            )
        frames = media.count_frames(clip.video)
        aus = clip_conditioning_track(clip, frames)  # at the labels' own rate -> 25 fps
        audio, _ = media.decode_audio(clip.audio)
        info = self.render(clip, aus, audio, options, seed, out_path)
        return Generation(arrays={"au_track": aus}, info={"au_source": "labels", **info})


class AUHeadOptions(Stage2Options):
    """Stage-2 options plus stage 1's. Stage 1 is given the clip's emotion label only in its
    A+E->AU prompt mode (the upper bound the authors' released code trains); in A->E->AU it
    states the emotion itself and in A->AU none."""

    # A nested model: `ls methods` shows its options; experiment names list only the fields
    # that differ from stage 1's defaults (plan.non_default_options).
    stage1: Stage1Options = Field(default_factory=Stage1Options,
                                  description="Stage 1's options (model, adapter, prompt, ...): "
                                  "the nested stage1.* options.")

    @property
    def stage1_options(self) -> Stage1Options:
        return self.stage1


class AUHead(_Stage2Method):
    id = "auhead"
    description = (
        "AUHead: audio -> AUs with an audio-language model (stage 1), then AU-guided "
        "diffusion with disentanglement guidance (stage 2)."
    )
    version = "1"
    Options = AUHeadOptions

    def __init__(self) -> None:
        super().__init__()
        self._predictor: tuple[str, Any] | None = None

    def make_predictor(self, stage1: Stage1Options) -> Any:
        """Stage 1's predictor for these options (tests replace it with a fake)."""
        return AUPredictor(stage1)

    def predictor(self, stage1: Stage1Options) -> Any:
        key = stage1.model_dump_json()
        if self._predictor is None or self._predictor[0] != key:
            self._predictor = None
            predictor = self.make_predictor(stage1)
            predictor.setup(self._device)
            self._predictor = (key, predictor)
        return self._predictor[1]

    def clip_fingerprint(self, clip: Clip, options: AUHeadOptions) -> dict[str, Any]:
        """In the A+E->AU prompt mode the clip's emotion label is part of the prompt."""
        if options.stage1_options.prompt_mode == "A+E->AU":
            return {"emotion": clip.emotion}
        return {}

    def content_fingerprint(self, options: AUHeadOptions) -> dict[str, Any]:
        """Stage 2's folder, and stage 1's model and adapter (the adapter hashed in full)."""
        stage1 = self.make_predictor(options.stage1_options).fingerprint()
        return {**super().content_fingerprint(options), "stage1": _jsonable(stage1)}

    def weights(self) -> dict[str, str]:
        weights = super().weights()
        if self._predictor is not None:
            weights.update({f"stage1/{k}": v for k, v in self._predictor[1].weights().items()})
        return weights

    def generate(self, clip: Clip, options: AUHeadOptions, seed: int, out_path: Path) -> Generation:
        self.stage2(options)  # a missing stage-2 model fails before stage 1 loads
        predictor = self.predictor(options.stage1_options)
        audio, _ = media.decode_audio(clip.audio)
        emotion = clip.emotion if options.stage1_options.prompt_mode == "A+E->AU" else None
        result = predictor.predict(audio, emotion, seed=seed)
        frames = media.count_frames(clip.video)
        aus = fit_length(result.aus, frames, f"stage-1 AUs of clip {clip.id}")
        info = self.render(clip, aus, audio, options, seed, out_path)
        return Generation(
            arrays={"au_track": aus},
            info={
                "au_source": "stage1",
                "emotion": result.emotion,
                "parse_report": _jsonable(result.report),
                "stage1": _jsonable(predictor.fingerprint()),
                **info,
            },
        )


def stage2_folder(options: Stage2Options) -> Path:
    """Where the stage-2 model of these options lives (the cache's per-backbone default)."""
    if options.model:
        return Path(options.model).expanduser()
    if options.backbone == "sd15_au_concat":
        return weights_root() / DEFAULT_MODEL_NAME
    return weights_root() / f"{DEFAULT_MODEL_NAME}-{options.backbone}"


def load_stage2_model(options: Stage2Options, device: str) -> Any:
    if options.backbone == "sd15_au_concat":
        from auhead_bench_methods.auhead.stage2 import Stage2Model

        return Stage2Model.load(options.model, device, options.precision)
    if options.backbone == "memo":
        from auhead_bench_methods.auhead.memo.sampler import MemoStage2Model

        return MemoStage2Model.load(stage2_folder(options), device, options.precision)
    from auhead_bench_methods.auhead.hallo.sampler import HalloStage2Model

    return HalloStage2Model.load(stage2_folder(options), device, options.precision)


def stage2_content(folder: Path, model: str | None) -> dict[str, str] | str | None:
    """sha256 of every file of a local stage-2 model folder (memoised per file, so a run
    hashes a multi-GB UNet once); a hub id as given; None when there is no model yet (its
    generations fail with the weights-missing message and are not cached)."""
    if not folder.is_dir():
        return model
    return {
        path.relative_to(folder).as_posix(): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".cache" not in path.relative_to(folder).parts
    }


def _jsonable(value: Any) -> Any:
    """Reports may be dataclasses or pydantic models; records need JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@hookimpl
def register_methods(register):
    register(AUHead)
    register(AUHeadGTAUs)


@hookimpl
def register_weights(register):
    for spec in sd15_specs().values():
        register(spec)
    for spec in hallo_specs().values():
        register(spec)
    for spec in memo_specs().values():
        register(spec)
    for spec in STAGE1_WEIGHTS:  # the audio-language models stage 1 can start from
        register(spec)
