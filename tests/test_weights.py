"""The weights registry: cache layout, sha256 checks, the pull command, safe loading."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
import torch
from click.testing import CliRunner

from auhead_bench.cli import cli
from auhead_bench.errors import BenchError
from auhead_bench.media import sha256_file
from auhead_bench.weights import WeightsMissing, WeightsSpec, load_state_dict, locate, pull


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AUHEAD_BENCH_WEIGHTS", str(tmp_path / "weights"))
    return tmp_path / "weights"


@pytest.fixture
def served(tmp_path):
    """A tiny state dict served over HTTP on loopback only."""
    folder = tmp_path / "served"
    folder.mkdir()
    torch.save({"w": torch.arange(4.0)}, folder / "tiny.pt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tiny.pt", sha256_file(folder / "tiny.pt")
    server.shutdown()


def spec(url: str, sha: str | None) -> WeightsSpec:
    return WeightsSpec("tiny", "tiny.pt", url, sha, "MIT", "a test tensor")


def test_missing_weights_name_the_pull_command(weights_dir):
    with pytest.raises(WeightsMissing) as info:
        locate(spec("https://example.invalid/tiny.pt", None))
    assert "auhead-bench weights pull tiny" in str(info.value)


def test_pull_verifies_and_caches(weights_dir, served):
    url, sha = served
    path = pull(spec(url, sha))
    assert path == weights_dir / "tiny" / "tiny.pt" and locate(spec(url, sha)) == path
    assert torch.equal(load_state_dict(path)["w"], torch.arange(4.0))


def test_pull_rejects_a_wrong_hash_and_leaves_nothing(weights_dir, served):
    url, _ = served
    with pytest.raises(BenchError, match="expected"):
        pull(spec(url, "0" * 64))
    assert not (weights_dir / "tiny" / "tiny.pt").exists()


def test_a_changed_file_is_refused(weights_dir, served):
    url, sha = served
    path = pull(spec(url, sha))
    path.write_bytes(b"tampered")
    with pytest.raises(WeightsMissing, match="do not match"):
        locate(spec(url, sha))


def test_pickled_code_is_never_loaded(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(BenchError, match="never pickled code"):
        load_state_dict(path)


def test_weights_cli_unknown_name():
    result = CliRunner().invoke(cli, ["weights", "pull", "no-such-weights"])
    assert result.exit_code == 2 and "auhead-bench weights list" in result.output


def test_every_weights_name_a_missing_weights_message_gives_is_registered():
    """AUHead's stage-1 message says `auhead-bench weights pull qwen2-audio-7b-instruct`:
    that command must know the name (it once did not)."""
    import json

    from auhead_bench_methods.auhead.stage1 import STAGE1_WEIGHTS

    listed = CliRunner().invoke(cli, ["weights", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    names = {item["name"] for item in json.loads(listed.output)}
    assert {spec.name for spec in STAGE1_WEIGHTS} <= names
    assert {"sd15-unet", "sd15-vae"} <= names
    from auhead_bench_methods.auhead.declarations import memo_specs

    assert {spec.name for spec in memo_specs().values()} <= names  # backbone: memo's files
