"""Configs: defaults < YAML < CLI, and every mistake named with its file and the fix."""

from __future__ import annotations

import pytest

from auhead_bench.config import RunConfig, load_config
from auhead_bench.errors import ConfigError
from auhead_bench.plan import make_plan
from auhead_bench.plugins import get_registry

BASE = """
name: t
datasets: [demo]
methods:
  - id: static_frame
    options: {frame: 3}
metrics: [psnr_rgb]
seeds: [1, 2]
"""


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_builtin_demo_config_loads_and_plans():
    config = load_config(None)
    plan = make_plan(config, get_registry())
    assert {u.method.id for u in plan.units} == {"ground_truth", "static_frame", "au_warp"}


def test_cli_overrides_yaml_which_overrides_defaults(tmp_path):
    config = load_config(write(tmp_path, BASE), {"seeds": [7], "device": None})
    assert config.seeds == [7]  # CLI wins
    assert config.name == "t"  # YAML
    assert config.device == "auto"  # default
    assert config.methods[0].options == {"frame": 3}


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "name: t\nmethods: [a, b\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "line" in message and "\n" not in message


def test_unknown_top_level_field(tmp_path):
    with pytest.raises(ConfigError, match="metircs: unknown field"):
        load_config(write(tmp_path, BASE + "metircs: [x]\n"))


def test_unknown_method_option_lists_the_known_ones(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("frame: 3", "frmae: 3")))
    with pytest.raises(ConfigError) as info:
        make_plan(config, get_registry(), tmp_path / "config.yaml")
    message = str(info.value)
    assert "methods[0].options.frmae: unknown field" in message
    assert "options of method 'static_frame': frame" in message


def test_unknown_metric_id_suggests(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("[psnr_rgb]", "[psnr]")))
    with pytest.raises(ConfigError, match="did you mean 'psnr_rgb'"):
        make_plan(config, get_registry())


def test_wrong_option_type(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("frame: 3", "frame: three")))
    with pytest.raises(ConfigError, match="methods\\[0\\].options.frame"):
        make_plan(config, get_registry())


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_experiment_names_are_readable_and_stable():
    config = RunConfig.model_validate(
        {
            "datasets": ["demo"],
            "metrics": ["psnr_rgb"],
            "methods": [{"id": "static_frame", "options": {"frame": 3}}, "static_frame"],
        }
    )
    units = make_plan(config, get_registry()).units
    assert [u.experiment for u in units] == ["static_frame[frame=3]", "static_frame"]
    assert units[0].record_id != units[1].record_id
    assert units[0].record_id == make_plan(config, get_registry()).units[0].record_id


def test_machine_specific_options_do_not_name_experiments():
    from auhead_bench.options import Options, machine_specific
    from auhead_bench.plan import non_default_options, portable_options

    class ToolOptions(Options):
        repo: str = machine_specific()
        steps: int = 20

    here = ToolOptions(repo="/home/a/tool", steps=30)
    there = ToolOptions(repo="/opt/tool", steps=30)
    assert portable_options(here) == portable_options(there) == {"steps": 30}
    assert non_default_options(here) == {"steps": 30}


def test_the_readme_config_example_plans(tmp_path):
    """The YAML under README's "Configuration" is what users copy: it must run as shown."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    config = load_config(write(tmp_path, example))
    plan = make_plan(config, get_registry())
    assert [u.experiment for u in plan.units] == [
        "ground_truth",
        "static_frame[frame=0]",
        "warp[strength=0.5]",  # the entry's name:, each sweep point named
        "warp[strength=1.0]",
        "warp[strength=2.0]",
    ]


@pytest.mark.parametrize("device", ["tpu", "gpu", "cuda:x", "CPU", "cuda:"])
def test_an_unknown_device_is_a_config_error(tmp_path, device):
    """Issue 14: `--device tpu` was accepted and the records said cpu."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE), {"device": device})
    message = str(info.value)
    assert f"device: unknown device {device!r}" in message and "cuda:N" in message
    assert "\n" not in message


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_known_devices_validate(tmp_path, device):
    assert load_config(write(tmp_path, BASE), {"device": device}).device == device


def test_a_device_this_machine_lacks_is_one_line(monkeypatch):
    import torch

    from auhead_bench import provenance
    from auhead_bench.errors import BenchError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BenchError, match="no CUDA GPU is visible"):
        provenance.resolve_device("cuda:0")
    with pytest.raises(BenchError, match="unknown device 'tpu'"):
        provenance.resolve_device("tpu")
    assert provenance.resolve_device("cpu") == "cpu"
