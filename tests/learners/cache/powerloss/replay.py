"""Rebuild what a disk holds after a power loss, from the log that ``writelog.c`` records.

The model (the guarantees POSIX and Linux file systems give, no more):

* **File data** lives in 512-byte sectors. A write leaves each sector it touches in a new version
  (the sector's whole content after the write, as the page cache holds it). A version is durable
  once an ``fsync``/``fdatasync`` of the file that *began after the write completed* has
  returned, or at once when the descriptor was opened ``O_SYNC``/``O_DSYNC``. After a power loss,
  each sector holds its durable version or, if later writes to it were not yet synced, any one of
  those newer versions, independently of every other sector: writes are reordered and torn at
  sector boundaries. ``sync_file_range`` and ``msync`` without a mapping make nothing durable.
* **File size** behaves the same way: the durable size, or any size a later unsynced write or
  truncation gave the file (bytes past the data that reached the disk read as zeros).
* **Names** (creating a file, ``mkdir``, ``rename``, ``unlink``, ``rmdir``) are durable once the
  directory that holds them is fsynced (by a sync that began after the change). An unsynced
  change may survive too, but a directory's changes survive in the order they were made (a
  journal), so a crash state keeps a prefix of each directory's unsynced changes. A rename is one
  change: it is never half done. An fsync of a file never makes its name durable.
* A sync of the whole system (``sync``, ``syncfs``) makes everything before it durable.

``Disk`` replays the events of a log in order; at any event ``k`` it can write out the tree a
restart after a power loss at that point might find: only what is durable (``rng=None``), or
that plus a random choice of the unsynced changes.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 512

OPEN, CLOSE, WRITE, TRUNC, SYNC_BEGIN, SYNC_END = 1, 2, 3, 4, 5, 6
MKDIR, RENAME, UNLINK, RMDIR, MMAP_SHARED_WRITE = 7, 8, 9, 10, 11
SYNC_ALL_BEGIN, SYNC_ALL_END, SYNC_RANGE, MSYNC, DUP, UNSUPPORTED = 12, 13, 14, 15, 16, 17
NAMES = {
    OPEN: "open", CLOSE: "close", WRITE: "write", TRUNC: "truncate", SYNC_BEGIN: "sync-begin",
    SYNC_END: "sync-end", MKDIR: "mkdir", RENAME: "rename", UNLINK: "unlink", RMDIR: "rmdir",
    MMAP_SHARED_WRITE: "mmap-shared-write", SYNC_ALL_BEGIN: "sync-all-begin",
    SYNC_ALL_END: "sync-all-end", SYNC_RANGE: "sync_file_range", MSYNC: "msync", DUP: "dup",
    UNSUPPORTED: "unsupported",
}
_HEAD = struct.Struct("<IiIIqqQIIQ")  # struct rec in writelog.c
_O_CREAT, _O_TRUNC, _O_APPEND = os.O_CREAT, os.O_TRUNC, os.O_APPEND


class ReplayError(Exception):
    """The log does not describe a run this model can replay (a missed call, an unmodelled one)."""


@dataclass
class Event:
    index: int
    type: int
    fd: int
    flags: int
    tid: int
    a: int
    b: int
    ino: int
    path1: str
    path2: str
    data: bytes

    def __str__(self) -> str:
        what = NAMES.get(self.type, str(self.type))
        paths = " -> ".join(p for p in (self.path1, self.path2) if p)
        return f"#{self.index} {what} fd={self.fd} a={self.a} len={len(self.data)} {paths}".rstrip()


def read_log(path: Path) -> list[Event]:
    raw = path.read_bytes()
    events: list[Event] = []
    at = 0
    while at < len(raw):
        if at + _HEAD.size > len(raw):
            raise ReplayError(f"{path}: truncated record at byte {at}")
        kind, fd, flags, tid, a, b, ino, len1, len2, len_data = _HEAD.unpack_from(raw, at)
        at += _HEAD.size
        p1 = raw[at : at + len1].decode()
        at += len1
        p2 = raw[at : at + len2].decode()
        at += len2
        data = raw[at : at + len_data]
        at += len_data
        events.append(Event(len(events), kind, fd, flags, tid, a, b, ino, p1, p2, data))
    return events


@dataclass(eq=False)
class File:
    ino: int
    cur: bytearray = field(default_factory=bytearray)  # what a reader sees now
    dur: bytearray = field(default_factory=bytearray)  # the durable sectors (may pass dur_size)
    dur_size: int = 0  # the durable size
    pending: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)  # sector -> versions
    pending_sizes: list[tuple[int, int]] = field(default_factory=list)  # (event, size)
    _durable_image: bytes | None = None  # image(None), kept until the file changes

    def write(self, index: int, offset: int, data: bytes, synced: bool) -> None:
        self._durable_image = None
        end = offset + len(data)
        old_size = len(self.cur)
        if end > old_size:
            self.cur.extend(bytes(end - old_size))
        self.cur[offset:end] = data
        for sector in range(offset // SECTOR, (end + SECTOR - 1) // SECTOR):
            version = bytes(self.cur[sector * SECTOR : (sector + 1) * SECTOR])
            if synced:  # O_DSYNC: this write, and so its sectors as they are now, is on disk
                self.pending.pop(sector, None)
                self._put_durable(sector, version)
            else:
                self.pending.setdefault(sector, []).append((index, version))
        if end > old_size:
            if synced:  # O_DSYNC covers the size that reading the data back needs
                self.dur_size = max(self.dur_size, end)
            else:
                self.pending_sizes.append((index, end))

    def truncate(self, index: int, size: int) -> None:
        self._durable_image = None
        old = len(self.cur)
        if size < old:
            del self.cur[size:]
        else:
            self.cur.extend(bytes(size - old))
        # The cut sectors read back as zeros if the file grows again over them.
        for sector in range(size // SECTOR, (old + SECTOR - 1) // SECTOR):
            version = bytes(self.cur[sector * SECTOR : (sector + 1) * SECTOR]).ljust(SECTOR, b"\0")
            self.pending.setdefault(sector, []).append((index, version))
        self.pending_sizes.append((index, size))

    def _put_durable(self, sector: int, version: bytes) -> None:
        start = sector * SECTOR
        if len(self.dur) < start + SECTOR:
            self.dur.extend(bytes(start + SECTOR - len(self.dur)))
        self.dur[start : start + SECTOR] = version

    def sync(self, before: int) -> None:
        """An fsync that began at event ``before`` returned: what was written before is durable."""
        self._durable_image = None
        for sector in list(self.pending):
            versions = self.pending[sector]
            done = 0
            while done < len(versions) and versions[done][0] < before:
                done += 1
            if not done:
                continue
            self._put_durable(sector, versions[done - 1][1])
            if done < len(versions):
                self.pending[sector] = versions[done:]
            else:
                del self.pending[sector]
        done = 0
        while done < len(self.pending_sizes) and self.pending_sizes[done][0] < before:
            done += 1
        if done:
            self.dur_size = self.pending_sizes[done - 1][1]
            del self.pending_sizes[:done]

    def image(self, rng: random.Random | None) -> bytes:
        """The file's bytes after a power loss: durable only, or with a random choice of the
        unsynced sector versions and sizes."""
        if rng is None or not (self.pending or self.pending_sizes):
            if self._durable_image is None:
                self._durable_image = bytes(self.dur[: self.dur_size]).ljust(self.dur_size, b"\0")
            return self._durable_image
        size = self.dur_size
        buf = bytearray(self.dur)
        if rng is not None:
            size = rng.choice([size, *(s for _, s in self.pending_sizes)])
            for sector, versions in self.pending.items():
                pick = rng.randrange(len(versions) + 1)
                if pick:
                    start = sector * SECTOR
                    if len(buf) < start + SECTOR:
                        buf.extend(bytes(start + SECTOR - len(buf)))
                    buf[start : start + SECTOR] = versions[pick - 1][1]
        if len(buf) < size:
            buf.extend(bytes(size - len(buf)))
        return bytes(buf[:size])


@dataclass(eq=False)
class Dir:
    ino: int
    cur: dict[str, File | Dir] = field(default_factory=dict)
    dur: dict[str, File | Dir] = field(default_factory=dict)
    pending: list[tuple[int, tuple]] = field(default_factory=list)  # (event, change)

    def change(self, index: int, op: tuple) -> None:
        _apply(self.cur, op)
        self.pending.append((index, op))

    def sync(self, before: int) -> None:
        done = [p for p in self.pending if p[0] < before]
        for _, op in done:
            _apply(self.dur, op)
        self.pending = self.pending[len(done) :]

    def entries(self, rng: random.Random | None) -> dict[str, File | Dir]:
        if rng is None or not self.pending:
            return self.dur
        entries = dict(self.dur)
        for _, op in self.pending[: rng.randrange(len(self.pending) + 1)]:
            _apply(entries, op)
        return entries


def _apply(entries: dict[str, File | Dir], op: tuple) -> None:
    kind = op[0]
    if kind == "link":
        entries[op[1]] = op[2]
    elif kind == "unlink":
        entries.pop(op[1], None)
    elif kind == "rename":
        node = entries.pop(op[1], None)
        if node is None:
            raise ReplayError(f"rename of {op[1]!r}, which this directory does not hold")
        entries[op[2]] = node
    else:
        raise AssertionError(op)


class Disk:
    """The watched tree under ``root``, replayed event by event."""

    def __init__(self, root: Path) -> None:
        self.root_path = str(root)
        self.root = self._scan(root)
        self.fds: dict[int, File | Dir] = {}
        self.syncing: dict[int, tuple[int, File | Dir | None]] = {}  # sync id -> (begin, node)
        self.nodes: list[File | Dir] = []
        self._collect(self.root)
        self.position = 0  # events replayed so far

    def _scan(self, path: Path) -> Dir:
        """The tree as it is before the run: all of it durable."""
        node = Dir(path.stat().st_ino)
        for child in sorted(path.iterdir()):
            if child.is_dir() and not child.is_symlink():
                sub: File | Dir = self._scan(child)
            else:
                data = child.read_bytes()
                sub = File(child.stat().st_ino, bytearray(data), bytearray(data), len(data))
            node.cur[child.name] = node.dur[child.name] = sub
        return node

    def _collect(self, node: File | Dir) -> None:
        self.nodes.append(node)
        if isinstance(node, Dir):
            for child in node.cur.values():
                self._collect(child)

    def _split(self, path: str) -> tuple[Dir, str]:
        """The directory (in the current tree) holding ``path``, and its last component."""
        if not (path == self.root_path or path.startswith(self.root_path + "/")):
            raise ReplayError(f"{path}: outside the watched root {self.root_path}")
        parts = path[len(self.root_path) :].strip("/").split("/")
        node: File | Dir = self.root
        for part in parts[:-1]:
            if not isinstance(node, Dir) or part not in node.cur:
                raise ReplayError(f"{path}: no directory {part!r} in the replayed tree")
            node = node.cur[part]
        if not isinstance(node, Dir):
            raise ReplayError(f"{path}: its parent is not a directory in the replayed tree")
        return node, parts[-1]

    def _lookup(self, path: str) -> File | Dir | None:
        if path == self.root_path:
            return self.root
        parent, name = self._split(path)
        return parent.cur.get(name)

    def replay(self, events: list[Event], upto: int) -> None:
        """Apply events ``[position, upto)``."""
        for event in events[self.position : upto]:
            try:
                self._event(event)
            except ReplayError as exc:
                raise ReplayError(f"event {event}: {exc}") from None
        self.position = max(self.position, upto)

    def _event(self, e: Event) -> None:
        t = e.type
        if t == WRITE:
            node = self.fds.get(e.fd)
            if not isinstance(node, File):
                raise ReplayError("a write to a descriptor that holds no watched file")
            node.write(e.index, e.a, e.data, bool(e.flags & 1))
        elif t == OPEN:
            self._open(e)
        elif t == CLOSE:
            self.fds.pop(e.fd, None)
        elif t == SYNC_BEGIN:
            self.syncing[e.a] = (e.index, self.fds.get(e.fd))
        elif t == SYNC_END:
            begin, node = self.syncing.pop(e.a)
            if node is None:
                raise ReplayError("a sync of a descriptor that holds no watched file")
            node.sync(begin)
        elif t == SYNC_ALL_BEGIN:
            self.syncing[e.a] = (e.index, None)
        elif t == SYNC_ALL_END:
            begin, _ = self.syncing.pop(e.a)
            for node in self.nodes:
                node.sync(begin)
        elif t == TRUNC:
            node = self.fds.get(e.fd) if e.fd >= 0 else self._lookup(e.path1)
            if not isinstance(node, File):
                raise ReplayError("a truncation of something that is no watched file")
            node.truncate(e.index, e.a)
        elif t == MKDIR:
            parent, name = self._split(e.path1)
            if name in parent.cur:
                raise ReplayError("mkdir of a name the replayed tree already holds")
            node = Dir(e.ino)
            self.nodes.append(node)
            parent.change(e.index, ("link", name, node))
        elif t == RENAME:
            src, old = self._split(e.path1)
            dst, new = self._split(e.path2)
            if src is not dst:
                raise ReplayError("a rename across directories (not modelled)")
            if old not in src.cur:
                raise ReplayError("rename of a name the replayed tree does not hold")
            src.change(e.index, ("rename", old, new))
        elif t in (UNLINK, RMDIR):
            parent, name = self._split(e.path1)
            if name not in parent.cur:
                raise ReplayError("removal of a name the replayed tree does not hold")
            parent.change(e.index, ("unlink", name))
        elif t == DUP:
            if e.fd in self.fds:
                self.fds[e.a] = self.fds[e.fd]
        elif t == MMAP_SHARED_WRITE:
            if not e.path1.endswith("/lock.mdb"):  # LMDB's lock file is rebuilt on open
                raise ReplayError("a shared writable mapping: its writes are invisible to the log")
        elif t == UNSUPPORTED:
            raise ReplayError(f"{e.path1}: a call this model does not replay")
        elif t not in (SYNC_RANGE, MSYNC):
            raise ReplayError("unknown event type")

    def _open(self, e: Event) -> None:
        node = self._lookup(e.path1)
        existed = bool(e.a)
        if node is None:
            if existed or not e.flags & _O_CREAT:
                raise ReplayError("opened a file the replayed tree does not hold (a missed call?)")
            parent, name = self._split(e.path1)
            node = File(e.ino)
            self.nodes.append(node)
            parent.change(e.index, ("link", name, node))
        else:
            if not existed:
                raise ReplayError("created a file the replayed tree already holds (a missed call?)")
            if node.ino != e.ino:
                raise ReplayError(
                    f"inode {e.ino} where the replayed tree has {node.ino} (a missed call?)"
                )
            if isinstance(node, File) and e.flags & _O_TRUNC and node.cur:
                node.truncate(e.index, 0)
        if isinstance(node, File) and e.flags & _O_APPEND:
            raise ReplayError("O_APPEND writes are not modelled")
        self.fds[e.fd] = node

    def materialize(self, dest: Path, rng: random.Random | None, skip: frozenset[str] = frozenset()) -> None:
        """Write the tree a restart would find after a power loss now into ``dest`` (created).
        ``skip``: names directly under the root to leave out (the test's own bookkeeping)."""
        dest.mkdir(parents=True)
        self._write_dir(self.root, str(dest), rng, skip)

    def _write_dir(self, node: Dir, dest: str, rng: random.Random | None, skip: frozenset[str]) -> None:
        for name, child in node.entries(rng).items():
            if name in skip:
                continue
            path = f"{dest}/{name}"
            if isinstance(child, Dir):
                os.mkdir(path)
                self._write_dir(child, path, rng, frozenset())
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    view = memoryview(child.image(rng))
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
