"""`auhead-bench label-aus`: AU label files for training, measured on a dataset's own videos.

AUHead's authors' per-frame FEAFA+ labels are not public, so a user who wants to train stage 1
or stage 2 needs labels of their own. This command runs a face-expression extractor (by
default py-feat's, the suite's ``pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet``) on every
clip of the config's datasets through the registry and the feature store, exactly as a run
scores videos (the same normalised 25 fps clips, the same cache: features already computed by
a run are reused, and these are reused by runs), and turns its FACS AU estimates into the 24
FEAFA+ AUs with ``aus.feat_to_feafa`` (the inverse of the map the AU-control metric uses; that
module says what it cannot express).

Output: ``OUT/<clip_id>.csv`` per clip, the format ``au_labels_dir`` reads (header ``frame``,
``timestamp`` and the 24 ``AU_NAMES``; one row per 25 fps frame; empty cells where no face was
found), and ``OUT/labels.json`` (extractor spec, the map, per-clip outcome). Resumable: a clip
whose file exists is skipped, each file is written whole or not at all.

Filled in: py-feat's xgb AU outputs are presence probabilities, taken here as intensities in
[0, 1] (FEAFA+ AUs are intensities); no extractor in the suite estimates FEAFA+ directly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from auhead_bench.aus import (
    AU_NAMES,
    FEAFA_TO_FEAT,
    UNMAPPED,
    VIDEO_FPS,
    feat_to_feafa,
    save_au_labels,
)
from auhead_bench.errors import BenchError, one_line

DEFAULT_EXTRACTOR = "pyfeat_v1_retinaface_mobilefacenet_xgb_resmasknet"
MANIFEST = "labels.json"
UNMAPPED_VALUES = {"zero": 0.0, "nan": math.nan}


def map_description(unmapped: str) -> dict[str, Any]:
    """The FACS -> FEAFA+ map as recorded in the manifest."""
    return {
        "direction": "FACS (extractor) -> FEAFA+ 24: pseudo-inverse of aus.feat_matrix()",
        "from_facs": {AU_NAMES[i]: [name for name, parts in FEAFA_TO_FEAT.items()
                                    if any(j == i for j, _ in parts)]
                      for i in range(len(AU_NAMES)) if i not in UNMAPPED},
        "not_expressible": {AU_NAMES[i]: why for i, why in UNMAPPED.items()},
        "not_expressible_value": unmapped,
        "left_right": "both sides get the bilateral FACS value: the split is not measured",
    }


def extractor_aus(store: Any, extractor: str) -> tuple[str, ...]:
    """The FACS AU names of the extractor's ``aus`` columns (its params say them)."""
    names = store.spec(extractor)["params"].get("aus")
    if not names:
        raise BenchError(f"extractor {extractor!r} states no FACS 'aus' columns",
                         fix=f"use an AU extractor, e.g. --extractor {DEFAULT_EXTRACTOR}")
    return tuple(names)


def label_clips(config_path: Path | None, out: Path, extractor: str = DEFAULT_EXTRACTOR,
                unmapped: str = "zero", progress: bool = True) -> dict[str, Any]:
    """Write the label files (see the module docstring); returns the manifest."""
    from rich.progress import Progress

    from auhead_bench import provenance
    from auhead_bench.cache import DEFAULT_CACHE, Cache, write_json_atomic
    from auhead_bench.config import load_config
    from auhead_bench.features import FeatureStore
    from auhead_bench.plan import dataset_components
    from auhead_bench.plugins import get_registry
    from auhead_bench.stages import prepare_or_reason

    # methods and metrics play no part: a run config or one listing only datasets will do
    config = load_config(config_path, {"methods": [], "metrics": []})
    registry = get_registry()
    datasets = dataset_components(config, registry, config_path)
    if not datasets:
        raise BenchError("the config lists no datasets", path=config_path,
                         fix="name the datasets to label under `datasets:`")
    registry.get("extractor", extractor)  # unknown id: BenchError with did-you-mean
    cache = Cache(config.cache_dir or DEFAULT_CACHE)
    store = FeatureStore(registry, cache, provenance.resolve_device(config.device),
                         chunk_frames=config.chunk_frames,
                         buffer_bytes=config.frame_buffer_mb << 20)
    names = extractor_aus(store, extractor)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest: dict[str, Any] = {
        "extractor": store.spec(extractor), "map": map_description(unmapped),
        "fps": VIDEO_FPS, "clips": {},
    }
    if manifest_path.is_file():  # a resumed run keeps what the earlier one recorded
        import json

        manifest["clips"] = json.loads(manifest_path.read_text()).get("clips", {})
    work = []
    for component in datasets:
        instance = component.entry.cls(component.options, cache.root / "datasets")
        clips = instance.clips()
        limit = getattr(component.options, "max_clips", None)
        work += [(component.id, clip) for clip in (clips if limit is None else clips[:limit])]
    ids = [clip.id for _, clip in work]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise BenchError(f"clip ids repeat across the config's datasets: {duplicates[:5]}",
                         path=config_path, fix="label one dataset per OUT folder")
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("label AUs", total=len(work))
        for dataset_id, clip in work:
            target = out / f"{clip.id}.csv"
            if target.is_file():
                bar.advance(task)
                continue
            manifest["clips"][clip.id] = {"dataset": dataset_id,
                                          **_label_one(clip, cache, config.intermediate, store,
                                                       extractor, names, unmapped, target,
                                                       prepare_or_reason)}
            write_json_atomic(manifest_path, manifest)
            bar.advance(task)
    write_json_atomic(manifest_path, manifest)
    return manifest


def _label_one(clip: Any, cache: Any, intermediate: str, store: Any, extractor: str,
               names: tuple[str, ...], unmapped: str, target: Path,
               prepare: Any) -> dict[str, Any]:
    """One clip's label file; what happened, for the manifest."""
    prepared = prepare(clip, cache, intermediate)
    if isinstance(prepared, str):
        return {"error": prepared}
    view, errors = store.view(prepared.clip.video, prepared.content_sha256, [extractor])
    store.release()
    if extractor in errors:
        return {"error": errors[extractor].message}
    arrays = view[extractor]
    facs = np.asarray(arrays["aus"], np.float32)
    labels = feat_to_feafa(facs, names, UNMAPPED_VALUES[unmapped])
    tmp = target.with_name(f".{target.name}.tmp.csv")
    try:
        save_au_labels(tmp, labels, fps=VIDEO_FPS)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BenchError(f"cannot write AU labels ({one_line(exc)})", path=target) from None
    with_face = int(np.isfinite(facs).all(axis=1).sum())
    return {"file": target.name, "frames": len(labels), "frames_with_face": with_face,
            "content_sha256": prepared.content_sha256}
