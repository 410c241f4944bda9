"""`external` and the baseline presets: another project's inference command, run per clip.

Baselines live in their own environments (their own Python, CUDA and pins), so the suite never
imports them. Per clip it copies the clip's reference image and driving audio into a fresh
work folder (names made from the clip id, so tools that name outputs after their inputs stay
readable), runs the command in its own process group (a timeout kills the whole tree;
``retries`` re-runs it), finds the file the tool wrote (``output``, a pattern), and
normalises it like the ground truth: 25 fps by time, 16 kHz mono audio (the driving audio
if the tool wrote none), the ground truth's frame size. The tool's own file is kept next to
the normalised video as ``original.<ext>``, its console output as ``tool.log``. A failure
raises one line with the exit status and the tail of stderr; the runner records it for that
clip and goes on. The work folder is deleted after success and kept after a failure (its
path is in the message).

Placeholders, in ``command``, ``args``, ``extra_args``, ``output`` and ``config_set``:
``{python}`` ``{reference}`` ``{audio}`` ``{video}`` (the normalised ground truth) ``{out}``
(a file the tool may write, ``<out_dir>/<clip>.mp4``) ``{out_dir}`` ``{work_dir}`` ``{seed}``
``{clip_id}`` ``{clip_slug}`` ``{reference_stem}`` ``{audio_stem}`` ``{identity}``
``{emotion}`` ``{intensity}`` ``{device}``, ``{config}`` (with ``config_template``),
``{repo}`` (presets), and every key of ``vars``. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import av
import numpy as np
import yaml
from pydantic import Field, field_validator, model_validator

from auhead_bench import BenchError, Clip, Generation, Method, Options, hookimpl, media
from auhead_bench.errors import MediaError
from auhead_bench.options import machine_specific
from auhead_bench.resources import Resources
from auhead_bench_methods.presets import PRESETS, Preset

NORMALISE_VERSION = "1"
TAIL_LINES = 6  # last lines of stderr (else stdout) quoted in a failure message ...
TAIL_CHARS = 400  # ... at most this long
KILL_GRACE_S = 3.0  # between SIGTERM and SIGKILL of a process group
FPS_TOLERANCE = 0.01
DURATION_TOLERANCE_S = 0.2  # video vs audio length beyond which a warning is recorded

ArgValue = str | int | float | bool | list[str | int | float] | None
# What a command may receive of a clip beyond its files' content: part of the generation key
# of a method that uses any of them (``clip_fingerprint``).
CLIP_PLACEHOLDERS = (
    "clip_id", "clip_slug", "reference_stem", "audio_stem", "identity", "emotion", "intensity",
)
PLACEHOLDERS = (
    "python", "device", "reference", "audio", "video", "out", "out_dir", "work_dir", "seed",
    "clip_id", "clip_slug", "reference_stem", "audio_stem", "identity", "emotion", "intensity",
)


# ---- options ------------------------------------------------------------------------------


class Panel(Options):
    """One cell of a video grid (torchvision ``make_grid`` layout: ``padding`` px around cells)."""

    columns: int = Field(ge=1)
    rows: int = Field(1, ge=1)
    index: int = Field(ge=0)  # row-major
    padding: int = Field(0, ge=0)


class NormaliseOptions(Options):
    """How a tool's video is brought to the ground truth's form before scoring."""

    expected_fps: float | None = Field(None, gt=0)  # presets: the tool's documented rate
    on_fps_mismatch: Literal["resample", "fail"] = "resample"
    panel: Panel | None = None
    audio: Literal["output", "driving"] = "output"  # output: the tool's track if it wrote one


class RunOptions(NormaliseOptions):
    """How a command is run: shared by ``external`` and every preset."""

    env: dict[str, str] = Field(default_factory=dict)  # added to this process's environment
    timeout_s: float | None = Field(3600.0, gt=0)  # per attempt; None: no limit
    retries: int = Field(0, ge=0, le=10)
    args: dict[str, ArgValue] = Field(default_factory=dict)  # appended as --key value
    extra_args: list[str] = Field(default_factory=list)  # appended verbatim (placeholders ok)
    vars: dict[str, str | int | float] = Field(default_factory=dict)  # extra placeholders
    keep_work: bool = False  # keep the work folder after success too

    def _known(self) -> dict[str, Any]:
        """Placeholder names valid for these options, with sample values (for checking)."""
        return {name: "x" for name in (*PLACEHOLDERS, *self.vars)} | {"seed": 0}

    def _check_templates(self, templates: dict[str, Any]) -> None:
        """Unknown placeholders fail when the config is read, not once per clip."""
        known = self._known()
        try:
            for where, value in templates.items():
                fill_deep(value, known, where)
            arg_tokens(self.args, known)
        except BenchError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _templates(self) -> RunOptions:
        clash = sorted(set(self.vars) & {*PLACEHOLDERS, "config", "repo"})
        if clash:
            raise ValueError(f"vars may not redefine the placeholders {clash}; rename them")
        self._check_templates({"extra_args": self.extra_args})
        return self


class ExternalOptions(RunOptions):
    """``external``: the command and where it runs."""

    command: list[str] | str  # a string is split like a shell line (no shell runs it)
    cwd: Path | None = machine_specific(None)
    python: str = machine_specific("python")  # what {python} stands for
    output: str = "{out}"  # where the tool writes its video; relative to cwd; globs allowed
    config_template: Path | None = None  # YAML (relative to cwd) copied per clip as {config}
    config_set: dict[str, Any] = Field(default_factory=dict)  # dotted key -> value, replaced

    @field_validator("python")
    @classmethod
    def _python_path(cls, value: str) -> str:
        return _absolute(value)

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | str) -> list[str] | str:
        tokens = shlex.split(value) if isinstance(value, str) else value
        if not tokens or not str(tokens[0]).strip():
            raise ValueError("command is empty")
        return value

    def _known(self) -> dict[str, Any]:
        known = super()._known()
        return known | ({"config": "x"} if self.config_template is not None else {})

    @model_validator(mode="after")
    def _external_templates(self) -> ExternalOptions:
        command = shlex.split(self.command) if isinstance(self.command, str) else self.command
        self._check_templates(
            {"command": list(command), "output": self.output, "config_set": self.config_set}
        )
        return self


class PresetOptions(RunOptions):
    """A preset: where the project's checkout is and which Python runs it."""

    preset: ClassVar[Preset | None] = None
    repo: Path = machine_specific()  # the project's checkout; the command runs there
    # The project's own environment, e.g. ~/envs/sadtalker/bin/python:
    python: str = machine_specific("python")
    repo_commit: str | None = None  # filled from the checkout's git HEAD; pinning it checks it

    def _known(self) -> dict[str, Any]:
        preset = type(self).preset
        known = super()._known() | {"repo": "x"}
        return known | ({"config": "x"} if preset and preset.config_template else {})

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: Path) -> Path:
        value = value.expanduser()
        preset = cls.preset
        if not value.is_dir():
            raise ValueError(f"{value} is not a folder; point repo at a {_name(preset)} checkout")
        if preset is not None and not (value / preset.entry).is_file():
            raise ValueError(
                f"{value} has no {preset.entry}; point repo at a {preset.name} checkout "
                f"({preset.homepage})"
            )
        return value

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        value = _absolute(value)
        if not _executable(value):
            raise ValueError(
                f"python executable {value!r} not found; give the project's environment, "
                "e.g. ~/miniconda3/envs/NAME/bin/python"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _commit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("repo"):
            return data
        commit = git_commit(Path(str(data["repo"])).expanduser())
        pinned = data.get("repo_commit")
        if pinned is None:
            return {**data, "repo_commit": commit}
        if commit is not None and pinned != commit:
            raise ValueError(
                f"the checkout {data['repo']} is at {commit}, not the pinned repo_commit "
                f"{pinned}; check that commit out or drop repo_commit"
            )
        return data


def _name(preset: Preset | None) -> str:
    return preset.name if preset is not None else "project"


def _absolute(name: str) -> str:
    """A path-like executable made absolute: the command runs in another working folder."""
    if name.startswith("~") or os.sep in name:
        return str(Path(name).expanduser().absolute())
    return name


def _executable(name: str) -> bool:
    path = Path(name).expanduser()
    if os.sep in name or path.is_absolute():
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(name) is not None


@lru_cache(maxsize=32)
def git_commit(repo: Path) -> str | None:
    """HEAD of ``repo`` if it is the top of a git checkout (``-dirty`` if edited), else None."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != repo.resolve():
        return None  # not a checkout, or a folder inside some other repository
    head = git("rev-parse", "HEAD")
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if dirty else "")


# ---- placeholders --------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def fill(template: str, values: Mapping[str, Any], where: str, *, for_glob: bool = False) -> str:
    """``template`` with its placeholders replaced; unknown names are a one-line error.

    ``for_glob`` escapes wildcard characters in the values, so only the pattern's own
    ``*``/``?``/``[`` act as wildcards.
    """
    try:
        fields = [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]
    except ValueError as exc:
        raise BenchError(
            f"bad placeholder syntax in {where} {template!r}: {exc}",
            fix="write {{ and }} for literal braces",
        ) from None
    for name in fields:
        if name not in values:
            known = ", ".join("{" + k + "}" for k in sorted(values))
            raise BenchError(
                f"unknown placeholder {{{name}}} in {where} {template!r}",
                fix=f"known here: {known}; write {{{{ and }}}} for literal braces",
            )
    if for_glob:
        values = {k: glob.escape(v) if isinstance(v, str) else v for k, v in values.items()}
    try:
        return template.format_map(dict(values))
    except (ValueError, IndexError, KeyError) as exc:
        raise BenchError(f"cannot fill {where} {template!r}: {exc}") from None


def received_clip_fields(
    clip: Clip, templates: Any, options: Any, config_template: str | Path | None = None
) -> dict[str, Any]:
    """The clip fields (CLIP_PLACEHOLDERS) that the templates (command, output, options,
    config template) use, with this clip's values: what the command receives beyond the
    files' content, so what its generation key must hold."""
    text = json.dumps(templates, default=str)
    template = getattr(options, "config_template", None) or config_template
    if template is not None:
        path = Path(template).expanduser()
        cwd = getattr(options, "cwd", None) or getattr(options, "repo", None)
        if not path.is_absolute() and cwd is not None:
            path = Path(cwd).expanduser() / path
        try:
            text += path.read_text(errors="replace")
        except OSError:
            text += "{clip_id}"  # unreadable here: assume the worst (generate reports it)
    used = [n for n in CLIP_PLACEHOLDERS if re.search(r"\{" + n + r"(?:[!:}])", text)]
    if not used:
        return {}
    values = {
        "id": clip.id,
        "identity": clip.identity,
        "emotion": clip.emotion,
        "intensity": clip.intensity,
    }
    # the slug and stems derive from the id
    wanted = {"id" if n in ("clip_id", "clip_slug", "reference_stem", "audio_stem") else n
              for n in used}
    return {k: v for k, v in values.items() if k in wanted}


def fill_deep(value: Any, values: Mapping[str, Any], where: str) -> Any:
    """Fill strings (mapping keys included) inside nested lists and mappings."""
    if isinstance(value, str):
        return fill(value, values, where)
    if isinstance(value, Mapping):
        return {fill_deep(k, values, where): fill_deep(v, values, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill_deep(v, values, where) for v in value]
    return value


def arg_tokens(args: Mapping[str, ArgValue], values: Mapping[str, Any]) -> list[str]:
    """``{"steps": 30, "still": True}`` -> ``["--steps", "30", "--still"]``."""
    tokens: list[str] = []
    for key, value in args.items():
        flag = key if key.startswith("-") else f"--{key}"
        if value is None or value is False:
            continue
        if value is True:
            tokens.append(flag)
        elif isinstance(value, list):
            tokens += [flag, *(fill(str(v), values, f"args.{key}") for v in value)]
        else:
            tokens += [flag, fill(str(value), values, f"args.{key}")]
    return tokens


def slug(text: str) -> str:
    """A file-name-safe form of a clip id: letters, digits, ``_`` and ``-`` only (no dots)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "clip"


# ---- running -------------------------------------------------------------------------------


@dataclass
class Invocation:
    """Everything needed to run one tool, whichever of ``external`` or a preset it came from."""

    label: str
    command: list[str]
    cwd: Path | None
    python: str
    output: str
    repo: Path | None = None
    config_template: Path | None = None
    config_set: Mapping[str, Any] = field(default_factory=dict)
    expected_fps: float | None = None
    panel: Panel | None = None
    seeded: bool = True


def run_tool(
    inv: Invocation, opts: RunOptions, clip: Clip, seed: int, out_path: Path, device: str
) -> Generation:
    """Run ``inv`` for one clip and write its normalised video to ``out_path``."""
    if inv.cwd is not None and not inv.cwd.is_dir():
        raise BenchError(f"{inv.label}: working folder not found", path=inv.cwd, fix="fix cwd")
    work = Path(tempfile.mkdtemp(prefix="auhead_bench_"))
    ran = succeeded = False
    try:
        values = _stage(inv, opts, clip, seed, work, device)
        argv = [fill(str(t), values, "command") for t in inv.command]
        argv += arg_tokens(opts.args, values)
        argv += [fill(t, values, "extra_args") for t in opts.extra_args]
        if not _executable(argv[0]):
            raise BenchError(
                f"{inv.label}: cannot find the executable {argv[0]!r}",
                fix="give a full path (python: the project's environment's python)",
            )
        output_pattern = fill(inv.output, values, "output", for_glob=True)
        base = inv.cwd or work
        env = {**os.environ, **opts.env}
        log_path = work / "tool.log"
        failures: list[str] = []
        found: Path | None = None
        tail = ""
        started = time.perf_counter()
        ran = True
        for attempt in range(1, opts.retries + 2):
            _empty(Path(values["out_dir"]))
            since = time.time() - 1.0
            status, code, tail = _run_once(argv, inv.cwd, env, opts.timeout_s, work, log_path,
                                           attempt)
            if status == "ok":
                found = find_output(output_pattern, base, since)
                if found is not None:
                    break
                failures.append(
                    f"exited 0 but wrote no file matching {output_pattern} "
                    f"(out_dir holds: {_listing(Path(values['out_dir']))})"
                )
            elif status == "timeout":
                failures.append(f"timed out after {opts.timeout_s:g} s (process group killed)")
            else:
                failures.append(f"exit code {code}")
        seconds = time.perf_counter() - started
        if found is None:
            attempts = opts.retries + 1
            raise BenchError(
                f"{inv.label} failed on clip {clip.id} after {attempts} attempt(s): "
                f"{failures[-1]}; stderr tail: {tail or '(empty)'}",
                path=log_path,
                fix=f"run it by hand: cd {shlex.quote(str(inv.cwd or work))} && "
                f"{shlex.join(argv)}",
            )
        info = normalise_output(found, clip, out_path, inv.expected_fps, opts, inv.panel,
                                inv.label)
        shutil.copyfile(log_path, out_path.with_name("tool.log"))
        info.update(
            tool=inv.label,
            command=shlex.join(argv),
            attempts=len(failures) + 1,
            tool_seconds=round(seconds, 3),
            seed_passed=inv.seeded,
            failed_attempts=failures,
        )
        succeeded = True
        return Generation(info=info)
    finally:  # kept after a failed run (its log is named in the error) or on request
        if not ran or (succeeded and not opts.keep_work):
            shutil.rmtree(work, ignore_errors=True)


def _stage(
    inv: Invocation, opts: RunOptions, clip: Clip, seed: int, work: Path, device: str
) -> dict[str, Any]:
    """Copy the clip's inputs into ``work`` and build the placeholder values."""
    inputs, out_dir = work / "inputs", work / "out"
    inputs.mkdir()
    out_dir.mkdir()
    name = slug(clip.id)
    reference = inputs / f"{name}.png"
    if clip.reference is not None:
        media.check_file(Path(clip.reference))
        reference = inputs / f"{name}{Path(clip.reference).suffix.lower() or '.png'}"
        shutil.copyfile(clip.reference, reference)
    else:  # a raw clip: its first frame, as the runner would choose
        media.write_image(reference, media.decode_video(clip.video).frames[0])
    audio = inputs / f"{name}.wav"
    if clip.audio is not None:
        media.check_file(Path(clip.audio))
        audio = inputs / f"{name}{Path(clip.audio).suffix.lower() or '.wav'}"
        shutil.copyfile(clip.audio, audio)
    else:
        media.write_wav(audio, media.decode_audio(clip.video)[0])
    values: dict[str, Any] = {
        "python": inv.python,
        "device": device,
        "reference": str(reference),
        "audio": str(audio),
        "video": str(clip.video),
        "out": str(out_dir / f"{name}.mp4"),
        "out_dir": str(out_dir),
        "work_dir": str(work),
        "seed": seed,
        "clip_id": clip.id,
        "clip_slug": name,
        "reference_stem": name,
        "audio_stem": name,
        "identity": clip.identity or "",
        "emotion": clip.emotion or "",
        "intensity": "" if clip.intensity is None else clip.intensity,
    }
    if inv.repo is not None:
        values["repo"] = str(inv.repo)
    clash = sorted(set(opts.vars) & set(values) | ({"config"} & set(opts.vars)))
    if clash:
        raise BenchError(f"{inv.label}: vars may not redefine {clash}", fix="rename them")
    values.update(opts.vars)
    if inv.config_template is not None:
        values["config"] = str(work / "config.yaml")
        template = inv.config_template.expanduser()
        if not template.is_absolute():
            template = (inv.cwd or Path.cwd()) / template
        write_config(template, inv.config_set, values, work / "config.yaml")
    return values


def write_config(template: Path, updates: Mapping[str, Any], values: Mapping, dst: Path) -> None:
    """Copy a YAML config with dotted keys replaced (values filled), e.g. test_cases."""
    try:
        data = yaml.safe_load(template.read_text())
    except FileNotFoundError:
        raise BenchError(
            "config template not found", path=template, fix="check repo / config_template"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BenchError(
            f"config template is not readable YAML ({problem})", path=template
        ) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise BenchError("config template is not a YAML mapping", path=template)
    for dotted, value in updates.items():
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise BenchError(f"config key {dotted!r} crosses a non-mapping", path=template)
        node[keys[-1]] = fill_deep(value, values, f"config_set.{dotted}")
    dst.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _run_once(
    argv: list[str],
    cwd: Path | None,
    env: dict[str, str],
    timeout: float | None,
    work: Path,
    log_path: Path,
    attempt: int,
) -> tuple[str, int | None, str]:
    """One run in a new session (its own process group). Returns (status, exit code, tail)."""
    stdout_path, stderr_path = work / "stdout.txt", work / "stderr.txt"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            raise BenchError(
                f"cannot start {argv[0]!r} ({exc.strerror})",
                fix="check the command's executable and the working folder",
            ) from None
        status, code = "ok", None
        try:
            code = proc.wait(timeout=timeout)
            status = "ok" if code == 0 else "error"
        except subprocess.TimeoutExpired:
            status = "timeout"
        finally:
            kill_group(proc)  # a timeout, a Ctrl-C, or children left behind
    stdout = stdout_path.read_bytes().decode("utf-8", "replace")
    stderr = stderr_path.read_bytes().decode("utf-8", "replace")
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"$ {shlex.join(argv)}\n--- attempt {attempt}: {status} (exit {code}) ---\n")
        handle.write(f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n")
    lines = [line.strip() for line in (stderr.strip() or stdout.strip()).splitlines()]
    tail = " | ".join(line for line in lines[-TAIL_LINES:] if line)
    return status, code, tail[-TAIL_CHARS:]


def kill_group(proc: subprocess.Popen) -> None:
    """End the process group ``proc`` leads: SIGTERM, a grace period, then SIGKILL."""
    pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            break  # the group is gone
        if sig == signal.SIGTERM:
            deadline = time.monotonic() + KILL_GRACE_S
            while time.monotonic() < deadline:
                if proc.poll() is not None and not _group_alive(pgid):
                    return
                time.sleep(0.05)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the group.

    On Linux /proc tells zombies apart: orphans killed by the SIGTERM may wait for a reaper
    that a container's init never runs, and ``killpg(pgid, 0)`` counts them as alive.
    """
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def find_output(pattern: str, base: Path, since: float) -> Path | None:
    """The newest non-empty file matching ``pattern`` written after ``since`` (epoch s)."""
    path = pattern if os.path.isabs(pattern) else str(base / pattern)
    if glob.has_magic(path):
        candidates = [Path(p) for p in glob.glob(path, recursive=True)]
    else:
        candidates = [Path(path)]
    fresh = [
        p for p in candidates
        if p.is_file() and p.stat().st_size > 0 and p.stat().st_mtime >= since
    ]
    return max(fresh, key=lambda p: p.stat().st_mtime) if fresh else None


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _listing(folder: Path, limit: int = 5) -> str:
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if not names:
        return "nothing"
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# ---- normalising a tool's video ------------------------------------------------------------


def video_size(path: Path) -> tuple[int, int]:
    """(width, height) of a video's first stream, from its header."""
    media.check_file(Path(path))
    try:
        with av.open(str(path)) as container:
            context = container.streams.video[0].codec_context
            return int(context.width), int(context.height)
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise MediaError(f"cannot read the video size ({exc})", path=path) from exc


def cut_panel(frames: np.ndarray, panel: Panel) -> np.ndarray:
    """Cell ``panel.index`` of a grid video (cells are equal; ``padding`` around each)."""
    _, height, width, _ = frames.shape
    pad = panel.padding
    cell_w = (width - pad * (panel.columns + 1)) // panel.columns
    cell_h = (height - pad * (panel.rows + 1)) // panel.rows
    if cell_w <= 0 or cell_h <= 0 or panel.index >= panel.columns * panel.rows:
        raise BenchError(
            f"a {width}x{height} video cannot hold cell {panel.index} of a "
            f"{panel.columns}x{panel.rows} grid with padding {pad}",
            fix="fix the panel option (columns, rows, index, padding)",
        )
    row, col = divmod(panel.index, panel.columns)
    x0, y0 = pad + col * (cell_w + pad), pad + row * (cell_h + pad)
    return np.ascontiguousarray(frames[:, y0 : y0 + cell_h, x0 : x0 + cell_w])


def resize_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = width * height < frames.shape[1] * frames.shape[2]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=interpolation) for f in frames])


def normalise_output(
    source: Path,
    clip: Clip,
    out_path: Path,
    expected_fps: float | None,
    opts: NormaliseOptions,
    panel: Panel | None,
    label: str,
) -> dict[str, Any]:
    """Keep ``source`` as ``original.<ext>`` beside ``out_path``; write it normalised there.

    25 fps (FFmpeg's fps filter: frames dropped or repeated by time), 16 kHz mono, the ground
    truth's size (cv2 area / bicubic resize). Returns what was found and done, for the record.
    """
    suffix = source.suffix.lower() or ".bin"
    original = out_path.with_name(f"original{suffix}")
    shutil.copyfile(source, original)
    decoded = media.decode_video(original)
    warnings: list[str] = []
    info: dict[str, Any] = {
        "original": {
            "file": original.name,
            "fps": round(decoded.source_fps, 3),
            "size": [int(decoded.frames.shape[2]), int(decoded.frames.shape[1])],
            "frames_at_25fps": int(len(decoded.frames)),
            "has_audio": decoded.has_audio,
            "sha256": media.sha256_file(original),
        },
        "normalise_version": NORMALISE_VERSION,
    }
    if expected_fps is not None and abs(decoded.source_fps - expected_fps) > FPS_TOLERANCE:
        message = (
            f"the output is {decoded.source_fps:.3f} fps where {label} documents "
            f"{expected_fps:g} fps"
        )
        if opts.on_fps_mismatch == "fail":
            raise BenchError(
                f"{label}: {message}",
                path=source,
                fix="check the tool's fps setting, or set on_fps_mismatch: resample",
            )
        warnings.append(f"{message}; resampled to 25 fps by time")
    frames = decoded.frames
    if panel is not None:
        frames = cut_panel(frames, panel)
        info["panel"] = panel.model_dump()
    width, height = video_size(clip.video)
    got_h, got_w = frames.shape[1:3]
    if (got_w, got_h) != (width, height):
        if abs(got_w / got_h - width / height) > 0.01:
            warnings.append(
                f"aspect ratio changed: {got_w}x{got_h} stretched to {width}x{height}"
            )
        frames = resize_frames(frames, width, height)
        info["resized_from"] = [int(got_w), int(got_h)]
    if opts.audio == "output" and decoded.has_audio:
        audio, info["audio"] = decoded.audio, "tool output"
    else:
        audio, _ = media.decode_audio(clip.audio if clip.audio is not None else clip.video)
        info["audio"] = "driving audio"
        if opts.audio == "output":
            warnings.append("the output has no audio track; the driving audio was muxed in")
    seconds_video = len(frames) / media.FPS
    seconds_audio = len(audio) / media.SAMPLE_RATE
    if audio.size and abs(seconds_video - seconds_audio) > DURATION_TOLERANCE_S:
        warnings.append(
            f"video lasts {seconds_video:.2f} s but its audio {seconds_audio:.2f} s"
        )
    media.write_video(out_path, frames, audio if audio.size else None)
    info["frames"] = int(len(frames))
    info["ground_truth_frames"] = int(media.count_frames(clip.video))
    info["warnings"] = warnings
    return info


# ---- the methods ---------------------------------------------------------------------------


class External(Method):
    id = "external"
    description = "Runs a configured command per clip (a baseline in its own environment)."
    resources = Resources(gpus=1)  # baselines are GPU programs; one per GPU
    version = "1"
    Options = ExternalOptions

    def setup(self, device: str) -> None:
        self._device = device

    @classmethod
    def is_deterministic(cls, options: ExternalOptions) -> bool:
        """A tool that is never given ``{seed}`` cannot vary with it: one generation per clip
        (the tool's own randomness, if any, is then not sampled by the run's seeds)."""
        return "{seed}" not in json.dumps(options.model_dump(mode="json"))

    def generate(
        self, clip: Clip, options: ExternalOptions, seed: int, out_path: Path
    ) -> Generation:
        command = (
            shlex.split(options.command)
            if isinstance(options.command, str)
            else list(options.command)
        )
        inv = Invocation(
            label=self.id,
            command=command,
            cwd=options.cwd.expanduser() if options.cwd else None,
            python=options.python,
            output=options.output,
            config_template=options.config_template,
            config_set=options.config_set,
            expected_fps=options.expected_fps,
            panel=options.panel,
        )
        return run_tool(inv, options, clip, seed, out_path, getattr(self, "_device", "cpu"))

    def fingerprint(self) -> dict[str, Any]:
        return {"version": self.version, "normalise": NORMALISE_VERSION}

    def clip_fingerprint(self, clip: Clip, options: ExternalOptions) -> dict[str, Any]:
        return received_clip_fields(clip, options.model_dump(mode="json"), options)


class PresetMethod(Method):
    """A method id per preset; the preset's table entry is part of its fingerprint."""

    preset: ClassVar[Preset]
    version = "1"
    resources = Resources(gpus=1)  # every preset is a diffusion or GAN model on a GPU

    def setup(self, device: str) -> None:
        self._device = device

    @classmethod
    def is_deterministic(cls, options: PresetOptions) -> bool:
        """A preset whose command does not take the run's seed (seed fixed inside the tool)."""
        return not cls.preset.seeded

    def generate(self, clip: Clip, options: PresetOptions, seed: int, out_path: Path) -> Generation:
        preset = self.preset
        inv = Invocation(
            label=preset.id,
            command=list(preset.command),
            cwd=options.repo,
            python=options.python,
            output=preset.output,
            repo=options.repo,
            config_template=Path(preset.config_template) if preset.config_template else None,
            config_set=preset.config_set,
            expected_fps=options.expected_fps or preset.fps,
            panel=options.panel or (Panel(**preset.panel) if preset.panel else None),
            seeded=preset.seeded,
        )
        generation = run_tool(inv, options, clip, seed, out_path, getattr(self, "_device", "cpu"))
        generation.info["repo_commit"] = options.repo_commit
        return generation

    def clip_fingerprint(self, clip: Clip, options: PresetOptions) -> dict[str, Any]:
        preset = self.preset
        templates = [
            list(preset.command), preset.output, dict(preset.config_set),
            options.model_dump(mode="json"),
        ]
        return received_clip_fields(clip, templates, options, preset.config_template)

    def fingerprint(self) -> dict[str, Any]:
        preset = self.preset
        return {
            "version": self.version,
            "normalise": NORMALISE_VERSION,
            "preset": {
                "command": list(preset.command),
                "output": preset.output,
                "fps": preset.fps,
                "config_template": preset.config_template,
                "config_set": dict(preset.config_set),
                "panel": dict(preset.panel) if preset.panel else None,
            },
        }


def preset_method(preset: Preset) -> type[PresetMethod]:
    """The Method class (and its Options class) of one preset."""
    options = type(
        f"{preset.name.replace(' ', '')}Options",
        (PresetOptions,),
        {"preset": preset, "__module__": __name__, "__doc__": f"Options of {preset.name}."},
    )
    return type(
        f"{preset.name.replace(' ', '')}Method",
        (PresetMethod,),
        {
            "id": preset.id,
            "description": f"{preset.name} ({preset.homepage}) run from its checkout.",
            "preset": preset,
            "Options": options,
            "__module__": __name__,
        },
    )


PRESET_METHODS: dict[str, type[PresetMethod]] = {
    key: preset_method(preset) for key, preset in PRESETS.items()
}


@hookimpl
def register_methods(register):
    register(External)
    for cls in PRESET_METHODS.values():
        register(cls)
