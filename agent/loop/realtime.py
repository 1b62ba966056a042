"""Real-time scheduling for the clock thread: ``SCHED_FIFO`` at a priority, pinned to chosen CPUs.

On a loaded machine the operating system, not Python, is what makes a tick late: a learner, a
simulator's renderer or the policy's process may hold the core when the clock's sleep ends. A
``SCHED_FIFO`` thread runs as soon as it wakes, ahead of every ordinary thread; this is what
``ros2_control`` asks of its controller thread too. It needs ``CAP_SYS_NICE`` or an ``rtprio``
limit (``ulimit -r``, ``/etc/security/limits.conf``); where the system refuses, the loop runs on
with ordinary scheduling and says why.

Linux scheduling is per thread: :func:`enter` changes only the calling thread, and sets
``SCHED_RESET_ON_FORK`` so that no thread or process started from the clock inherits its priority
(they do inherit its CPU pinning, which :class:`CoreKeeper` undoes).

Pinning alone does not give the clock its core: it keeps the clock *on* its CPUs, not the rest
off them. So while a pinned loop runs, the other threads of its process leave the clock's CPUs
(:class:`CoreKeeper`: the inference thread, a ROS executor, the link's threads, and threads started
while the loop runs, the clock's own included; put back when the loop ends), and the policy
process starts off them (``PolicyProcess(avoid_cpus=...)``, which uses :func:`keep_off`). Other
processes on the machine (a learner, a simulator, a browser) are the operator's to keep off, with
the system's own tools (``taskset -c``, systemd's ``CPUAffinity=``, the kernel's ``isolcpus=``).
On a 2-core VM this did not lower the worst tick beside a busy learner: the machine itself took
the CPU away for up to 6 ms (``docs/design.md``, "The clock owns its core").
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The highest ``SCHED_FIFO`` priority a loop may take: 99 is left to the kernel's own threads.
MAX_PRIORITY = 98
#: CPU numbers a loop may name (the kernel's default ``CPU_SETSIZE``).
MAX_CPUS = 1024


@dataclass
class Scheduling:
    """How the calling thread was scheduled before :func:`enter`, so :func:`leave` can put it back."""

    policy: int
    priority: int
    cpus: set[int] | None
    applied: str  # what took effect: "SCHED_FIFO 50 on CPUs [1]"; "" if nothing
    refused: str  # why a part of the request did not take effect; "" if all did


def check_settings(priority: Any, cpus: Any, paced: bool, section: str, paced_setting: str) -> None:
    """Refuse, by name (``section.rt_priority``, ``section.cpus``), scheduling settings that cannot be
    applied, and real-time priority for a loop that is not paced (``paced_setting`` says how to pace)."""
    from hal.errors import ConfigError

    if type(priority) is not int or not 0 <= priority <= MAX_PRIORITY:
        raise ConfigError(f"{section}.rt_priority must be an integer from 0 (off) to {MAX_PRIORITY}, "
                          f"got {priority!r}")
    if not isinstance(cpus, list) or not all(type(c) is int and 0 <= c < MAX_CPUS for c in cpus):
        raise ConfigError(f"{section}.cpus must be a list of CPU numbers (0 to {MAX_CPUS - 1}), got {cpus!r}")
    if priority and not paced:
        raise ConfigError(f"{section}.rt_priority needs {paced_setting} (a loop ticking as fast as it can "
                          "under SCHED_FIFO would keep its CPU from everything else)")


def enter(priority: int, cpus: list[int]) -> Scheduling:
    """Give the calling thread ``SCHED_FIFO`` at ``priority`` (0: leave the policy) and pin it to
    ``cpus`` (empty: leave the affinity). Never raises for a refusal: it is logged and reported."""
    supported = hasattr(os, "sched_setscheduler") and hasattr(os, "sched_setaffinity")
    before = Scheduling(
        policy=os.sched_getscheduler(0) if supported else 0,
        priority=os.sched_getparam(0).sched_priority if supported else 0,
        cpus=set(os.sched_getaffinity(0)) if supported else None,
        applied="", refused="")
    if not priority and not cpus:
        return before
    if not supported:
        before.refused = "this system has no per-thread scheduling (Linux only)"
        log.warning("control loop: real-time scheduling not applied: %s", before.refused)
        return before
    applied, refused = [], []
    if priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
            applied.append(f"SCHED_FIFO {priority}")
        except PermissionError:
            refused.append(f"SCHED_FIFO {priority} refused: needs CAP_SYS_NICE or an rtprio limit of at "
                           f"least {priority} (ulimit -r; /etc/security/limits.conf)")
        except OSError as e:
            refused.append(f"SCHED_FIFO {priority} refused: {e.strerror or e}")
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
            applied.append(f"on CPUs {sorted(cpus)}")
        except (OSError, ValueError, OverflowError) as e:
            refused.append(f"CPUs {sorted(cpus)} refused: {getattr(e, 'strerror', None) or e} "
                           f"(this process may use {sorted(before.cpus or ())})")
    before.applied, before.refused = " ".join(applied), "; ".join(refused)
    if before.refused:
        log.warning("control loop: %s; ticking with ordinary scheduling", before.refused)
    return before


def keep_off(cpus: list[int] | tuple[int, ...], whole_process: bool = False) -> str:
    """Move the calling thread (``whole_process``: every thread of this process, those a library
    started at import too) off ``cpus``, the clock's: onto every other CPU it was allowed. Returns
    where it now runs (``"on CPUs [0]"``), or ``""`` when nothing was asked or possible (no other
    CPU allowed: it stays, logged)."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return ""
    allowed = set(os.sched_getaffinity(0))
    rest = allowed - set(cpus)
    if not rest:
        log.warning("cannot keep off the clock's CPUs %s: no other CPU is allowed (%s)", sorted(cpus),
                    sorted(allowed))
        return ""
    try:
        for thread in _threads() if whole_process else [0]:
            try:
                os.sched_setaffinity(thread, rest)
            except ProcessLookupError:  # it ended meanwhile
                pass
    except OSError as e:
        log.warning("cannot keep off the clock's CPUs %s: %s", sorted(cpus), e.strerror or e)
        return ""
    return f"on CPUs {sorted(rest)}"


