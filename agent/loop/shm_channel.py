"""The channel between a control loop's process and its policy's process: length-prefixed msgpack
headers over a stream socket, and each side's arrays in a shared-memory ``Arena`` of its own.

An arena is a file in ``/dev/shm`` mapped by both processes. The writer lays a message's arrays out
in it and sends their layout in the header; the reader copies them out. The reader removes the
file as soon as it has mapped it, so nothing is left in ``/dev/shm`` when either process is killed;
its space is reserved when it is made, so a full ``/dev/shm`` is an error here, not a ``SIGBUS``
later. Only arrays of plain numbers and msgpack scalars cross: nothing is pickled.
"""

from __future__ import annotations

import math
import mmap
import os
import socket
import struct
import uuid
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

ARENA_BYTES = 4 << 20  # grown (a new arena) when a message's arrays need more
MAX_HEADER = 64 << 20
_KINDS = "biuf"  # array dtypes that cross: bool, signed, unsigned, float
_LEN = struct.Struct(">I")


class PolicyProcessError(RuntimeError):
    """The policy process failed to answer (its exception, its death, its silence)."""


class ChannelBroken(PolicyProcessError):
    """The channel between the processes cannot be read on."""


class Arena:
    """A file in shared memory, mapped, that carries one message's arrays at a time. The writer
    lays them out (``put``) and sends the layout; the reader copies them out (``get``)."""

    def __init__(self, path: Path, size: int, create: bool) -> None:
        self.path, self.size = Path(path), size
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if create:
                try:
                    os.posix_fallocate(fd, 0, size)
                except OSError as e:
                    os.close(fd)
                    fd = -1
                    self.path.unlink(missing_ok=True)
                    raise PolicyProcessError(f"shared-memory arena {self.path} ({size} bytes): "
                                             f"{e.strerror or e} (is {self.path.parent} full?)") from None
            else:
                self.size = size = os.fstat(fd).st_size
            self.map = mmap.mmap(fd, size)
        finally:
            if fd >= 0:
                os.close(fd)

    @classmethod
    def create(cls, size: int) -> Arena:
        root = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
        return cls(root / f"rill-policy-{os.getpid()}-{uuid.uuid4().hex[:8]}", size, create=True)

    def put(self, arrays: dict[str, np.ndarray]) -> list[list] | None:
        """Write ``arrays``; their layout, or None when they do not fit (the caller grows)."""
        layout, offset = [], 0
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            offset = (offset + 63) & ~63
            if offset + array.nbytes > self.size:
                return None
            self.map[offset : offset + array.nbytes] = array.tobytes() if array.nbytes else b""
            layout.append([name, array.dtype.str, list(array.shape), offset])
            offset += array.nbytes
        return layout

    def get(self, layout: Any) -> dict[str, np.ndarray]:
        """The arrays ``layout`` names, copied out; a layout that does not fit the arena is refused."""
        out = {}
        if not isinstance(layout, list):
            raise PolicyProcessError(f"array layout must be a list, got {type(layout).__name__}")
        for entry in layout:
            try:
                name, dtype, shape, offset = entry
                dtype, shape = np.dtype(dtype), tuple(int(d) for d in shape)
            except (TypeError, ValueError) as e:
                raise PolicyProcessError(f"bad array layout entry {entry!r}: {e}") from None
            if dtype.kind not in _KINDS or any(d < 0 for d in shape):
                raise PolicyProcessError(f"array {name!r}: dtype {dtype} / shape {shape} cannot cross")
            nbytes = dtype.itemsize * math.prod(shape)
            if not 0 <= offset <= self.size - nbytes:
                raise PolicyProcessError(f"array {name!r}: {nbytes} bytes at {offset} outside the arena")
            out[name] = np.frombuffer(self.map, dtype, math.prod(shape), offset).reshape(shape).copy()
        return out

    def close(self, unlink: bool = False) -> None:
        self.map.close()
        if unlink:
            self.path.unlink(missing_ok=True)


class Channel:
    """Length-prefixed msgpack messages over a stream socket, with this side's arena for arrays."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.arena: Arena | None = None
        self.peer: Arena | None = None

    def send(self, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        if arrays:
            if self.arena is None:
                self.arena = Arena.create(ARENA_BYTES)
            layout = self.arena.put(arrays)
            if layout is None:  # too big for this arena: a larger one, named in the header
                need = sum(a.nbytes + 64 for a in arrays.values())
                old = self.arena
                self.arena = Arena.create(max(2 * old.size, 2 * need))
                old.close(unlink=True)
                layout = self.arena.put(arrays)
            header = {**header, "arena": str(self.arena.path), "arrays": layout}
        body = msgpack.packb(header, use_bin_type=True)
        self.sock.sendall(_LEN.pack(len(body)) + body)

    def recv(self) -> tuple[dict, dict[str, np.ndarray]]:
        """One message; ``ChannelBroken`` when the stream cannot be read on (the caller gives the
        channel up: a message cut short leaves the next one unreadable)."""
        (size,) = _LEN.unpack(self._exact(_LEN.size))
        if size > MAX_HEADER:
            raise ChannelBroken(f"message of {size} bytes, over {MAX_HEADER}")
        try:
            header = msgpack.unpackb(self._exact(size), raw=False)
        except (ValueError, msgpack.UnpackException) as e:
            raise ChannelBroken(f"unreadable message: {e}") from None
        if not isinstance(header, dict):
            raise ChannelBroken(f"message is a {type(header).__name__}, not a map")
        arrays = {}
        if "arrays" in header:
            path = str(header.get("arena", ""))
            if self.peer is None or str(self.peer.path) != path:
                if self.peer is not None:
                    self.peer.close()
                try:
                    self.peer = Arena(Path(path), 0, create=False)
                except OSError as e:
                    raise ChannelBroken(f"arena {path}: {e.strerror or e}") from None
                self.peer.path.unlink(missing_ok=True)  # both have it mapped: no name left to leak
            arrays = self.peer.get(header["arrays"])
        return header, arrays

    def _exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            part = self.sock.recv(min(n - got, 1 << 20))
            if not part:
                raise EOFError("the other process closed the channel")
            chunks.append(part)
            got += len(part)
        return b"".join(chunks)

    def close(self, unlink_peer: bool = False) -> None:
        """Close both arenas (unlinking this side's, and the peer's when it cannot any more)."""
        for arena, unlink in ((self.arena, True), (self.peer, unlink_peer)):
            if arena is not None:
                arena.close(unlink=unlink)
        self.sock.close()


def split_values(values: dict[str, Any], where: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays to the arena, scalars and strings to the header; anything else is refused by name."""
    arrays, scalars = {}, {}
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in _KINDS:
                raise PolicyProcessError(f"{where} {key!r}: arrays of dtype {value.dtype} cannot cross")
            arrays[key] = value
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        elif value is None or isinstance(value, (bool, int, float, str)):
            scalars[key] = value
        else:
            raise PolicyProcessError(f"{where} {key!r}: a {type(value).__name__} cannot cross to the policy "
                                     "process (arrays, numbers, strings only)")
    return arrays, scalars
