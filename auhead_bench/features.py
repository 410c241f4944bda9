"""The feature store: extractors run once per video content, upstream first, outputs cached.

Data flow: video file -> ``FrameSource`` (one decode pass, replayable) -> extractors in
dependency order (each cached under a key nesting its upstream specs) -> ``VideoView`` for
metrics. An upstream "no face" becomes the downstream reason; a crash is not cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench import media
from auhead_bench.cache import Cache, content_key
from auhead_bench.errors import BenchError, MediaError, disk_full, is_disk_full, one_line
from auhead_bench.extractor import Extractor
from auhead_bench.frames import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_CHUNK_FRAMES,
    DecodeError,
    FrameSource,
)
from auhead_bench.plugins import Registry
from auhead_bench.views import VideoView
from auhead_bench.weights import file_sha256

BUILTIN_FEATURES = ("frames", "audio")


@dataclass
class FeatureError:
    message: str
    transient: bool  # a crash (retried next run), not a property of the video (no face)


def extractor_order(registry: Registry, wanted: Iterable[str]) -> list[str]:
    """``wanted`` extractor ids and everything upstream of them, upstream first.

    Raises BenchError (with "did you mean") for an unknown id and for a cycle, naming it.
    """
    order: list[str] = []
    state: dict[str, str] = {}  # id -> "open" while its upstream is walked, "done" after

    def visit(ident: str, path: list[str]) -> None:
        if state.get(ident) == "done":
            return
        if state.get(ident) == "open":
            cycle = " -> ".join(path[path.index(ident) :] + [ident])
            raise BenchError(
                f"extractors depend on each other in a cycle: {cycle}",
                fix="remove one of these ids from the other's `needs`",
            )
        try:
            entry = registry.get("extractor", ident)  # unknown: BenchError with did-you-mean
        except BenchError as exc:
            if not path:
                raise
            raise BenchError(f"extractor {path[-1]!r} needs {exc.message}", fix=exc.fix) from None
        state[ident] = "open"
        for need in entry.cls.needs:
            if need not in BUILTIN_FEATURES:
                visit(need, [*path, ident])
        state[ident] = "done"
        order.append(ident)

    for ident in wanted:
        if ident not in BUILTIN_FEATURES:
            visit(ident, [])
    return order


class FeatureStore:
    """Decodes videos once and runs extractors, caching extractor outputs by content.

    Sources are shared by content: a generated video byte-identical to its ground truth
    (the ``ground_truth`` method) reuses the ground truth's decode pass. ``release`` drops
    decoded frames no longer needed.
    """

    def __init__(
        self,
        registry: Registry,
        cache: Cache,
        device: str,
        *,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ):
        self.registry = registry
        self.cache = cache
        self.device = device
        self.chunk_frames = chunk_frames
        self.buffer_bytes = buffer_bytes
        self._extractors: dict[str, Extractor] = {}
        self._ready: set[str] = set()
        self._specs: dict[str, dict[str, Any]] = {}
        self._sources: dict[str, FrameSource] = {}

    def extractor(self, ident: str, ready: bool = False) -> Extractor:
        """The run's one instance of an extractor; ``ready`` also loads its models (once)."""
        if ident not in self._extractors:
            self._extractors[ident] = self.registry.get("extractor", ident).cls()
        instance = self._extractors[ident]
        if ready and ident not in self._ready:
            instance.setup(self.device)
            self._ready.add(ident)
        return instance

    def spec(self, ident: str) -> dict[str, Any]:
        """What identifies an extractor's output: recorded, and part of every cache key.
        Nests the specs of the extractors it reads, so an upstream change changes it."""
        if ident not in self._specs:
            ex = self.extractor(ident)
            spec: dict[str, Any] = {
                "id": ident, "version": ex.version, "params": ex.params(), "weights": ex.weights()
            }  # fmt: skip
            upstream = [n for n in ex.needs if n not in BUILTIN_FEATURES]
            if upstream:
                spec["needs"] = {n: self.spec(n) for n in upstream}
            self._specs[ident] = spec
        return self._specs[ident]

    # ---- sources -----------------------------------------------------------------------------

    def source(self, path: Path, sha: str, is_image: bool = False) -> FrameSource:
        """The decode pass of this content (shared until ``release``)."""
        if sha not in self._sources:
            if is_image:
                self._sources[sha] = FrameSource.image(path)
            else:
                self._sources[sha] = FrameSource(
                    path, buffer_bytes=self.buffer_bytes, chunk_frames=self.chunk_frames
                )
        return self._sources[sha]

    def release(self, keep: Iterable[str] = ()) -> None:
        """Drop the decoded frames of every content except ``keep`` (sha256s)."""
        kept = set(keep)
        for sha in [s for s in self._sources if s not in kept]:
            self._sources.pop(sha).close()

    # ---- features ----------------------------------------------------------------------------

    def view(
        self, path: Path, sha: str, needs: Iterable[str], is_image: bool = False
    ) -> tuple[VideoView, dict[str, FeatureError]]:
        """The video with the features ``needs`` names (each extracted once, cached), and the
        errors of those that could not be had. Frames are decoded only if an extractor must
        run or the reader reads them. Raises DecodeError if the video cannot be decoded."""
        source = self.source(path, sha, is_image)
        loaded: dict[str, dict[str, np.ndarray]] = {}
        errors: dict[str, FeatureError] = {}
        for ident in sorted(set(needs) - set(BUILTIN_FEATURES)):
            self._load(ident, source, sha, is_image, loaded, errors)
        wanted = {n: loaded[n] for n in needs if n in loaded}
        return VideoView(source, sha, wanted, is_image), {
            n: e for n, e in errors.items() if n in set(needs)
        }

    def _load(
        self,
        ident: str,
        source: FrameSource,
        sha: str,
        is_image: bool,
        loaded: dict[str, dict[str, np.ndarray]],
        errors: dict[str, FeatureError],
    ) -> None:
        """Load ``ident`` from the cache, or run it (its upstream loaded first, recursively)."""
        if ident in loaded or ident in errors:
            return
        key = content_key(kind="features", video=sha, extractor=self.spec(ident))
        entry = self.cache.get("features", key)
        if entry is None:
            upstream = [n for n in self.extractor(ident).needs if n not in BUILTIN_FEATURES]
            for need in upstream:
                self._load(need, source, sha, is_image, loaded, errors)
            failed = [errors[n] for n in upstream if n in errors]
            if failed:  # e.g. no face: this one has nothing to work on, for the same reason
                errors[ident] = failed[0]
                return
            video = VideoView(source, sha, {n: loaded[n] for n in upstream}, is_image)
            try:
                arrays, error = self.extractor(ident, ready=True).extract(video), None
            except DecodeError:
                raise  # the video itself is unreadable: the caller reports it
            except MediaError as exc:  # e.g. no face: an outcome, cached like features
                arrays, error = {}, one_line(exc.message)
            except Exception as exc:  # a crash is not cached: the next run tries again
                if is_disk_full(exc):
                    raise disk_full(exc, self.cache.root, f"{ident} features") from exc
                message = f"{ident} failed: {type(exc).__name__}: {one_line(exc)}"
                errors[ident] = FeatureError(message, True)
                return
            with self.cache.put("features", key, label=f"{ident}/{sha[:12]}") as tmp:
                if error is None:
                    np.savez(tmp / "arrays.npz", **arrays)
                else:
                    (tmp / "error.txt").write_text(error)
            entry = self.cache.path("features", key)
        if (entry / "error.txt").is_file():
            errors[ident] = FeatureError((entry / "error.txt").read_text(), False)
        else:
            with np.load(entry / "arrays.npz") as data:
                loaded[ident] = {name: data[name] for name in data.files}


