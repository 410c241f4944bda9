"""The base of every plugin's options: validated, immutable, unknown fields rejected."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Subclass this for a plugin's options; a typo in a config becomes an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)
