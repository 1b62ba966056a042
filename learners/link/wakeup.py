"""``Wakeup``: lets any thread wake a thread that waits in a ZeroMQ poller.

A non-blocking pipe: the waiting thread registers its ``fileno()`` with its ``zmq.Poller``
(which reports it by that number) and calls ``clear`` when it fires; other threads call
``set``. Setting costs one ``write``; a pipe already full means the waiter is awake anyway.
``close`` may race with ``set`` from another thread: both hold a lock, so a closed descriptor
number (possibly reused by then) is never written to.
"""

from __future__ import annotations

import os
import threading


class Wakeup:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def fileno(self) -> int:
        return self._r

    def set(self) -> None:
        with self._lock:
            if self._w >= 0:
                try:
                    os.write(self._w, b"\0")
                except BlockingIOError:  # a full pipe: the waiter is awake enough
                    pass

    def clear(self) -> None:
        with self._lock:
            if self._r >= 0:
                try:
                    os.read(self._r, 4096)
                except BlockingIOError:
                    pass

    def close(self) -> None:
        with self._lock:
            for fd in (self._r, self._w):
                if fd >= 0:
                    os.close(fd)
            self._r = self._w = -1
