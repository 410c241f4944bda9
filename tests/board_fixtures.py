"""Records that the repository's board.yaml ranks (or differs from, on purpose).

Synthetic records (``synthetic_records``) carry no split, preparation or metric options;
``conform`` fills them in as a real run under the board's protocol writes them, so tests
can then change exactly one field and see the board name it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import synthetic_records as syn

from auhead_bench.records import RunRecord, dump_record
from auhead_bench.reporting.board import ANY_OF, Board, load_board

BOARD = load_board()


def _first(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {ANY_OF}:
        return value[ANY_OF][0]
    return value


def conform(record: RunRecord, board: Board = BOARD, dataset: str = "mead") -> RunRecord:
    """``record`` as a run under the board's protocol on ``dataset`` writes it."""
    spec = board.dataset(dataset)
    assert spec is not None
    record = record.model_copy(deep=True)
    record.dataset.id = dataset
    record.dataset.options = {k: _first(v) for k, v in spec.split.items()}
    record.dataset.options["root"] = "/data/" + dataset
    record.preparation = {**board.preparation, "fps": 25, "sample_rate": 16000}
    for metric_id, result in record.metrics.items():
        metric = board.metric(metric_id)
        if metric is not None:
            result.options = dict(metric.options)
            result.protocol = {"version": metric.version or "1", **metric.options}
    record.record_id = f"{record.experiment}__{dataset}"
    return record


def ranked_record(
    experiment: str,
    psnr: float,
    lmd: float,
    fid: float | None = None,
    *,
    method: str | None = None,
    dataset: str = "mead",
) -> RunRecord:
    """A board-conformant record with psnr_rgb, lmd_mouth_dlib68 and optionally FID."""
    metrics = [
        syn.metric("psnr_rgb", {0: [psnr + d for d in (-0.5, 0.0, 0.5) * 4]}),
        syn.metric("lmd_mouth_dlib68", {0: [lmd] * 12}, higher_is_better=False),
    ]
    if fid is not None:
        metrics.append(
            syn.metric("fid_inception_pool3_full", None, higher_is_better=False,
                       distribution={0: fid})
        )
    return conform(syn.record(experiment, metrics, method=method), dataset=dataset)


def write_record(folder: Path, name: str, record: RunRecord | dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = dump_record(record) if isinstance(record, RunRecord) else record
    path.write_text(json.dumps(data, indent=1))
    return path


def reported_row(**changes: Any) -> dict[str, Any]:
    """A valid reported result (MEMO on MEAD, FID only); ``changes`` override fields."""
    data: dict[str, Any] = {
        "kind": "reported",
        "schema_version": "1",
        "record_id": "reported:test:memo:mead",
        "label": "MEMO, as reported",
        "method": "memo",
        "method_options": {},
        "dataset": "mead",
        "split": "not stated",
        "protocol": "FID as the paper states it",
        "citation": {
            "paper": "A paper",
            "arxiv": "2602.09534",
            "table": "Table 1",
            "quoted_from": "the test",
        },
        "verified": False,
        "metrics": {
            "fid_inception_pool3_full": {
                "paper_name": "FID",
                "value": 11.12,
                "higher_is_better": False,
                "protocol": "paper-stated",
                "stated": "frame FID",
            }
        },
    }
    data.update(changes)
    return data
