"""A labels CSV that omits videos: the clips stay, unlabelled, and the record says which."""

from __future__ import annotations

import logging

import pytest

from auhead_bench.errors import BenchError
from auhead_bench_datasets.folder import Folder, FolderOptions


@pytest.fixture
def data(video_factory, tmp_path):
    for i, name in enumerate(("a", "b", "c")):
        video_factory(f"data/{name}.mp4", seed=i)
    labels = tmp_path / "labels.csv"
    labels.write_text("clip_id,emotion\na,happy\n")
    return tmp_path / "data", labels


def test_unlabelled_videos_are_kept_warned_and_recorded(data, tmp_path, caplog):
    root, labels = data
    dataset = Folder(FolderOptions(root=root, labels=labels), tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="auhead_bench.datasets"):
        clips = dataset.clips()
    assert [(c.id, c.emotion) for c in clips] == [("a", "happy"), ("b", None), ("c", None)]
    assert "2 video(s) have no row in the labels CSV labels.csv" in caplog.text
    assert "b, c" in caplog.text
    assert dataset.fingerprint()["unlabelled"] == ["b", "c"]


def test_strict_labels_refuses_naming_the_csv_and_the_clips(data, tmp_path):
    root, labels = data
    dataset = Folder(FolderOptions(root=root, labels=labels, strict_labels=True), tmp_path / "c")
    with pytest.raises(BenchError) as info:
        dataset.clips()
    message = str(info.value)
    assert str(labels) in message and "b, c" in message and "strict_labels" in message
    assert "\n" not in message


def test_a_complete_csv_records_nothing_unlabelled(data, tmp_path):
    root, labels = data
    labels.write_text("clip_id,emotion\na,happy\nb,sad\nc,angry\n")
    dataset = Folder(FolderOptions(root=root, labels=labels), tmp_path / "cache")
    assert "unlabelled" not in dataset.fingerprint()
