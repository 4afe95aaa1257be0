"""Small file-system helpers used by the plugins."""

from os import PathLike
from pathlib import Path
from typing import Iterable

StrPath = str | PathLike[str]


def _normalise(extensions: Iterable[str]) -> set[str]:
    return {("." + ext.lstrip(".")).lower() for ext in extensions}


def list_files(directory: StrPath, extensions: Iterable[str] | None = None, recursive: bool = False) -> list[Path]:
    """Regular files in `directory` (sorted), optionally only those with one of `extensions`.

    Extensions are matched case-insensitively, with or without the leading dot.
    """
    root = Path(directory)
    wanted = _normalise(extensions) if extensions is not None else None
    entries = root.rglob("*") if recursive else root.iterdir()
    found = [p for p in entries if p.is_file() and (wanted is None or p.suffix.lower() in wanted)]
    return sorted(found)


def ensure_dir(path: StrPath) -> Path:
    """Creates `path` and its parents if needed; returns it as a Path."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