def image_sha256(path: Path) -> str:
    """An image's content hash (memoised per file version): the key of its features.
    MediaError if the file is missing or empty."""
    media.check_file(Path(path))
    return file_sha256(Path(path))


# The run's feature store while a method generates (set by the executor's generation stage).
_RUN_STORE: ContextVar[FeatureStore | None] = ContextVar("auhead_bench_feature_store", default=None)


@contextmanager
def serving(store: FeatureStore) -> Iterator[None]:
    """Within this block, ``image_features`` answers from ``store``."""
    token = _RUN_STORE.set(store)
    try:
        yield
    finally:
        _RUN_STORE.reset(token)


def image_features(path: Path, extractor_id: str) -> Mapping[str, np.ndarray] | None:
    """An extractor's arrays for an image file (a clip's reference), from the run's feature
    store: computed once per image content and cached, shared by every method and metric
    that reads the same image (e.g. ``face_track`` of the reference).

    None when there is no run (a method called from a script) or the extractor is not
    installed: the caller then computes what it needs itself. Raises MediaError with the
    extractor's reason when it found nothing (e.g. no face).
    """
    store = _RUN_STORE.get()
    if store is None or extractor_id not in store.registry.entries["extractor"]:
        return None
    view, errors = store.view(Path(path), image_sha256(path), [extractor_id], is_image=True)
    if extractor_id in errors:
        raise MediaError(errors[extractor_id].message, path=path)
    return view[extractor_id]
