"""`auhead-bench train stage1|stage2`: AUHead's training commands, added through the
register_commands hook like any third-party command.

Every CLI call runs that hook, so the training modules (torch, diffusers, transformers, peft)
are imported only when a ``train`` subcommand is looked up, not when the hook runs.
"""

from __future__ import annotations

import importlib

import click

from auhead_bench import hookimpl

# Subcommand name -> the module whose ``command`` it is.
TRAIN_COMMANDS = {
    "stage1": "auhead_bench_methods.auhead.train_stage1",
    "stage2": "auhead_bench_methods.auhead.train_stage2",
}


class _LazyTrainGroup(click.Group):
    """A group whose subcommands are imported on first use (``train --help`` lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*TRAIN_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in TRAIN_COMMANDS:
            module = importlib.import_module(TRAIN_COMMANDS[cmd_name])
            self.add_command(module.command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=_LazyTrainGroup)
def train() -> None:
    """Train AUHead's stages (stage 1: LoRA on the audio-language model; stage 2: AU adapter)."""


@hookimpl
def register_commands(cli):
    cli.add_command(train)
