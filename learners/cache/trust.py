"""When a segment's file may be handed to LMDB.

LMDB trusts its file: a truncated file makes it fault (SIGBUS) on the first read past the end,
and a damaged page can make it fail or read the wrong bytes. A segment file is mapped only when:

* its size and CRC-32C equal those this cache recorded when it sealed the segment (``SEALED``)
  or last closed it cleanly (``CLOSED``); or
* py-lmdb's offline structural verifier (``lmdb.verify``: pure Python, never maps the file)
  finds nothing wrong; or
* it is the active segment of a writer that died on this boot, and the file is as long as its
  newest meta page says (the OS kept every page LMDB wrote, in LMDB's order).

Otherwise it is salvaged (``salvage.py``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import lmdb.verify

from learners.cache.files import CLOSED_MARKER, DATA_NAME, SEALED_MARKER, file_digest, read_marker
from learners.cache.salvage import last_page, page_size_of

if TYPE_CHECKING:
    from learners.cache.segment import Segment


def matches_marker(segment: Segment, name: str) -> bool:
    """True when the data file is byte-for-byte what marker ``name`` recorded."""
    marker = read_marker(segment.path / name)
    if marker is None or "crc32c" not in marker:
        return False
    try:
        size = segment.data_path.stat().st_size
        return size == marker["size"] and file_digest(segment.data_path) == (size, marker["crc32c"])
    except OSError:
        return False


def structure_problem(segment: Segment) -> str | None:
    """The first problem LMDB's offline verifier finds in the data file, or None."""
    try:
        problems = lmdb.verify.verify(str(segment.path))
    except (lmdb.verify.VerifyError, OSError) as exc:
        return str(exc)
    return problems[0] if problems else None


def check(segment: Segment, marker: str) -> str | None:
    """None if LMDB may open the file, else the structural problem found."""
    if matches_marker(segment, marker):
        return None
    if marker == SEALED_MARKER and matches_marker(segment, CLOSED_MARKER):
        return None  # sealed by a crash before its marker, unchanged since a clean close
    return structure_problem(segment)


def closed_end(segment: Segment) -> int | None:
    """The offset its ``CLOSED`` marker says it ended at (its last clean close), or None."""
    marker = read_marker(segment.path / CLOSED_MARKER)
    end = None if marker is None else marker.get("end")
    return end if type(end) is int else None


def never_committed(segment: Segment) -> bool:
    """True if its data file is missing or no longer than LMDB's two meta pages: LMDB was
    killed while creating it, and it cannot hold a record (a first commit writes page 2). Not
    when its ``CLOSED`` marker says it held records: then that file was lost or cut short after
    it was closed, which is damage to report, not a creation to redo."""
    end = closed_end(segment)
    if end is not None and end > segment.base:
        return False
    try:
        return segment.data_path.stat().st_size <= 2 * segment.page_size
    except FileNotFoundError:
        return True


def reset_uncommitted(segment: Segment) -> None:
    """Remove the files of a segment that never committed, so LMDB creates them afresh."""
    for name in (DATA_NAME, "lock.mdb"):
        (segment.path / name).unlink(missing_ok=True)


def file_covers_meta(segment: Segment) -> bool:
    """True if the data file holds every page its newest meta page counts (a truncated file
    would make LMDB fault on the first read past its end)."""
    try:
        with open(segment.data_path, "rb") as f:
            head = f.read(2 * 65536)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    psize = page_size_of(head)
    return psize is not None and size >= (last_page(head, psize) + 1) * psize
