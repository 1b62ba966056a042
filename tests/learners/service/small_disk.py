"""``SmallDisk``: a small, real file system for the disk-full tests, shared by the learner's and
the actor's (``from tests.learners.service.small_disk import SmallDisk``).

A size-limited tmpfs mounted on the given directory (the tests run as root), filled by a ballast
file until the kernel says ENOSPC and freed by deleting it. Where mounting is refused (a container
without CAP_SYS_ADMIN) the disk falls back to an injected ENOSPC: the cache's segment writes under
that directory raise ``OSError(ENOSPC)`` while it is "full" (``RILL_SMALL_DISK=injected`` forces
it, to check that path). ``kind`` says which one is in use; the tests print it.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from learners.cache.segment import Segment


class SmallDisk:
    """A small file system on ``path``: a size-limited tmpfs, or an injected ENOSPC."""

    def __init__(self, path: Path, monkeypatch, size_mb: int = 16) -> None:
        path.mkdir(parents=True)
        self.path, self.ballast, self.full = path, path / "ballast", False
        if os.environ.get("RILL_SMALL_DISK") == "injected":
            self.mounted, why = False, "RILL_SMALL_DISK=injected"
        else:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                                  capture_output=True, text=True)
            self.mounted, why = done.returncode == 0, f"mounting a tmpfs failed: {done.stderr.strip()}"
        self.kind = f"a {size_mb} MiB tmpfs" if self.mounted else f"an injected ENOSPC ({why})"
        if not self.mounted:
            put = Segment.put

            def failing_put(segment: Segment, items, estimate: int, limit: int) -> None:
                if self.full and segment.path.is_relative_to(self.path):  # (only caches on this disk)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(segment.data_path))
                put(segment, items, estimate, limit)

            monkeypatch.setattr(Segment, "put", failing_put)

    def fill(self) -> None:
        """Take every free byte (a ballast file written until the kernel says ENOSPC); again after
        something freed space, to take that too."""
        self.full = True
        if not self.mounted:
            return
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (bytes(1 << 16), bytes(4096)):
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.full = False
        if self.mounted:
            self.ballast.unlink()

    def close(self) -> None:
        if self.mounted and subprocess.run(["umount", str(self.path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)])


def small_disks(monkeypatch, what: str):
    """The body of a ``small_disk`` fixture: yields ``make(path, size_mb=16)``, which puts a
    ``SmallDisk`` on ``path`` and prints that ``what`` is on it; every disk is unmounted after."""
    disks: list[SmallDisk] = []

    def make(path: Path, size_mb: int = 16) -> SmallDisk:
        disks.append(SmallDisk(path, monkeypatch, size_mb))
        print(f"{what} is on {disks[-1].kind}")
        return disks[-1]

    yield make
    for disk in disks:
        disk.close()
