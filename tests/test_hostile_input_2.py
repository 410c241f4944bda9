"""Issue 20, hostile input second round: each input a 134-case battery found crashing,
hanging or silently wrong is now one line naming it and the fix, or a flag, or right."""

from __future__ import annotations

import time

import pytest

from auhead_bench.errors import BenchError, ConfigError

# ---- YAML: one loader, duplicate keys and alias bombs refused ----------------------------

LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
        for i in range(8)
    ]
)


def test_a_duplicate_key_in_a_run_config_names_the_line(tmp_path):
    """`metrics:` twice kept the last list silently."""
    from auhead_bench.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "methods: [ground_truth]\ndatasets: [demo]\nmetrics: [psnr_rgb]\n"
        "seeds: [0]\nmetrics: [ssim_gauss11_rgb]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 5: key 'metrics' is given twice in one mapping (first on line 3)" in message
    # Merge keys (<<) may still override what they merge, as YAML means them to.
    path.write_text(
        "base: &b {id: ground_truth}\nmethods: [{<<: *b, id: static_frame}]\n"
        "datasets: [demo]\nmetrics: [psnr_rgb]\n"
    )
    with pytest.raises(ConfigError, match="base: unknown field"):
        load_config(path)  # read fine; only the unknown top-level key is refused


def test_an_alias_bomb_in_an_external_config_set_is_refused_at_once(tmp_path):
    """Nine anchors of nine aliases in config_set ran fill_deep over ~387 M strings."""
    from auhead_bench.config import load_config

    bomb = "\n".join("      " + line for line in LAUGHS.splitlines())
    path = tmp_path / "run.yaml"
    path.write_text(
        "methods:\n  - id: external\n    options:\n      command: [echo, '{out}']\n"
        "      config_template: t.yaml\n      config_set:\n"
        + bomb.replace("      a:", "      x.a:", 1)
        + "\ndatasets: [demo]\nmetrics: [psnr_rgb]\n"
    )
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - started < 5
    assert str(path) in str(info.value)
    assert "larger than 100000 values once its aliases (*name) are expanded" in str(info.value)


def test_a_tool_config_template_goes_through_the_same_loader(tmp_path):
    from auhead_bench_methods.external import write_config

    template = tmp_path / "t.yaml"
    template.write_text("steps: 1\nsteps: 2\n")
    with pytest.raises(BenchError, match=r"line 2: key 'steps' is given twice"):
        write_config(template, {}, {}, tmp_path / "out.yaml")
    template.write_text(LAUGHS)
    with pytest.raises(BenchError, match="aliases"):
        write_config(template, {}, {}, tmp_path / "out.yaml")
