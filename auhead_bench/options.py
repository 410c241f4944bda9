"""The base of every plugin's options: validated, immutable, unknown fields rejected."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


class Options(BaseModel):
    """Subclass this for a plugin's options; a typo in a config becomes an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def machine_specific(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """A field that says where something is on this machine (a checkout, an interpreter, a
    folder), not what to compute. It is recorded and keys the cache, but is left out of
    experiment names and record ids, so one benchmark has the same ids on every machine.
    """
    return Field(default, json_schema_extra={"machine_specific": True}, **kwargs)


def is_machine_specific(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("machine_specific"))


def describe_options(cls: type[BaseModel], descriptions: dict[str, str]) -> None:
    """Give ``cls``'s fields the descriptions ``auhead-bench ls`` prints, from one table.

    For option classes whose field lines several people edit: the text sits in one block
    instead of on every field. A field described where it is declared (``Field(description=)``)
    keeps that text. A name that is not a field raises (a stale table fails loudly). Call it
    right after the class, before any subclass is made.
    """
    unknown = sorted(set(descriptions) - set(cls.model_fields))
    if unknown:
        raise ValueError(f"{cls.__name__} has no option(s) {unknown} to describe")
    for name, text in descriptions.items():
        if not cls.model_fields[name].description:
            cls.model_fields[name].description = text
    cls.model_rebuild(force=True)
