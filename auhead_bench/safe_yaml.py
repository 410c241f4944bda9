"""The one YAML loader for every config the suite reads (run configs, tools' config templates).

PyYAML's ``safe_load`` runs no code, but it keeps the last of two equal keys in a mapping
without a word (``metrics:`` twice drops the first list), and it expands aliases into a
structure as large as they describe: nine anchors of nine aliases ("billion laughs") are
under 1 kB of text and ~387 M strings once walked. This loader refuses both, naming the
file and line. Written on PyYAML's own composer and constructor: no library offers these
two checks for PyYAML's safe loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from auhead_bench.errors import ConfigError

# Nodes of a config with every alias expanded (each scalar, list and mapping counts one).
# Real configs hold a few hundred; a tool's config template a few thousand.
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (merge keys ``<<`` aside)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _Duplicate(key, seen[key], line)
                    seen[key] = line
                except TypeError:
                    continue  # an unhashable key: the base class says why
        return super().construct_mapping(node, deep=deep)


class _Duplicate(Exception):
    def __init__(self, key: Any, first: int, again: int):
        super().__init__(key, first, again)
        self.key, self.first, self.again = key, first, again


class _TooLarge(Exception):
    """The expanded document passes MAX_EXPANDED_NODES, or an alias refers to itself."""


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """How many nodes ``root`` holds once every alias is expanded; _TooLarge past ``limit``.

    Each node is sized once (aliases share node objects), so this costs the text's size,
    never the expansion's; a node that contains itself is infinitely large.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise _TooLarge
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _TooLarge  # an alias inside its own anchor
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def load_yaml(text: str, path: str | Path | None = None, what: str = "config") -> Any:
    """The document in ``text``; a one-line ConfigError naming ``path`` and the line for bad
    syntax, a key given twice, or a document too large once its aliases are expanded."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return loader.construct_document(node)
    except _Duplicate as exc:
        raise ConfigError(
            f"line {exc.again}: key {exc.key!r} is given twice in one mapping (first on line "
            f"{exc.first}); YAML would keep only the last",
            path=path,
            fix="keep one of them (merge the two values by hand)",
        ) from None
    except _TooLarge:
        raise ConfigError(
            f"{what} is larger than {MAX_EXPANDED_NODES} values once its aliases (*name) are "
            "expanded, or an alias refers to itself: refused",
            path=path,
            fix="write the values out without nesting aliases of aliases",
        ) from None
    except RecursionError:
        raise ConfigError(f"{what} nests too deep to read", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"bad YAML: {where}{problem}", path=path, fix="fix the syntax") from None
    finally:
        loader.dispose()
