"""The baseline presets: each project's documented inference command, output and frame rate.

A preset turns into a method id of its own (``sadtalker``, ``hallo``...) whose options are
just where the checkout is (``repo``) and which Python runs it (``python``: the executable of
the project's own environment), plus the shared run options of ``external``. The command runs
with the checkout as working directory, as each README assumes.

``checked`` says where each entry was read: a file of the project's repository as the suite's
code index holds it, or "from memory" where no copy was at hand. Frame rates are what the
tool writes by default; outputs at another rate are resampled to 25 fps by time (recorded).
Placeholders are those of ``external`` (see external.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    homepage: str
    entry: str  # a file the checkout must contain: catches a wrong ``repo`` before any run
    command: tuple[str, ...]
    output: str  # where the tool writes its video (placeholders; glob wildcards allowed)
    fps: float  # the tool's documented output frame rate
    seeded: bool  # whether the command takes the run's seed
    checked: str
    setup: str  # one line: what to install and download (shown in the docs)
    config_template: str | None = None  # YAML in the checkout, copied per clip with ...
    config_set: Mapping[str, Any] = field(default_factory=dict)  # ... these keys replaced
    panel: Mapping[str, int] | None = None  # the output is a grid: keep this cell
    notes: str = ""


PRESETS: dict[str, Preset] = {
    p.id: p
    for p in (
        Preset(
            id="memo",
            name="MEMO",
            homepage="https://github.com/memoavatar/memo",
            entry="inference.py",
            command=(
                "{python}", "inference.py", "--config", "configs/inference.yaml",
                "--input_image", "{reference}", "--input_audio", "{audio}",
                "--output_dir", "{out_dir}", "--seed", "{seed}",
            ),
            output="{out_dir}/{reference_stem}_{audio_stem}.mp4",
            fps=30,
            seeded=True,
            checked="memoavatar/memo inference.py (arguments, output name); fps 30 from "
            "configs/inference.yaml as deployments copy it",
            setup="conda env per its README; weights from the HF hub memoavatar/memo",
        ),
        Preset(
            id="hallo",
            name="Hallo",
            homepage="https://github.com/fudan-generative-vision/hallo",
            entry="scripts/inference.py",
            command=(
                "{python}", "scripts/inference.py", "--source_image", "{reference}",
                "--driving_audio", "{audio}", "--output", "{out}",
            ),
            output="{out}",
            fps=25,
            seeded=False,
            checked="fudan-generative-vision/hallo scripts/inference.py and "
            "configs/inference/default.yaml (export_video.fps 25; seed fixed at 42 inside)",
            setup="pip install -r requirements.txt; pretrained_models/ from HF "
            "fudan-generative-ai/hallo",
        ),
        Preset(
            id="hallo2",
            name="Hallo2",
            homepage="https://github.com/fudan-generative-vision/hallo2",
            entry="scripts/inference_long.py",
            command=(
                "{python}", "scripts/inference_long.py", "--config", "{config}",
                "--source_image", "{reference}", "--driving_audio", "{audio}",
            ),
            output="{out_dir}/{reference_stem}/seg_video/merge_video.mp4",
            fps=25,
            seeded=False,
            checked="hallo2 README (command); scripts/inference_long.py and "
            "configs/inference/long.yaml read in the cuijh26/hallo2 copy (save_path only "
            "settable in the YAML; output <save_path>/<image stem>/seg_video/merge_video.mp4)",
            setup="pip install -r requirements.txt; pretrained_models/ from HF "
            "fudan-generative-ai/hallo2",
            config_template="configs/inference/long.yaml",
            config_set={"save_path": "{out_dir}"},
        ),
        Preset(
            id="sadtalker",
            name="SadTalker",
            homepage="https://github.com/OpenTalker/SadTalker",
            entry="inference.py",
            command=(
                "{python}", "inference.py", "--driven_audio", "{audio}",
                "--source_image", "{reference}", "--result_dir", "{out_dir}",
            ),
            output="{out_dir}/*.mp4",
            fps=25,
            seeded=False,
            checked="OpenTalker/SadTalker inference.py (writes <result_dir>/<timestamp>.mp4)",
            setup="pip install -r requirements.txt; bash scripts/download_models.sh",
            notes="default --preprocess crop renders the 256 px face crop; add extra_args "
            "['--preprocess', 'full', '--still'] to paste it back into the whole frame",
        ),
        Preset(
            id="sonic",
            name="Sonic",
            homepage="https://github.com/jixiaozhong/Sonic",
            entry="demo.py",
            command=("{python}", "demo.py", "{reference}", "{audio}", "{out}", "--seed", "{seed}"),
            output="{out}",
            fps=25,
            seeded=True,
            checked="jixiaozhong/Sonic README (positional image, audio, output); --seed as in "
            "copies of demo.py; fps 25 from memory",
            setup="pip install -r requirements.txt; checkpoints/ from HF LeonJoe13/Sonic, "
            "stable-video-diffusion-img2vid-xt and whisper-tiny",
        ),
        Preset(
            id="echomimic",
            name="EchoMimic",
            homepage="https://github.com/BadToBest/EchoMimic",
            entry="infer_audio2vid.py",
            command=(
                "{python}", "-u", "infer_audio2vid.py", "--config", "{config}",
                "--seed", "{seed}",
            ),
            output="{repo}/output/*/*--seed_{seed}-*/{reference_stem}_{audio_stem}_*_withaudio.mp4",
            fps=24,
            seeded=True,
            checked="BadToBest/EchoMimic README, infer_audio2vid.py (--fps default 24; writes "
            "output/<date>/<time>--seed_<seed>-<W>x<H>/) and configs/prompts/animation.yaml",
            setup="pip install -r requirements.txt; pretrained_weights/ from HF "
            "BadToBest/EchoMimic; export FFMPEG_PATH",
            config_template="configs/prompts/animation.yaml",
            config_set={"test_cases": {"{reference}": ["{audio}"]}},
        ),
        Preset(
            id="aniportrait",
            name="AniPortrait",
            homepage="https://github.com/Zejun-Yang/AniPortrait",
            entry="scripts/audio2vid.py",
            command=(
                "{python}", "-m", "scripts.audio2vid", "--config", "{config}",
                "-W", "512", "-H", "512", "-acc", "--seed", "{seed}",
            ),
            output="{repo}/output/*/*--seed_{seed}-*/{reference_stem}_{audio_stem}_*.mp4",
            fps=30,
            seeded=True,
            checked="Zejun-Yang/AniPortrait README, scripts/audio2vid.py (--fps default 30; "
            "saves a 1x3 grid: reference | pose | result, torchvision make_grid padding 2)",
            setup="pip install -r requirements.txt; pretrained_weights/ per its README "
            "(film_net_fp16.pt for -acc)",
            config_template="configs/prompts/animation_audio.yaml",
            config_set={"test_cases": {"{reference}": ["{audio}"]}},
            panel={"columns": 3, "rows": 1, "index": 2, "padding": 2},
        ),
        Preset(
            id="wav2lip",
            name="Wav2Lip",
            homepage="https://github.com/Rudrabha/Wav2Lip",
            entry="inference.py",
            command=(
                "{python}", "inference.py", "--checkpoint_path", "checkpoints/wav2lip_gan.pth",
                "--face", "{reference}", "--audio", "{audio}", "--outfile", "{out}",
            ),
            output="{out}",
            fps=25,
            seeded=False,
            checked="Rudrabha/Wav2Lip inference.py (--fps 25 for a still image)",
            setup="pip install -r requirements.txt; checkpoints/wav2lip_gan.pth and "
            "face_detection/detection/sfd/s3fd.pth",
            notes="lip-syncs the reference image; pass args {face: '{video}'} to redub the "
            "ground-truth video instead (the LRS protocol). inference.py tests the image "
            "suffix with path.split('.')[1]: keep TMPDIR free of dots",
        ),
    )
}
