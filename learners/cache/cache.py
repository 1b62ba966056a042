"""``ReplayCache``: where every transition lands first, durable, readable and reusable."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from learners.cache.batch import TransitionBatch, batch_span, decode_batch, encode_batch
from learners.cache.codec import EncodeError
from learners.cache.config import CacheConfig
from learners.cache.consumer import Consumer, registered_consumers
from learners.cache.errors import CacheCorruptError, CacheFullError
from learners.cache.format import KIND_BATCH, KIND_BYTES, KIND_TRANSITION
from learners.cache.log import SegmentedLog
from learners.cache.records import (
    decode_transition,
    encode_transition,
    record_head,
    transition_nbytes,
)
from learners.cache.retention import RetentionResult, apply_retention
from learners.cache.sampler import DecodedCache, UniformSampler
from learners.transition import Transition

log = logging.getLogger(__name__)

Record = Transition | TransitionBatch | bytes


def record_span(kind: int, payload: bytes, where: str = "record") -> tuple[str, int, int] | None:
    """``(actor_id, first_seq, last_seq)`` of a transition or batch record (decoding only its
    head); None for opaque bytes."""
    if kind == KIND_BATCH:
        return batch_span(payload, where)
    if kind == KIND_TRANSITION:
        actor_id, seq, _, _ = record_head(payload, where)
        return actor_id, seq, seq
    return None


@dataclass
class Episode:
    """The transitions of one actor's episode, in order. ``complete`` once one ended it and none is
    missing between its first and its last (their sequence numbers run on without a gap)."""

    actor_id: str
    episode: int
    transitions: list[Transition]
    complete: bool


def _gapless(steps: list[Transition], path: Path) -> bool:
    """Whether the sequence numbers of one episode's ``steps`` run on without a gap."""
    seqs = [t.seq for t in steps]
    if any(not isinstance(q, int) for q in seqs):
        return True  # unnumbered transitions: nothing to tell a gap by
    missing = [(a, b) for a, b in pairwise(seqs) if b != a + 1]
    if missing:
        log.warning("%s: episode %d of %s has transitions missing (after seq %s); taken as incomplete",
                    path, steps[0].episode, steps[0].actor_id, ", ".join(str(a) for a, _ in missing[:5]))
    return not missing


@dataclass
class CacheStats:
    segments: int
    records: int
    bytes: int
    first_offset: int
    durable_offset: int
    oldest_segment_time: float | None = None  # when the oldest kept segment was sealed (or written)


