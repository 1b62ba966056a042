"""A durable, append-only log of sequence numbers: what a worker has streamed, across restarts.

Each record is one line ``seq incarnation robot``, fsynced before the next number is taken. A
restarted worker reads the last complete line back and continues from the next number; a line
torn by ``kill -9`` is cut off first. So the numbers a run leaves behind are contiguous, each once.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_records(path: str | Path) -> list[tuple[int, int, str]]:
    """Every complete ``(seq, incarnation, robot)`` record in the log."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is incomplete
        seq, incarnation, robot = line.decode().split(" ", 2)
        out.append((int(seq), int(incarnation), robot))
    return out


class SequenceLog:
    """Appends ``seq`` records durably; ``next_seq`` continues after the last durable one."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        data = self.path.read_bytes() if self.path.exists() else b""
        keep = data.rfind(b"\n") + 1
        if keep != len(data):  # a torn last record from a killed writer
            with open(self.path, "r+b") as f:
                f.truncate(keep)
        records = read_records(self.path)
        self.next_seq = records[-1][0] + 1 if records else 0
        self._f = open(self.path, "ab")  # noqa: SIM115  kept open for the worker's life

    def append(self, incarnation: int, robot: str = "-") -> int:
        """Write the next record durably and return its sequence number."""
        seq = self.next_seq
        self._f.write(f"{seq} {incarnation} {robot or '-'}\n".encode())
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.next_seq += 1
        return seq

    def close(self) -> None:
        self._f.close()
