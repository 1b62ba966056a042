"""Named consumers: readers whose position survives a crash, committed atomically to disk."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

from learners.cache.errors import CacheCorruptError, CacheError
from learners.cache.files import CONSUMERS_DIR, atomic_write, fsync_dir, strip_crc, with_crc

if TYPE_CHECKING:
    from learners.cache.cache import ReplayCache

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SUFFIX = ".offset"


def consumer_path(directory: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise ValueError(
            f"consumer name {name!r}: use 1-100 letters, digits, '_', '.', '-' (not leading)"
        )
    return directory / CONSUMERS_DIR / f"{name}{_SUFFIX}"


def read_position(path: Path) -> int:
    """The committed position (the offset to resume from) stored at ``path``."""
    payload = strip_crc(path.read_bytes())
    try:
        if payload is None:
            raise ValueError("checksum mismatch")
        doc = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        position = doc["next"]
        if type(position) is not int or position < 0:
            raise ValueError(f"bad position {position!r}")
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise CacheCorruptError(f"consumer offset file {path}: {exc}") from exc
    return position


def write_position(path: Path, name: str, position: int) -> None:
    doc = {"name": name, "next": position, "committed_at": time.time()}
    atomic_write(path, with_crc(msgpack.packb(doc, use_bin_type=True)))


def registered_consumers(directory: Path) -> dict[str, int]:
    """Every registered consumer of the cache at ``directory`` and its committed position."""
    folder = directory / CONSUMERS_DIR
    if not folder.is_dir():
        return {}
    return {
        p.name[: -len(_SUFFIX)]: read_position(p)
        for p in sorted(folder.iterdir())
        if p.name.endswith(_SUFFIX) and not p.name.startswith(".")
    }


class Consumer:
    """A named reader of a :class:`ReplayCache` that resumes exactly where it committed.

    ``poll`` / ``iter`` return ``(offset, record)`` pairs in offset order, from the in-memory
    position; ``commit(offset)`` makes "everything up to and including ``offset`` is consumed"
    durable (atomic file replace), so after a crash the consumer resumes at the next record.
    Retention never deletes a segment that a registered consumer has not committed past.
    Records that fail their checksum are logged and skipped (counted in ``skipped``).
    """

    def __init__(self, cache: ReplayCache, name: str) -> None:
        self.cache = cache
        self.name = name
        self._path = consumer_path(cache.path, name)
        if self._path.exists():
            self._committed = read_position(self._path)
        else:
            if cache.config.read_only:
                raise CacheError(f"{cache.path}: no consumer named {name!r} (cache is read-only)")
            self._path.parent.mkdir(exist_ok=True)
            fsync_dir(cache.path)
            self._committed = 0
            write_position(self._path, name, 0)
            log.info("%s: registered consumer %r", cache.path, name)
        self.position = self._committed
        self.skipped = 0

    @property
    def committed(self) -> int:
        """The durable position: the consumer resumes at the first record at or after it."""
        return self._committed

    def poll(self, max_records: int = 256, timeout: float | None = 0.0) -> list[tuple[int, Any]]:
        """Up to ``max_records`` next records; waits up to ``timeout`` seconds for the first."""
        if timeout != 0.0:
            self.wait(timeout)
        out: list[tuple[int, Any]] = []
        for offset in self.cache.log.offsets(self.position):
            if len(out) >= max_records:
                break
            record = self._read(offset)
            self.position = offset + 1
            if record is not None:
                out.append((offset, record))
        return out

    def iter(
        self, *, follow: bool = False, timeout: float | None = None
    ) -> Iterator[tuple[int, Any]]:
        """Yield records from the position on. With ``follow``, keep tailing the log: wait for
        new records, and stop after ``timeout`` seconds without one or when the cache closes."""
        while True:
            batch = self.poll(256, 0.0)
            yield from batch
            if batch:
                continue
            if not follow or not self.wait(timeout):
                return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a record at or after the position is readable; False on timeout."""
        return self.cache.log.wait_for_record(self.position, timeout)

    def commit(self, offset: int | None = None) -> None:
        """Durably mark the record at ``offset`` (default: the last one returned) and all before
        it as consumed."""
        position = self.position if offset is None else offset + 1
        if position < self._committed:
            raise CacheError(
                f"consumer {self.name!r}: commit at offset {position - 1} is behind its "
                f"committed position {self._committed}"
            )
        write_position(self._path, self.name, position)
        self._committed = position

    def seek(self, offset: int) -> None:
        """Move the in-memory position; the next record read is the first at or after it."""
        self.position = offset

    def _read(self, offset: int) -> Any:
        try:
            return self.cache.read(offset)
        except CacheCorruptError as exc:
            self.skipped += 1
            log.warning("consumer %r skipped a corrupt record: %s", self.name, exc)
            return None