class ReplayCache:
    """A persistent, crash-safe replay cache in ``path`` (see ``docs/cache.md``), stored as a
    run of LMDB environments (segments).

    ``append`` takes a :class:`Transition` (encoded as a schema-versioned msgpack record) or
    opaque ``bytes`` and returns the record's offset (0, 1, 2...: record numbers) at once; the
    record becomes durable at the next group commit, which ``wait_durable(offset)`` waits for.
    Acknowledge a transition to its actor only after that. Readers (``read``, consumers,
    ``sample``, the iterators) see committed records only, verify every checksum, and never
    return a corrupt record. One process may open a cache for writing; others may open it with
    ``read_only=True`` (they see the records committed when they opened it).
    """

    def __init__(self, path: str | os.PathLike[str], config: CacheConfig | None = None) -> None:
        self.config = config or CacheConfig()
        self.path = Path(path)
        self.log = SegmentedLog(self.path, self.config)
        decoded = DecodedCache(self.config.read_cache_bytes, _size_of)
        self._sampler = UniformSampler(self.log, self.read, decoded)

    def __enter__(self) -> ReplayCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplayCache({str(self.path)!r}, durable_offset={self.durable_offset})"

    # ------------------------------------------------------------------ writing

    def encode(self, record: Record) -> tuple[int, bytes]:
        """``(kind, payload)`` for a transition or opaque bytes."""
        if isinstance(record, Transition):
            payload = encode_transition(
                record,
                image_codec=self.config.image_codec,
                png_level=self.config.png_compress_level,
            )
            return KIND_TRANSITION, payload
        if isinstance(record, (bytes, bytearray, memoryview)):
            return KIND_BYTES, record
        raise EncodeError(f"cannot append a {type(record).__name__}: expected Transition or bytes")

    def append(self, record: Record) -> int:
        """Accept a record and return its offset; it is durable once ``wait_durable`` says so.

        Raises :class:`RecordTooLargeError` (nothing written) and :class:`CacheFullError` while
        the OS refuses writes.
        """
        if type(record) is bytes:
            return self.log.append(record)
        kind, payload = self.encode(record)
        return self.log.append(payload, kind)

    def check_record_size(self, n: int) -> None:
        """Raise ``RecordTooLargeError`` if a record of ``n`` bytes could not be appended (for a
        writer that appends later, e.g. an actor spool writing behind its link)."""
        self.log.check_size(n)

    def append_batch(self, payload: bytes | memoryview, owned: bool = False) -> int:
        """Append an encoded batch record (``learners.cache.batch.encode_batch``) as it is and
        return its offset; raises as ``append`` does. ``owned``: ``payload`` is a buffer no one
        writes to again (a received ZeroMQ frame), kept as it is until written, not copied."""
        return self.log.append(payload, KIND_BATCH, owned)

    @property
    def write_error(self) -> CacheFullError | None:
        """While the OS refuses this cache's writes (disk full, quota, file size limit): why, as
        appends raise meanwhile; None while writes succeed (accepted records are kept and retried)."""
        return self.log.write_error

    def append_many(self, records: Iterable[Record]) -> list[int]:
        """Append several records; the same as ``append`` on each, with one lock round trip."""
        encoded = [self.encode(r) for r in records]
        offsets: list[int] = []
        start = 0
        for i in range(1, len(encoded) + 1):  # one log call per run of the same kind
            if i == len(encoded) or encoded[i][0] != encoded[start][0]:
                kind = encoded[start][0]
                offsets += self.log.append_many([p for _, p in encoded[start:i]], kind)
                start = i
        return offsets

    def wait_durable(self, offset: int, timeout: float | None = None) -> bool:
        """True once the record at ``offset`` is durable; False if ``timeout`` passes first."""
        return self.log.wait_durable(offset, timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Commit everything appended so far now, and wait until it is durable."""
        return self.log.flush(timeout)

    @property
    def durable_offset(self) -> int:
        """Every record at an offset below this is durable."""
        return self.log.durable_offset

    # ------------------------------------------------------------------ reading

    def read(self, offset: int) -> Record:
        """The record at ``offset``: a :class:`Transition`, a :class:`TransitionBatch` (an
        actor's batch, as the learner stores them), or ``bytes`` if appended as bytes.

        Raises :class:`CacheCorruptError` if it fails its checksum, :class:`NoSuchRecordError`
        if no durable record starts there, :class:`SchemaVersionError` if a newer rill wrote it.
        """
        kind, payload = self.log.read(offset)
        if kind == KIND_TRANSITION:
            return decode_transition(
                payload, max_size=self.config.max_record_bytes, where=f"record at offset {offset}"
            )
        if kind == KIND_BATCH:
            return decode_batch(
                payload, max_size=self.config.max_record_bytes, where=f"record at offset {offset}"
            )
        return payload

    def read_span(self, offset: int) -> tuple[str, int, int] | None:
        """``(actor_id, first_seq, last_seq)`` of the transition or batch at ``offset`` (its head
        only); None for opaque bytes."""
        kind, payload = self.log.read(offset)
        return record_span(kind, payload, f"record at offset {offset}")

    def read_raw(self, offset: int) -> bytes:
        """The stored payload bytes at ``offset`` (checksum verified), undecoded."""
        return self.log.read(offset)[1]

    def read_batch_bytes(self, offset: int) -> bytes:
        """The transitions at ``offset`` as batch bytes: a batch record as stored, a
        single-transition record (what an actor of protocol version 1 spooled) re-encoded as a
        batch of one."""
        kind, payload = self.log.read(offset)
        if kind == KIND_TRANSITION:
            where = f"record at offset {offset}"
            t = decode_transition(payload, max_size=self.config.max_record_bytes, where=where)
            return encode_batch([t])
        return payload

    def offsets(self, start: int = 0) -> Iterator[int]:
        """Offsets of the durable records from ``start`` on, in order."""
        return self.log.offsets(start)

    def iter_records(self, start: int = 0, *, raw: bool = False) -> Iterator[tuple[int, Any]]:
        """``(offset, record)`` for every durable record from ``start``; corrupt ones are logged
        and skipped."""
        reader = self.read_raw if raw else self.read
        for offset in self.log.offsets(start):
            try:
                yield offset, reader(offset)
            except CacheCorruptError as exc:
                log.warning("skipping a corrupt record: %s", exc)

    def iter_transitions(
        self, actor_id: str | None = None, episode: int | None = None
    ) -> Iterator[tuple[int, Transition]]:
        """Transitions in offset order (a batch record's in seq order), optionally of one actor
        and/or episode. Only the record head is decoded to filter, so skipping is cheap."""
        for offset in self.log.offsets():
            try:
                kind, payload = self.log.read(offset)
            except CacheCorruptError as exc:
                log.warning("skipping a corrupt record: %s", exc)
                continue
            where = f"record at offset {offset}"
            if kind == KIND_BATCH:
                if actor_id is not None and batch_span(payload, where)[0] != actor_id:
                    continue
                batch = decode_batch(payload, max_size=self.config.max_record_bytes, where=where)
                for t in batch:
                    if episode is None or t.episode == episode:
                        yield offset, t
                continue
            if kind != KIND_TRANSITION:
                continue
            if actor_id is not None or episode is not None:
                actor, _seq, ep, _step = record_head(payload, where)
                if (actor_id is not None and actor != actor_id) or (
                    episode is not None and ep != episode
                ):
                    continue
            yield (
                offset,
                decode_transition(payload, max_size=self.config.max_record_bytes, where=where),
            )

    def iter_episodes(self, actor_id: str | None = None) -> Iterator[Episode]:
        """Whole episodes, each yielded when its last transition (terminated or truncated) is
        read; episodes still open at the end of the log follow with ``complete=False``, and so does
        an episode with a transition missing inside it (a record lost to corruption: its
        neighbours' sequence numbers do not run on), logged with the numbers missing."""
        open_episodes: dict[tuple[str, int], list[Transition]] = {}
        for _offset, t in self.iter_transitions(actor_id=actor_id):
            key = (t.actor_id, t.episode)
            steps = open_episodes.setdefault(key, [])
            steps.append(t)
            if t.done:
                steps = open_episodes.pop(key)
                yield Episode(t.actor_id, t.episode, steps, _gapless(steps, self.path))
        for (actor, episode), steps in open_episodes.items():
            yield Episode(actor, episode, steps, False)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> list[Record]:
        """``n`` records drawn uniformly (with replacement) from the retained durable history.

        A drawn batch record gives one of its transitions, drawn uniformly: draws are uniform
        over records, so a transition of a small batch is likelier than one of a large batch.
        Recently decoded records are kept in memory up to ``config.read_cache_bytes``.
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        out = self._sampler.sample(n, rng)
        for i, record in enumerate(out):
            if isinstance(record, TransitionBatch):
                out[i] = record.transition(int(rng.integers(record.count)))
        return out

    @property
    def decoded_cache(self) -> DecodedCache:
        return self._sampler.decoded

    # ------------------------------------------------------------------ consumers and retention

    def consumer(self, name: str) -> Consumer:
        """The named consumer, registered (at the start of the log) if it is new."""
        return Consumer(self, name)

    def consumers(self) -> dict[str, int]:
        """Every registered consumer and its committed position."""
        return registered_consumers(self.path)

    def apply_retention(
        self, force: bool = False, *, consumers: dict[str, int] | None = None
    ) -> RetentionResult:
        """Delete sealed segments past ``retention_bytes`` / ``retention_age_s``, oldest first,
        never one a registered consumer has not passed unless ``force``. ``consumers`` (name ->
        position) replaces the committed positions, e.g. to keep a consumer's last record."""
        positions = self.consumers() if consumers is None else consumers
        return apply_retention(self.log, self.config, positions, force=force)

    def stats(self) -> CacheStats:
        segments = self.log.segments()
        visible = self.log.visible_offset
        return CacheStats(
            segments=len(segments),
            records=sum(s.count(visible) for s in segments),
            bytes=sum(s.size() for s in segments),
            first_offset=segments[0].base if segments else 0,
            durable_offset=self.durable_offset,
            oldest_segment_time=(segments[0].sealed_at or segments[0].path.stat().st_mtime)
            if segments else None,
        )

    def close(self) -> None:
        """Make everything appended durable (per ``durability``) and release the directory."""
        self.log.close()


def _size_of(record: Any) -> int:
    if isinstance(record, Transition):
        return transition_nbytes(record)
    if isinstance(record, TransitionBatch):
        return record.nbytes()
    return len(record) + 64


__all__ = ["CacheStats", "Episode", "Record", "ReplayCache", "record_span"]