@dataclass
class Moved:
    """What :func:`move_others_off` did, for :func:`put_back`: each moved thread's CPUs before, the
    threads running then, and the CPUs the calling thread had (this process's, as a rule)."""

    before: dict[int, set[int]]
    known: set[int]
    cpus: set[int]
    allowed: set[int]


def move_others_off(cpus: list[int] | tuple[int, ...]) -> Moved | None:
    """Move every other thread of this process off ``cpus`` (the calling thread, the clock, stays);
    returns what it did, for :func:`put_back` (None: nothing asked or possible). A thread that has
    no other CPU allowed stays where it is. Threads started later are :class:`CoreKeeper`'s."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return None
    me = threading.get_native_id()
    moved = Moved(before={}, known=set(_threads()), cpus=set(cpus), allowed=set(os.sched_getaffinity(0)))
    for tid in moved.known - {me}:
        try:
            before = set(os.sched_getaffinity(tid))
            rest = before - moved.cpus
            if rest and rest != before:
                os.sched_setaffinity(tid, rest)
                moved.before[tid] = before
        except OSError:  # ended meanwhile, or not ours to move: it stays
            continue
    return moved


def _threads() -> list[int]:
    """The native ids of this process's threads now running (Linux)."""
    return [int(t) for t in os.listdir("/proc/self/task")]


def put_back(moved: Moved | None) -> None:
    """Give the threads :func:`move_others_off` moved their CPUs back (those still running), and the
    threads started since, whose CPUs were inherited rather than chosen, the CPUs this process had."""
    if moved is None:
        return
    for tid, cpus in moved.before.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue
    inherited = (moved.allowed - moved.cpus, moved.cpus)  # from a moved thread; from the clock
    for tid in set(_threads()) - moved.known:
        try:
            if set(os.sched_getaffinity(tid)) in inherited:
                os.sched_setaffinity(tid, moved.allowed)
        except OSError:
            continue


class CoreKeeper:
    """Keeps the clock's CPUs the clock's while a pinned loop runs.

    :meth:`start`, on the clock's thread before it is pinned, moves every other thread of the
    process off ``cpus``. A thread keeps the CPUs of the thread that starts it, so a thread started
    on the clock (a checkpoint writer at an episode's end, a batcher's timer, a cache segment's
    sealer) would run on the clock's CPU: a sweeper thread, itself off those CPUs, looks for new
    threads every ``period_s`` and moves any on them to the others. :meth:`stop` puts every thread
    back (:func:`put_back`). Does nothing without ``cpus``, or where no other CPU is allowed."""

    def __init__(self, cpus: list[int] | tuple[int, ...], period_s: float = 0.1) -> None:
        self.cpus, self.period_s = set(cpus), period_s
        self.moved: Moved | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def start(self) -> CoreKeeper:
        self.moved = move_others_off(sorted(self.cpus))
        if self.moved is not None and self.moved.allowed - self.cpus:
            self._sweeper = threading.Thread(target=self._sweep, name="clock-core-keeper", daemon=True)
            self._sweeper.start()
        return self

    def _sweep(self) -> None:
        moved = self.moved
        keep_off(sorted(self.cpus))
        me, clock = threading.get_native_id(), moved.known  # the clock is among the threads known
        rest = moved.allowed - self.cpus
        while not self._stop.wait(self.period_s):
            for tid in set(_threads()) - clock - {me}:
                try:
                    if set(os.sched_getaffinity(tid)) & self.cpus:
                        os.sched_setaffinity(tid, rest)
                except OSError:  # ended meanwhile
                    continue

    def stop(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join()
        put_back(self.moved)


def leave(previous: Scheduling) -> None:
    """Put the calling thread back as :func:`enter` found it."""
    if not previous.applied:
        return
    try:
        os.sched_setscheduler(0, previous.policy, os.sched_param(previous.priority))
        if previous.cpus:
            os.sched_setaffinity(0, previous.cpus)
    except OSError as e:  # lowering one's own priority is always allowed; say so if not
        log.warning("control loop: could not restore the thread's scheduling: %s", e)
