"""Python's cyclic garbage collector and the clock.

A collection runs in whatever thread allocated last and holds the GIL throughout, so any thread's
collection stops the clock thread too. A young collection (generations 0 and 1) walks what was
made since the last one: microseconds, a millisecond or two after a burst of allocations. A full
one walks every tracked object in the process: a process that has loaded torch, MuJoCo and a VLA
holds about 395,000, and one full collection took 195 ms on the development machine, ten ticks
at 50 Hz. Full collections are rare (one comes once a quarter as many objects as the last one
left have survived two young ones), so a short benchmark may never see one and a robot that runs
for hours may.

``freeze_heap`` moves everything alive when the loop starts (the model, the robot, the imported
modules) into the collector's permanent generation (``gc.freeze``, constant time), which no
collection walks: a full collection while the loop runs walks only what the loop itself made and
kept. When the last loop running in the process stops (``thaw_heap``) they go back
(``gc.unfreeze``, constant time too), so whatever became garbage in cycles meanwhile (a robot
closed between episodes) is still collected: nothing is kept forever. ``CollectorWatch`` records
every collection's pause while the loop runs, for ``LoopStats``.
"""

from __future__ import annotations

import gc
import threading
import time

_lock = threading.Lock()
_holders = 0  # loops running with the heap frozen
_frozen_by_others = False  # the process had frozen objects itself (e.g. before a fork) when we froze


def freeze_heap() -> None:
    """Put every object alive now out of the collector's reach, until the matching ``thaw_heap``
    (the first of nested or concurrent callers freezes, the last to thaw unfreezes)."""
    global _holders, _frozen_by_others
    with _lock:
        if _holders == 0:
            _frozen_by_others = gc.get_freeze_count() > 0
            gc.freeze()
        _holders += 1


def thaw_heap() -> None:
    """Undo one ``freeze_heap``. ``gc.unfreeze`` releases every frozen object, so a heap the
    process had frozen itself before the loop started is left frozen, ours with it."""
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0 and not _frozen_by_others:
            gc.unfreeze()


class CollectorWatch:
    """Counts collections per generation and keeps the longest pause, from ``start`` to ``stop``
    (collections in any thread of the process)."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.longest_s = 0.0
        self._began = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        generation = int(info.get("generation", 2))
        self.collections[generation] += 1
        self.longest_s = max(self.longest_s, pause)

    def start(self) -> CollectorWatch:
        gc.callbacks.append(self._callback)
        return self

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
