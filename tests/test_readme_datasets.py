"""The README's list of dataset options is what `auhead-bench ls datasets` shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from auhead_bench.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_options() -> dict[str, dict[str, str | None]]:
    text = README.read_text()
    block = text.split("<!-- dataset-options: begin -->")[1]
    block = block.split("<!-- dataset-options: end -->")[0]
    listed: dict[str, dict[str, str | None]] = {}
    for line in block.strip().splitlines():
        ident, _, rest = line.removeprefix("- ").partition(":")
        options = {}
        for name, default in re.findall(r"`(\w+)`(?: \(([^)]*)\))?", rest):
            options[name] = default or None
        listed[ident.strip("`")] = options
    return listed


def test_readme_lists_each_datasets_options_and_defaults():
    result = CliRunner().invoke(cli, ["ls", "datasets", "--json"])
    assert result.exit_code == 0, result.output
    shown = {d["id"]: d["options"] for d in json.loads(result.output)}
    listed = readme_options()
    assert set(listed) == set(shown)
    for ident, options in shown.items():
        assert set(listed[ident]) == set(options), ident
        for name, default in listed[ident].items():
            if default is not None:  # a default the README states must be the real one
                real = options[name]["default"]
                expected = "native" if real is None and name == "crop_size" else str(real)
                assert default == expected, (ident, name, default, real)
