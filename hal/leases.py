"""Leases: a robot is driven by one worker at a time, and a dead holder's lease expires.

A lease is a small JSON file per resource under a lease directory shared by every process of one
host (default ``~/.rill/leases``; ``$RILL_HOME/leases`` when ``RILL_HOME`` is set). Taking,
renewing and releasing hold an ``fcntl`` lock on the resource's ``.lock`` file for the few
microseconds of a read-check-write, and the JSON is replaced by an atomic rename, so a reader in
another process (``rill hal list``) never sees half a lease and needs no lock.

A lease has a TTL in wall-clock seconds, renewed by the holder's heartbeat. If the holder dies,
nobody renews it and it expires, which frees the resource. A supervisor that has reaped a dead
holder (so knows it is dead) may ``break_lease`` at once instead of waiting for the TTL.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote

from hal.errors import LeaseError, LeaseHeldError, LeaseLostError

SUFFIX = ".lease.json"


def rill_home() -> Path:
    """``$RILL_HOME`` or ``~/.rill``: where this host keeps leases."""
    return Path(os.environ.get("RILL_HOME") or Path.home() / ".rill")


def default_lease_dir() -> Path:
    return rill_home() / "leases"


@dataclass(frozen=True)
class Lease:
    """Who holds ``resource`` and until when (wall-clock ``expires``). ``token`` tells renewals apart."""

    resource: str
    holder: str
    token: str
    ttl_s: float
    acquired: float
    expires: float
    host: str
    pid: int

    def remaining_s(self, now: float | None = None) -> float:
        return self.expires - (time.time() if now is None else now)

    def expired(self, now: float | None = None) -> bool:
        return self.remaining_s(now) <= 0

    def to_dict(self) -> dict:
        return asdict(self)


class LeaseStore:
    """The leases of one host, in ``directory``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_lease_dir()

    def _path(self, resource: str, suffix: str = SUFFIX) -> Path:
        if not resource:
            raise LeaseError("a lease needs a resource name")
        return self.directory / (quote(resource, safe="") + suffix)

    @contextmanager
    def _locked(self, resource: str) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(resource, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _write(self, lease: Lease) -> None:
        path = self._path(lease.resource)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(lease.to_dict()))
        os.replace(tmp, path)

    def read(self, resource: str) -> Lease | None:
        """The lease on ``resource`` as stored, expired or not; ``None`` if there is none."""
        try:
            data = json.loads(self._path(resource).read_text())
            return Lease(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as e:
            raise LeaseError(f"lease file {self._path(resource)} is unreadable: {e}") from e

    def holder(self, resource: str) -> Lease | None:
        """The lease on ``resource`` if it is held now (not expired), else ``None``."""
        lease = self.read(resource)
        return None if lease is None or lease.expired() else lease

    def acquire(
        self, resource: str, holder: str, ttl_s: float = 5.0, wait_s: float = 0.0, poll_s: float = 0.05
    ) -> Lease:
        """Take ``resource`` for ``holder`` for ``ttl_s`` seconds.

        Refused with ``LeaseHeldError`` while another holder's lease is live (after retrying for up
        to ``wait_s``). The same holder taking it again gets a fresh lease.
        """
        if ttl_s <= 0:
            raise LeaseError(f"lease ttl_s must be > 0, got {ttl_s!r}")
        deadline = time.monotonic() + wait_s
        while True:
            with self._locked(resource):
                now = time.time()
                current = self.read(resource)
                if current is None or current.expired(now) or current.holder == holder:
                    lease = Lease(
                        resource,
                        holder,
                        uuid.uuid4().hex,
                        float(ttl_s),
                        now,
                        now + ttl_s,
                        socket.gethostname(),
                        os.getpid(),
                    )
                    self._write(lease)
                    return lease
            if time.monotonic() >= deadline:
                raise LeaseHeldError(resource, current.holder, current.remaining_s())
            time.sleep(poll_s)

    def renew(self, lease: Lease) -> Lease:
        """Extend ``lease`` by its TTL from now; ``LeaseLostError`` if another holder took it."""
        with self._locked(lease.resource):
            current = self.read(lease.resource)
            if current is None or current.token != lease.token:
                taker = f"now held by {current.holder!r}" if current else "it was released or broken"
                raise LeaseLostError(f"lease on {lease.resource!r} of {lease.holder!r} is lost: {taker}")
            renewed = replace(current, expires=time.time() + current.ttl_s)
            self._write(renewed)
            return renewed

    def release(self, lease: Lease) -> bool:
        """Give ``lease`` back; ``False`` if it was no longer this holder's."""
        with self._locked(lease.resource):
            current = self.read(lease.resource)
            if current is None or current.token != lease.token:
                return False
            self._path(lease.resource).unlink(missing_ok=True)
            return True

    def break_lease(self, resource: str, holder: str | None = None) -> bool:
        """Free ``resource`` now, if ``holder`` (when given) holds it. Only for a holder known dead."""
        with self._locked(resource):
            current = self.read(resource)
            if current is None or (holder is not None and current.holder != holder):
                return False
            self._path(resource).unlink(missing_ok=True)
            return True

    def leases(self, include_expired: bool = False) -> list[Lease]:
        """Every lease in the directory (live ones only unless ``include_expired``), by resource."""
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            try:
                lease = self.read(unquote(path.name[: -len(SUFFIX)]))
            except LeaseError:
                continue
            if lease is not None and (include_expired or not lease.expired()):
                out.append(lease)
        return out
