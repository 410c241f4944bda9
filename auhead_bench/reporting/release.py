"""Versioned releases of the board: an immutable folder a paper can cite.

``leaderboard build --release v1`` writes ``SITE/releases/v1/``: every accepted record and
reported result as published, the table (JSON, CSV, LaTeX), the JSON Schemas, the board
and flags files, ``release.json`` (name, date, counts) and ``MANIFEST.sha256`` over all of
them. A release is never rewritten: a second build with the same name is refused before
anything is written. The same folder is kept under ``--releases`` (the repository's
``leaderboard/releases/``, committed) so that every later build, on any machine, publishes
the earlier releases again unchanged and links to them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from auhead_bench import __version__
from auhead_bench.errors import BenchError
from auhead_bench.records import json_schema as record_schema
from auhead_bench.records import parse_json, read_regular_file
from auhead_bench.reporting.board import REPO_ROOT, Board, Flag
from auhead_bench.reporting.reported import json_schema as reported_schema

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
MANIFEST = "MANIFEST.sha256"
INFO = "release.json"


def default_releases_dir() -> Path:
    return REPO_ROOT / "leaderboard" / "releases"


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def check_new(name: str, out: Path, releases: Path | None) -> None:
    """Refuse a bad name, or one that is already released (in the site or the archive)."""
    if not NAME.fullmatch(name) or name in {".", ".."}:
        raise BenchError(
            f"release name {name[:60]!r} is not a plain name",
            fix="use letters, digits, '.', '_' or '-' (e.g. v1, 2026.12)",
        )
    for folder in (Path(out) / "releases", releases):
        if folder is not None and (Path(folder) / name).exists():
            raise BenchError(
                f"release {name} already exists: a release is never rewritten",
                path=Path(folder) / name,
                fix="build a new release name (e.g. the next version)",
            )


def label(name: str | None) -> dict[str, str] | None:
    return None if name is None else {"name": name, "date": _today()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_lines(folder: Path) -> list[str]:
    """``sha256  relative/path`` for every file under ``folder`` except the manifest."""
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        lines.append(f"{_sha256(path)}  {path.relative_to(folder).as_posix()}")
    return lines


def verify(folder: Path) -> list[str]:
    """Files whose sha256 no longer matches the manifest (or that are missing or extra)."""
    manifest = Path(folder) / MANIFEST
    recorded = {}
    for line in manifest.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        recorded[rel] = digest
    now = dict((rel, digest) for digest, _, rel in
               (line.partition("  ") for line in manifest_lines(Path(folder))))
    return sorted(rel for rel in set(recorded) | set(now) if recorded.get(rel) != now.get(rel))


def write_release(
    name: str,
    out: Path,
    *,
    results: Path,
    board: Board | None,
    flags: dict[str, Flag],
    releases: Path | None,
) -> Path:
    """Write ``out/releases/NAME`` from the site just built, and keep a copy in ``releases``."""
    out = Path(out)
    folder = out / "releases" / name
    folder.mkdir(parents=True, exist_ok=False)
    shutil.copytree(out / "records", folder / "records", ignore=shutil.ignore_patterns("*.html"))
    shutil.copytree(out / "downloads", folder / "table")
    (folder / "schema").mkdir()
    (folder / "schema" / "run-record.json").write_text(json.dumps(record_schema(), indent=2))
    (folder / "schema" / "reported-result.json").write_text(
        json.dumps(reported_schema(), indent=2)
    )
    if board is not None:
        (folder / "board.yaml").write_text(
            yaml.safe_dump(board.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        )
    (folder / "flags.yaml").write_text(
        yaml.safe_dump(
            {k: v.model_dump(mode="json") for k, v in sorted(flags.items())},
            sort_keys=False,
            allow_unicode=True,
        )
    )
    info = {
        "name": name,
        "date": _today(),
        "auhead_bench": __version__,
        "records": len([p for p in (folder / "records").glob("*.json")]),
    }
    (folder / INFO).write_text(json.dumps(info, indent=2) + "\n")
    (folder / MANIFEST).write_text("\n".join(manifest_lines(folder)) + "\n")
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # a release is read-only on disk too
    if releases is not None:
        Path(releases).mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, Path(releases) / name)
    return folder


def _info(folder: Path) -> dict[str, Any] | None:
    try:
        data = parse_json(read_regular_file(folder / INFO), folder / INFO)
    except BenchError:
        return None
    if not isinstance(data, dict) or not NAME.fullmatch(str(data.get("name", ""))):
        return None
    return {"name": str(data["name"]), "date": str(data.get("date", ""))[:10]}


def publish_existing(out: Path, releases: Path | None) -> list[dict[str, Any]]:
    """Copy archived releases the site lacks into it; every release of the site, newest
    first, as {name, date, href, changed} (``changed``: files that no longer match its
    manifest). Folders without a readable ``release.json`` are left out."""
    target = Path(out) / "releases"
    if releases is not None and Path(releases).is_dir():
        for folder in sorted(Path(releases).iterdir()):
            fresh = not (target / folder.name).exists()
            if folder.is_dir() and NAME.fullmatch(folder.name) and fresh:
                shutil.copytree(folder, target / folder.name)
    found = []
    if target.is_dir():
        for folder in target.iterdir():
            if not folder.is_dir() or not NAME.fullmatch(folder.name):
                continue
            info = _info(folder)
            if info is not None and info["name"] == folder.name:
                changed = verify(folder) if (folder / MANIFEST).is_file() else [MANIFEST]
                found.append({**info, "href": f"releases/{folder.name}/{INFO}",
                              "changed": changed})
    return sorted(found, key=lambda r: (r["date"], r["name"]), reverse=True)
