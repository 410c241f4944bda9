"""Keeps the absolute paths of the user's machine out of everything a user may publish.

Records, and so the tables, plots and site built from them, carry paths relative to the
run's config folder (where the user's data usually sits beside it), or a named stand-in for
the cache, the output folder and the home folder; any other absolute path keeps only its
last component behind a short hash of the whole path (``<path:3f2a9c01d4>/clips``), so two
different folders stay different and the same folder stays the same across records.

The run itself never reads a path back from a record (options come from the config), so
nothing that runs depends on what is published.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# An absolute POSIX path inside text: a "/" not preceded by a word character, ":" or "/"
# (so "1/5", "n/a" and URLs are left alone), then one or more components.
_ABSOLUTE = re.compile(r"(?<![\w:/.~$<>-])/(?:[\w.@+,=-]+/)*[\w.@+,=-]*")


def hidden(path: str) -> str:
    """A stand-in for an absolute path outside every known root."""
    digest = hashlib.sha256(path.encode()).hexdigest()[:10]
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return f"<path:{digest}>/{name}" if name else f"<path:{digest}>"


class PathScrubber:
    """Rewrites absolute paths in strings (whole values or inside messages).

    ``relative_to`` is the folder paths are made relative to (the config's folder);
    ``named`` maps other folders to the stand-in that replaces them (``$CACHE``, ``$OUT``).
    """

    def __init__(self, relative_to: Path | None, named: Iterable[tuple[Path | None, str]] = ()):
        roots: list[tuple[str, str]] = []
        for folder, label in [*named, (Path.home(), "~")]:
            if folder is not None:
                roots.extend((prefix, label) for prefix in _spellings(folder))
        if relative_to is not None:
            roots.extend((prefix, ".") for prefix in _spellings(relative_to))
        # The most specific root first: a cache inside the config folder is "$CACHE".
        self.roots = sorted(set(roots), key=lambda item: -len(item[0]))

    def path(self, text: str) -> str:
        """One absolute path as it may be published."""
        for prefix, label in self.roots:
            if text == prefix:
                return label
            if text.startswith(prefix + "/"):
                rest = text[len(prefix) + 1 :]
                return rest if label == "." else f"{label}/{rest}"
        return hidden(text)

    def text(self, text: str) -> str:
        """``text`` with every absolute path in it rewritten."""
        if "/" not in text:
            return text
        return _ABSOLUTE.sub(lambda m: self.path(m.group(0)) if len(m.group(0)) > 1 else "/",
                             text)

    def data(self, value: Any) -> Any:
        """A JSON value (dicts, lists, strings) with every string's paths rewritten."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _spellings(folder: Path) -> set[str]:
    """The folder as given, absolute, and with links resolved: all three reach messages."""
    spelled = {str(folder).rstrip("/"), os.path.abspath(folder).rstrip("/")}
    try:
        spelled.add(str(Path(folder).resolve()).rstrip("/"))
    except OSError:
        pass
    return {s for s in spelled if s and s != "/" and s.startswith("/")}
