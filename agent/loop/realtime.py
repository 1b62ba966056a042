"""Real-time scheduling for the clock thread: ``SCHED_FIFO`` at a priority, pinned to chosen CPUs.

On a loaded machine the operating system, not Python, is what makes a tick late: a learner, a
simulator's renderer or the policy's process may hold the core when the clock's sleep ends. A
``SCHED_FIFO`` thread runs as soon as it wakes, ahead of every ordinary thread; this is what
``ros2_control`` asks of its controller thread too. It needs ``CAP_SYS_NICE`` or an ``rtprio``
limit (``ulimit -r``, ``/etc/security/limits.conf``); where the system refuses, the loop runs on
with ordinary scheduling and says why.

Linux scheduling is per thread: :func:`enter` changes only the calling thread, and sets
``SCHED_RESET_ON_FORK`` so that no thread or process started from the clock inherits its priority
(they do inherit its CPU pinning: start helpers before the loop, as the inference thread is).

Pinning alone does not give the clock its core: it keeps the clock *on* its CPUs, not the rest
off them. So while a pinned loop runs, the other threads of its process leave the clock's CPUs
(:func:`move_others_off`: the inference thread, a ROS executor, the link's threads; put back when
the loop ends), and the policy process starts off them (``PolicyProcess(avoid_cpus=...)``, which
uses :func:`keep_off`). Other processes on the machine (a learner, a simulator, a browser) are the
operator's to keep off, with the system's own tools (``taskset -c``, systemd's ``CPUAffinity=``,
the kernel's ``isolcpus=``). On a 2-core VM this did not lower the worst tick beside a busy learner:
the machine itself took the CPU away for up to 6 ms (``docs/design.md``, "The clock owns its core").
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


def move_others_off(cpus: list[int] | tuple[int, ...]) -> dict[int, set[int]]:
    """Move every other thread of this process off ``cpus`` (the calling thread, the clock, stays);
    returns each moved thread's CPUs before, for :func:`put_back`. Threads the moved ones start
    inherit their CPUs; a thread that has no other CPU allowed stays where it is."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return {}
    me, moved = threading.get_native_id(), {}
    for tid in _threads():
        if tid == me:
            continue
        try:
            before = set(os.sched_getaffinity(tid))
            rest = before - set(cpus)
            if rest and rest != before:
                os.sched_setaffinity(tid, rest)
                moved[tid] = before
        except OSError:  # ended meanwhile, or not ours to move: it stays
            continue
    return moved


def _threads() -> list[int]:
    """The native ids of this process's threads now running (Linux)."""
    return [int(t) for t in os.listdir("/proc/self/task")]


def put_back(moved: dict[int, set[int]]) -> None:
    """Give the threads :func:`move_others_off` moved their CPUs back (those still running)."""
    for tid, cpus in moved.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue


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
