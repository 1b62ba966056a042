"""The learner's record of applied transitions: one ``actor_id seq`` line per update, in order.

It is truncated back to the length stored in the checkpoint on restart, so that it always
matches the weights: updates made after the last checkpoint are lost with the crash and made
again from the cache, and appear once.
"""

from __future__ import annotations

import os
from pathlib import Path


class AppliedJournal:
    def __init__(self, path: Path, length: int = 0) -> None:
        self.path = Path(path)
        mode = "r+b" if self.path.exists() else "w+b"
        self._f = open(self.path, mode)  # noqa: SIM115  closed in close()
        self._f.truncate(length)
        self._f.seek(length)

    def record(self, actor_id: str, seq: int) -> None:
        self._f.write(f"{actor_id} {seq}\n".encode())

    def sync(self) -> int:
        """Flush and fsync; returns the journal length to store in a checkpoint."""
        self._f.flush()
        os.fsync(self._f.fileno())
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


def read_journal(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in Path(path).read_text().splitlines():
        actor, seq = line.rsplit(" ", 1)
        out.append((actor, int(seq)))
    return out
