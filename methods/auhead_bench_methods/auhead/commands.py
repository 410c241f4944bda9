"""`auhead-bench train stage1|stage2`: AUHead's training commands, added through the
register_commands hook like any third-party command."""

from __future__ import annotations

import click

from auhead_bench import hookimpl


@click.group()
def train() -> None:
    """Train AUHead's stages (stage 1: LoRA on the audio-language model; stage 2: AU adapter)."""


@hookimpl
def register_commands(cli):
    from auhead_bench_methods.auhead import train_stage1, train_stage2

    train.add_command(train_stage1.command, "stage1")
    train.add_command(train_stage2.command, "stage2")
    cli.add_command(train)
