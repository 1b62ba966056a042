"""Uniform sampling over the retained history, with a bounded cache of decoded records."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from learners.cache.errors import CacheCorruptError, CacheError, NoSuchRecordError
from learners.cache.log import SegmentedLog

log = logging.getLogger(__name__)

_MAX_REDRAWS = 64


class DecodedCache:
    """LRU of decoded records by offset, holding at most ``max_bytes`` (approximately)."""

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int]) -> None:
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[int, tuple[Any, int]] = OrderedDict()

    def get(self, offset: int, load: Callable[[int], Any]) -> Any:
        item = self._items.get(offset)
        if item is not None:
            self._items.move_to_end(offset)
            self.hits += 1
            return item[0]
        self.misses += 1
        value = load(offset)
        size = self.size_of(value)
        if size <= self.max_bytes:
            self._items[offset] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped
        return value

    def __len__(self) -> int:
        return len(self._items)


class UniformSampler:
    """Draws records uniformly from every visible record the log retains.

    Corrupt records are remembered, logged once, and replaced by another draw; they are never
    returned. A segment not yet opened counts all of ``[base, end)``; if opening finds it
    damaged, draws of its lost records are redrawn and its count shrinks to what was salvaged.
    """

    def __init__(self, log_: SegmentedLog, load: Callable[[int], Any], decoded: DecodedCache):
        self._log = log_
        self._load = load
        self.decoded = decoded
        self.corrupt: set[int] = set()

    def sample_offsets(self, n: int, rng: np.random.Generator) -> np.ndarray:
        visible = self._log.visible_offset
        segments = self._log.segments()
        counts = np.array([s.count(visible) for s in segments], dtype=np.int64)
        total = int(counts.sum())
        if total == 0:
            raise CacheError(f"{self._log.directory}: no records to sample")
        draws = rng.integers(0, total, size=n)
        ends = np.cumsum(counts)
        which = np.searchsorted(ends, draws, side="right")
        local = draws - (ends[which] - counts[which])
        return np.array(
            [segments[w].offset_at(int(i)) for w, i in zip(which, local)],
            dtype=np.int64,
        )

    def sample(self, n: int, rng: np.random.Generator) -> list[Any]:
        out: list[Any] = []
        redraws = 0
        offsets = list(self.sample_offsets(n, rng))
        while offsets:
            offset = int(offsets.pop())
            if offset not in self.corrupt:
                try:
                    out.append(self.decoded.get(offset, self._load))
                    continue
                except CacheCorruptError as exc:
                    self.corrupt.add(offset)
                    log.warning("sampling skips a corrupt record: %s", exc)
                except NoSuchRecordError:  # removed by retention since the draw
                    pass
            redraws += 1
            if redraws > _MAX_REDRAWS + n:
                raise CacheError(f"{self._log.directory}: too many unreadable records to sample")
            offsets.extend(int(o) for o in self.sample_offsets(1, rng))
        out.reverse()
        return out
