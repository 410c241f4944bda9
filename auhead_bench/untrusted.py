"""Configs made from submitted records: the options that run a program are held apart.

A record's method options may hold a command (``external``) or environment variables (every
baseline preset): from an untrusted record, a visitor who follows the leaderboard's
"reproduce" steps would run them. A reproduce config therefore carries them under
``from_record`` as data, with the note "the command is the submitter's: review it", and
``auhead-bench run`` refuses such a config unless ``--trust-commands`` is given; then they
are put back into the method's options.
"""

from __future__ import annotations

from typing import Any

from auhead_bench.config import RunConfig
from auhead_bench.errors import ConfigError

# Method options that make a method run something of the submitter's choosing.
HELD_OPTIONS = ("command", "env")
REVIEW = "the command is the submitter's: review it"


def hold_commands(
    record_id: str, method_id: str, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(options without HELD_OPTIONS, the ``from_record`` block holding them) for a config
    made from a record; the block is None when the options hold nothing to run."""
    held = {k: options[k] for k in HELD_OPTIONS if options.get(k)}
    if not held:
        return options, None
    kept = {k: v for k, v in options.items() if k not in held}
    return kept, {"record_id": record_id, "note": REVIEW, "method": method_id, "options": held}


def trusted(config: RunConfig, trust_commands: bool, source: Any = None) -> RunConfig:
    """``config`` ready to run: one made from a record (``from_record``) is refused unless
    ``trust_commands``, and then gets its held options back."""
    block = config.from_record
    if block is None:
        return config
    method = str(block.get("method", "?"))
    held = block.get("options") or {}
    if not trust_commands:
        shown = ", ".join(f"from_record.options.{k}" for k in held) or "from_record"
        raise ConfigError(
            f"made from the submitted record {str(block.get('record_id'))[:80]!r}: method "
            f"{method!r} would run the submitter's command ({shown}); {REVIEW}",
            path=source,
            fix="read it, and run again with --trust-commands only if you trust it",
        )
    if not isinstance(held, dict):
        raise ConfigError("from_record.options must be a mapping", path=source)
    methods = [
        m.model_copy(update={"options": {**m.options, **held}}) if m.id == method else m
        for m in config.methods
    ]
    return config.model_copy(update={"methods": methods, "from_record": None})
