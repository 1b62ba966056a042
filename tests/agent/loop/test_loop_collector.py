"""While the loop runs, what was alive when it started is out of the garbage collector's walks
(``LoopConfig.freeze_gc``), and is handed back when it stops; the loop counts the collections."""

from __future__ import annotations

import gc
import weakref

import pytest

from agent.loop import ControlLoop, LoopConfig
from agent.loop.collector import freeze_heap, thaw_heap
from agent.testing.policies import ReplanningPolicy
from hal.errors import ConfigError
from sim.robots import MujocoRobot, MujocoRobotConfig


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _garbage_cycle() -> weakref.ref:
    """An object only a reference cycle keeps alive: only the cyclic collector frees it."""
    return weakref.ref(_Cycle())


@pytest.mark.parametrize("freeze_gc", [True, False])
def test_what_lived_before_the_loop_is_not_walked_while_it_runs_and_is_collected_after(freeze_gc):
    robot = MujocoRobot("hopper", MujocoRobotConfig(env_id="Hopper-v5", watchdog_timeout_s=None))
    policy = ReplanningPolicy(3, chunk_size=5, latency_s=0.0)
    frozen_before = gc.get_freeze_count()
    seen: dict[str, object] = {}
    held = [_Cycle()]  # alive when the loop starts; garbage (in a cycle) once dropped inside it
    old = weakref.ref(held[0])

    def on_tick(record) -> None:
        if record.tick == 3:
            held.clear()
            young = _garbage_cycle()  # made while the loop runs
            gc.collect()  # a full collection inside the loop, as one due by the collector's count would be
            seen.update(frozen=gc.get_freeze_count(), old_alive=old() is not None,
                        young_alive=young() is not None)

    loop = ControlLoop(robot, policy, LoopConfig(control_hz=200, asynchronous=False, freeze_gc=freeze_gc),
                       on_tick=on_tick)
    with robot:
        stats = loop.run(ticks=6)
    assert stats.ticks == 6 and seen
    assert seen["young_alive"] is False  # the loop's own garbage is collected as ever
    if freeze_gc:
        assert seen["frozen"] > frozen_before and seen["old_alive"] is True  # not walked
    else:
        assert seen["frozen"] == frozen_before and seen["old_alive"] is False
    assert gc.get_freeze_count() == frozen_before  # handed back when the loop stopped
    gc.collect()
    assert old() is None  # nothing is kept forever
    assert stats.gc_collections[2] >= 1 and stats.summary()["gc_pause_max_ms"] > 0


def test_nested_freezes_thaw_at_the_last():
    before = gc.get_freeze_count()
    freeze_heap()
    freeze_heap()
    thaw_heap()
    assert gc.get_freeze_count() > before  # another holder still runs
    thaw_heap()
    assert gc.get_freeze_count() == before


def test_a_heap_the_process_froze_itself_stays_frozen():
    gc.freeze()  # e.g. a server that freezes its heap before forking workers
    try:
        before = gc.get_freeze_count()
        freeze_heap()
        thaw_heap()
        assert gc.get_freeze_count() >= before > 0  # not released under its owner
    finally:
        gc.unfreeze()


def test_freeze_gc_must_be_a_bool():
    with pytest.raises(ConfigError, match=r"loop\.freeze_gc"):
        LoopConfig(freeze_gc="yes")
