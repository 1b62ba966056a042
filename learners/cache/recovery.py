"""Opening a cache directory: format checks, the writer's lock, and recovering the segment list.

Opening reads markers only, never a sealed segment's file. The last segment, if unsealed, is the
active one; it is trusted by its CLOSED digest, by a writer having died on this boot (see
``trust.py``), or by LMDB's structural check; a damaged one is salvaged and sealed past any offset
it could hold, so that new offsets never reuse one that was acknowledged and lost.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learners.cache import trust
from learners.cache.errors import CacheFormatError, CacheLockedError
from learners.cache.files import (
    CLOSED_MARKER,
    DELETING_SUFFIX,
    LOCK_NAME,
    META_NAME,
    NEW_SUFFIX,
    SEALED_MARKER,
    SEGMENT_MARKER,
    boot_id,
    check_meta,
    crashed_writer,
    fsync_dir,
    parse_segment_name,
    read_marker,
    segment_name,
    write_marker,
    write_meta,
    writer_alive,
)
from learners.cache.format import SEGMENT_FORMAT_VERSION
from learners.cache.segment import Segment, create_segment

log = logging.getLogger(__name__)


@dataclass
class OpenedDirectory:
    segments: list[Segment] = field(default_factory=list)
    lock_fd: int | None = None  # the writer's flock on LOCK


_FIRST_META_TMP = f".{META_NAME}.tmp"  # what atomic_write leaves if cut short before its rename


def _never_created(directory: Path) -> bool:
    """Empty, or holding only the temporary of a first ``CACHE`` file whose creation was cut short
    (nothing can have been written or acknowledged before that file was in place)."""
    names = {p.name for p in directory.iterdir()}
    return not names or names == {_FIRST_META_TMP}


def _make_durable_directory(directory: Path) -> None:
    """``mkdir -p`` whose new entries survive a power cut: each directory it made is fsynced into
    its parent (otherwise a power loss may drop the new directory and everything acknowledged
    under it; journaling file systems happen to hide this, POSIX does not promise it)."""
    made = []
    path = directory
    while not path.exists():
        made.append(path)
        path = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    for new in reversed(made):
        fsync_dir(new.parent)


def open_directory(
    directory: Path, *, writable: bool, write_options: dict[str, Any], read_options: dict[str, Any]
) -> OpenedDirectory:
    """Check and recover the cache at ``directory`` (creating it when writable and absent).

    Raises :class:`CacheFormatError` (nothing modified) for a foreign directory or another
    format, :class:`CacheLockedError` if another process writes it.
    """
    if not directory.exists() or (directory.is_dir() and _never_created(directory)):
        if not writable:
            raise CacheFormatError(f"{directory}: no replay cache here")
        _make_durable_directory(directory)
        (directory / _FIRST_META_TMP).unlink(missing_ok=True)
        write_meta(directory)
    check_meta(directory)
    names = [p.name for p in directory.iterdir()]
    bases = sorted(b for b in map(parse_segment_name, names) if b is not None)
    for base in bases:  # before changing anything: a newer format must leave all untouched
        check_segment_format(directory, base)
    crashed = crashed_writer(directory)
    # A writer that died on this boot (SIGKILL, OOM): the OS kept every page it wrote, and
    # LMDB's commit order keeps that consistent, so its active segment needs no structural
    # check, only the cheap test that the file is as long as LMDB's meta page says.
    crashed_on_this_boot = crashed is not None and crashed[1] == boot_id()
    # The same holds for a segment that writer sealed but whose SEALED marker its background
    # sealer had not yet written: one it created (after it took LOCK, whose mtime says when).
    writer_began = _lock_taken_at(directory) if crashed_on_this_boot else None
    opened = OpenedDirectory()
    alive = False
    if writable:
        opened.lock_fd = take_lock(directory)
        remove_leftovers(directory, names)
    else:
        alive = writer_alive(directory)
    segments = opened.segments
    for i, base in enumerate(bases):
        path = directory / segment_name(base)
        sealed = read_marker(path / SEALED_MARKER)
        if sealed is not None:
            segment = Segment(path, base, int(sealed["end"]), sealed=True)
            segment.sealed_at = float(sealed.get("sealed_at", 0.0))
        elif i + 1 < len(bases):  # sealed, but its marker is lost: it ends where the next begins
            segment = Segment(path, base, bases[i + 1], sealed=True)
            segment.sealed_at = path.stat().st_mtime
            if (writer_began is not None and _created_since(path, writer_began)
                    and trust.file_covers_meta(segment)):
                segment.finish_crashed_seal(write_marker=writable)
        elif writable:
            segment = open_active(path, base, crashed_on_this_boot, write_options)
        else:
            segment = Segment(path, base, base, sealed=False)
            live = alive or (crashed_on_this_boot and trust.file_covers_meta(segment))
            segment.open_for_reading(read_options, live=live)
        if segments and segment.base < segments[-1].end:
            log.warning("segment %s overlaps %s; ends it there", segments[-1].name, segment.name)
            segments[-1].end = segment.base
        segments.append(segment)
    if writable and (not segments or segments[-1].sealed):
        base = segments[-1].end if segments else 0
        segments.append(create_segment(directory / segment_name(base), base, write_options))
    return opened


def _lock_taken_at(directory: Path) -> float | None:
    """When the writer that holds (or held) LOCK took it: its mtime (``take_lock`` writes it)."""
    try:
        return (directory / LOCK_NAME).stat().st_mtime
    except OSError:
        return None


def _created_since(path: Path, since: float) -> bool:
    """True if the segment at ``path`` was created at or after ``since`` (its SEGMENT marker)."""
    created = (read_marker(path / SEGMENT_MARKER) or {}).get("created_at")
    return type(created) in (int, float) and created >= since


def check_segment_format(directory: Path, base: int) -> None:
    marker = read_marker(directory / segment_name(base) / SEGMENT_MARKER)
    version = None if marker is None else marker.get("format_version")
    if type(version) is int and version > SEGMENT_FORMAT_VERSION:
        raise CacheFormatError(
            f"segment {segment_name(base)}: segment format version {version} is newer than this "
            f"rill supports ({SEGMENT_FORMAT_VERSION}); upgrade rill to open it"
        )
    if marker is None:
        log.warning("segment %s: its SEGMENT marker is missing or damaged", segment_name(base))


def open_active(path: Path, base: int, crashed_on_this_boot: bool, options: dict[str, Any]) -> Segment:
    """The last, unsealed segment, opened for the committer; or, if it is damaged, salvaged and
    sealed where no record it may have held can be."""
    segment = Segment(path, base, base, sealed=False)
    if trust.never_committed(segment):  # created just before a crash: LMDB starts it afresh
        trust.reset_uncommitted(segment)
        problem = None
    elif crashed_on_this_boot and trust.file_covers_meta(segment):
        problem = None
    else:
        problem = trust.check(segment, CLOSED_MARKER)
    if problem is None:
        segment.open_writable(options)
        return segment
    log.error("segment %s: not closed cleanly and damaged: %s", segment.name, problem)
    segment.salvage(problem)
    # above every record it may have held: what the file shows, and where its last clean close ended
    segment.end = max(segment.offset_bound(), trust.closed_end(segment) or 0)
    segment.sealed = True
    segment.sealed_at = time.time()
    marker = {"end": segment.end, "sealed_at": segment.sealed_at, "damaged": problem}
    write_marker(path / SEALED_MARKER, marker)
    return segment


def remove_leftovers(directory: Path, names: list[str]) -> None:
    """Remove segments whose creation (never held a durable record) or deletion (retention) a
    crash interrupted."""
    for name in names:
        if name.endswith(NEW_SUFFIX) or name.endswith(DELETING_SUFFIX):
            shutil.rmtree(directory / name, ignore_errors=True)


def take_lock(directory: Path) -> int:
    """Hold the cache for writing (an flock on LOCK, which then says who and on which boot)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").split()[:1]
        os.close(fd)
        raise CacheLockedError(
            f"{directory}: open for writing by another process (pid {holder[0] if holder else '?'})"
        ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {boot_id() or '-'}\n".encode(), 0)
    return fd


def release_lock(fd: int) -> None:
    """Empty LOCK (a clean close, see ``files.crashed_writer``) and drop the flock."""
    os.ftruncate(fd, 0)
    os.close(fd)
