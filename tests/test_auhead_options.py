"""AUHead's options as a user finds them: every one described by `auhead-bench ls methods`,
stage 1's as a typed nested model, experiment names listing only what differs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pydantic import Field

from auhead_bench.cli import cli
from auhead_bench.options import Options, describe_options
from auhead_bench.plan import non_default_options


@pytest.fixture(scope="module")
def listed() -> dict[str, dict]:
    result = CliRunner().invoke(cli, ["ls", "methods", "--json"])
    assert result.exit_code == 0, result.output
    return {row["id"]: row for row in json.loads(result.output)}


def _walk(options: dict, prefix: str = ""):
    for name, spec in options.items():
        yield prefix + name, spec
        yield from _walk(spec.get("options", {}), f"{prefix}{name}.")


@pytest.mark.parametrize("method", ["auhead", "auhead_gt_aus"])
def test_every_auhead_option_is_described(listed, method):
    undescribed = [name for name, spec in _walk(listed[method]["options"])
                   if not (spec["description"] or "").strip()]
    assert not undescribed


def test_stage1_options_are_a_typed_nested_model(listed):
    stage1 = listed["auhead"]["options"]["stage1"]
    assert stage1["type"] == "Stage1Options"
    assert stage1["options"]["prompt"]["choices"] == ["suite", "authors", "authors_inference"]
    assert stage1["options"]["prompt_mode"]["choices"] == ["A->AU", "A->E->AU", "A+E->AU"]
    assert stage1["default"]["prompt"] == "suite" and "model" in stage1["options"]
    text = CliRunner().invoke(cli, ["ls", "methods"]).output
    assert "--stage1.prompt: one of 'suite', 'authors', 'authors_inference'" in text


def test_nested_options_validate_and_name_experiments_by_what_differs():
    from auhead_bench_methods.auhead.plugin import AUHeadOptions
    from auhead_bench_methods.auhead.stage1 import Stage1Options

    assert non_default_options(AUHeadOptions()) == {}
    options = AUHeadOptions(stage1={"prompt": "authors"})
    assert isinstance(options.stage1, Stage1Options)
    assert options.stage1.prompt_mode == "A+E->AU"  # the authors' text implies it
    assert non_default_options(options) == {
        "stage1": {"prompt": "authors", "prompt_mode": "A+E->AU"}}
    with pytest.raises(ValueError, match="promt"):
        AUHeadOptions(stage1={"promt": "authors"})  # a typo is an error, not a no-op


def test_a_description_table_must_name_real_options():
    class Small(Options):
        size: int = 1
        kind: str = Field("a", description="said where declared")

    describe_options(Small, {"size": "how big", "kind": "from the table"})
    assert Small.model_fields["size"].description == "how big"
    assert Small.model_fields["kind"].description == "said where declared"
    with pytest.raises(ValueError, match="no option"):
        describe_options(Small, {"sise": "typo"})
