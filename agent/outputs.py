"""Where a command writes what it made: into a new or empty directory, or over an earlier result of
the same kind when asked to, never over anything else (a VLA, someone's files)."""

from __future__ import annotations

from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output directory holds something that writing there would replace."""


def claim_output_dir(path: Path, marker: str, what: str, overwrite: bool = False) -> Path:
    """Check that the directory ``path`` may receive a new ``what``: it is absent or empty, or holds an
    earlier ``what`` (its ``marker`` file) and ``overwrite`` is set. Anything else is
    ``OutputExistsError`` naming the directory and what is there; nothing is touched."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{what} output {path}: a file is there, not a directory")
    there = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if not there:
        return path
    if (path / marker).is_file():
        if overwrite:
            return path
        raise OutputExistsError(f"{what} output {path}: it holds a {what} already; pass --overwrite to "
                                "replace it, or choose another directory")
    shown = ", ".join(there[:4]) + (", ..." if len(there) > 4 else "")
    raise OutputExistsError(f"{what} output {path}: it holds other files ({shown}), not a {what}; choose "
                            "a new or empty directory")
