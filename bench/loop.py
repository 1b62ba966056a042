"""The control loop under a slow policy, asynchronous against synchronous, in one run.

    python -m bench.loop [--quick] --json OUT
    python -m bench.loop --vla [--with-learner] [--inference process] [--rt-priority 50] --hz 50 --hz 100 \
        [--cpu 1 --learner-cpu 0] [--spin-floor] --json OUT

A simulated MuJoCo robot (``sim-mujoco``, Hopper-v5, one physics step per command) ticks at 50 Hz
driven by a policy that takes 60 ms per 25-action chunk and re-plans each chunk with a small
offset. Reported per loop: deadline misses, tick jitter (p50/p99/max), holds, and the largest
action jump at chunk joins (linear blending against naive switching).

``--vla``: instead, the real thing: the VLA rill ships (``pretrained:tabletop-reach``) drives the
simulated tabletop arm (camera frame rendered each tick) through the asynchronous loop, at each
``--hz``. ``--with-learner``: meanwhile a learner process learns from an actor process streaming
Hopper-v5 on the same machine, as in an embedded ``rill run``. ``--inference process``: the VLA
computes in a process of its own (``agent.loop.policy_process``), not on a thread beside the clock;
its cost is reported too (round trip minus the child's compute, per chunk; the child's memory).
``--rt-priority N [--cpu K]``: the clock thread runs under ``SCHED_FIFO`` at priority N (on CPU K,
which the policy process and the loop's other threads then keep off), as ``loop.rt_priority`` /
``loop.cpus`` set it on a robot; ``--learner-cpu J`` keeps the busy learner and its actor on CPU J,
as ``taskset -c J`` would.

Next to each ``--vla`` loop, in the same conditions, a bare clock: the loop's own ``Pacer`` on a
thread with the same scheduling and no work at all. Its worst late start is what this machine's
timer wake-ups allow, the floor no loop here can beat; the loop's worst start is reported as a ratio
to it. Each run also reports the CPU time the hypervisor took from this VM meanwhile (``steal``,
from ``/proc/stat``). ``--spin-floor`` adds, after each loop and for as long as it ran, a thread
scheduled as the clock that never sleeps (``spin_floor``): the longest the machine took its CPU
away at once, which no design inside the machine can hide from a tick.
"""

from __future__ import annotations

import argparse

from bench.common import machine, print_table, write_json


def run_loop(asynchronous: bool, blend: str, ticks: int, latency_s: float, hz: float = 50.0) -> dict:
    import torch

    from agent.loop import ControlLoop, LoopConfig
    from agent.testing.policies import ReplanningPolicy
    from sim.robots import MujocoRobot, MujocoRobotConfig

    torch.set_num_threads(1)
    robot = MujocoRobot(
        "bench-hopper", MujocoRobotConfig(env_id="Hopper-v5", max_delta=None, watchdog_timeout_s=0.5)
    )
    policy = ReplanningPolicy(robot.action_spec.dim, chunk_size=25, period_s=1.0 / hz, latency_s=latency_s)
    loop = ControlLoop(robot, policy, LoopConfig(control_hz=hz, asynchronous=asynchronous, blend=blend))
    with robot:
        stats = loop.run(ticks=ticks)
    return stats.summary()


def vla_policy(inference: str = "thread", cpus: list[int] | None = None):
    """The shipped tabletop VLA, computing on a thread of this process (``"thread"``) or in a
    process of its own (``"process"``; with the clock pinned to ``cpus`` it keeps off them, as the
    VLA actor's does). Built before a busy learner starts, so that its start is not what is timed
    nor slowed; ``close()`` it (a process) when done."""
    import torch

    from agent.loop.policy_process import PolicyProcess
    from policies.vla import VLAPolicy, load_vla

    torch.set_num_threads(1)
    vla = "pretrained:tabletop-reach"
    if inference == "process":
        return PolicyProcess("agent.loop.policy_process:load_vla_policy", {"path": vla},
                             avoid_cpus=list(cpus or []))
    return VLAPolicy(load_vla(vla))


def run_vla_loop(hz: float, ticks: int, policy, rt_priority: int = 0, cpus: list[int] | None = None,
                 freeze_gc: bool = True) -> dict:
    """``policy`` (from ``vla_policy``) driving the simulated arm through the asynchronous loop at
    ``hz``; ``rt_priority`` / ``cpus``: the clock thread's real-time scheduling, ``freeze_gc``: the
    heap out of the collector's walks (``LoopConfig``)."""
    import gc

    import numpy as np

    from agent.loop import ControlLoop, LoopConfig
    from agent.loop.policy_process import PolicyProcess
    from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig

    robot = TabletopRobot("bench-tabletop", TabletopRobotConfig(
        task="reach", colors=["red", "blue", "yellow"], cameras=["front"], state="proprio", control_hz=hz,
        real_time=False, max_delta=1.0, watchdog_timeout_s=1.0))
    loop = ControlLoop(robot, policy, LoopConfig(control_hz=hz, asynchronous=True, blend="linear",
                                                 rt_priority=rt_priority, cpus=list(cpus or []),
                                                 freeze_gc=freeze_gc))
    in_process = isinstance(policy, PolicyProcess)
    restarts = policy.restarts if in_process else 0
    if in_process:
        policy.overhead_s.clear()  # this loop's calls only
    with robot:
        tracked = len(gc.get_objects())
        stats = loop.run(ticks=ticks)
    out = {**stats.summary(), "gc_tracked_objects": tracked}
    if in_process:
        import psutil

        overhead = np.asarray(policy.overhead_s) * 1e3
        out.update(process_overhead_p50_ms=float(np.percentile(overhead, 50)),
                   process_overhead_p99_ms=float(np.percentile(overhead, 99)),
                   process_rss_mb=psutil.Process(policy.pid).memory_info().rss / 2**20,
                   process_restarts=policy.restarts - restarts)
    return out


def as_clock(name: str, body, rt_priority: int = 0, cpus: list[int] | None = None) -> dict:
    """Run ``body()`` on a thread of its own, scheduled as the loop's clock would be (``SCHED_FIFO``
    at ``rt_priority``, pinned to ``cpus``); returns what took effect and the steal over the run."""
    import threading

    from agent.loop import realtime

    out: dict = {}

    def run() -> None:
        scheduling = realtime.enter(rt_priority, list(cpus or []))
        try:
            body()
            out.update(realtime=scheduling.applied, realtime_refused=scheduling.refused)
        finally:
            realtime.leave(scheduling)

    steal = Steal()
    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    return {**out, **steal.done()}


def bare_clock(hz: float, ticks: int, rt_priority: int = 0, cpus: list[int] | None = None) -> dict:
    """The loop's ``Pacer`` ticking with no work, on a thread scheduled as the loop's clock would be."""
    import numpy as np

    from agent.loop.pacer import Pacer

    jitter: list[float] = []
    misses: list[int] = []

    def tick() -> None:
        pacer = Pacer(1.0 / hz)  # made on the clock's thread, after its scheduling took effect
        for _ in range(ticks):
            jitter.append(pacer.wait())
            pacer.end_tick()
        misses.append(pacer.deadline_misses)

    run = as_clock("bare-clock", tick, rt_priority, cpus)
    j = np.asarray(jitter) * 1e3
    return {"ticks": ticks, "deadline_misses": misses[0], **run,
            "jitter_p50_ms": float(np.percentile(j, 50)), "jitter_p99_ms": float(np.percentile(j, 99)),
            "jitter_max_ms": float(j.max())}


def spin_floor(seconds: float, rt_priority: int = 0, cpus: list[int] | None = None) -> dict:
    """The CPU time this machine takes from a thread that never sleeps, scheduled as the loop's
    clock is: it spins reading the clock for 0.8 s of each second (under ``SCHED_FIFO`` the kernel
    lets real-time threads have at most 0.95 s of each second), and every gap between two reads
    over 0.2 ms is time the CPU spent on something that outranked it (an interrupt, the kernel,
    or, in a virtual machine, the host). No clock can start its ticks more reliably than this."""
    import time

    gaps: list[float] = []

    def spin() -> None:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            prev = time.monotonic()
            end = min(prev + 0.8, start + seconds)
            while prev < end:
                now = time.monotonic()
                if now - prev > 2e-4:
                    gaps.append(now - prev)
                prev = now
            time.sleep(0.2)

    run = as_clock("spin-floor", spin, rt_priority, cpus)
    lost = sorted(g * 1e3 for g in gaps)
    return {"seconds": seconds, **run, "lost_max_ms": lost[-1] if lost else 0.0,
            "lost_over_1ms": sum(g > 1 for g in lost), "lost_over_3ms": sum(g > 3 for g in lost)}


class Steal:
    """CPU time the hypervisor gave to others while this VM wanted it (``/proc/stat``), over a run."""

    def __init__(self) -> None:
        import time

        self.start, self.t0 = self._read(), time.monotonic()

    @staticmethod
    def _read() -> float | None:
        import os

        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
            return int(fields[8]) / os.sysconf("SC_CLK_TCK")  # seconds, all CPUs together
        except (OSError, IndexError, ValueError):
            return None

    def done(self) -> dict:
        import time

        end = self._read()
        if end is None or self.start is None:
            return {}
        return {"steal_ms_per_s": round((end - self.start) * 1e3 / (time.monotonic() - self.t0), 3)}


class BusyLearner:
    """A learner process and an actor process streaming Hopper-v5 into it, for a loop to run beside;
    ``cpus``: the CPUs both may use (empty: all), as an operator keeps a learner off the clock's core."""

    def __init__(self, cpus: list[int] | None = None) -> None:
        self.cpus = list(cpus or [])

    def __enter__(self) -> BusyLearner:
        import os
        import socket
        import subprocess
        import sys
        import tempfile
        from pathlib import Path

        repo = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.tmp = tempfile.mkdtemp(prefix="rill-bench-loop-")
        cli = [sys.executable, "-m", "agent.cli"]
        quiet = {"env": env, "cwd": repo, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if self.cpus:
            cpus = set(self.cpus)
            quiet["preexec_fn"] = lambda: os.sched_setaffinity(0, cpus)
        self.procs = [
            subprocess.Popen([*cli, "learner", "--bind", f"tcp://127.0.0.1:{port}", "--run", self.tmp,
                              "--env", "Hopper-v5"], **quiet),
            subprocess.Popen([*cli, "actor", "--learner", f"tcp://127.0.0.1:{port}", "--actor-id", "busy",
                              "--run", self.tmp, "--env", "Hopper-v5"], **quiet),
        ]
        import time

        time.sleep(5.0)  # both started and streaming
        return self

    def __exit__(self, *exc) -> None:
        import shutil
        import subprocess

        # The actor first, while its learner still answers: stopped together, the actor spends its
        # drain timeout (about 10 s) on a learner that is already gone.
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def tiny_vla_latency(calls: int) -> dict:
    """The tiny VLA's ``act`` on one 96x96 frame, one thread (the inference thread's budget)."""
    import numpy as np
    import torch

    from bench.vla_latency import _observation, measure
    from policies.vla import VLAPolicy, tiny_vla

    torch.set_num_threads(1)
    model = tiny_vla(state_dim=20, action_dim=2, chunk_size=8, seed=0)
    obs = _observation(np.random.default_rng(0), model.config.image_size, 20)
    return measure(VLAPolicy(model), obs, calls, warmup=5)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--latency-ms", type=float, default=60.0)
    parser.add_argument("--vla", action="store_true", help="the shipped VLA on the tabletop arm")
    parser.add_argument("--with-learner", action="store_true", help="a busy learner on the same machine")
    parser.add_argument("--hz", type=float, action="append", help="control rates (--vla; default 50)")
    parser.add_argument("--inference", choices=("thread", "process"), default="thread",
                        help="--vla: the VLA on a thread beside the clock, or in a process of its own")
    parser.add_argument("--ticks", type=int, help="ticks per loop (default 1500, --quick 150)")
    parser.add_argument("--rt-priority", type=int, default=0,
                        help="--vla: the clock thread under SCHED_FIFO at this priority (0: off)")
    parser.add_argument("--cpu", type=int, action="append",
                        help="--vla: the clock's CPU (LoopConfig.cpus): the clock thread is pinned there, "
                             "the policy process and the loop's other threads keep off it")
    parser.add_argument("--spin-floor", action="store_true",
                        help="--vla: after each loop, as long as it ran, a thread scheduled as its clock "
                             "that never sleeps: the longest the machine took its CPU away")
    parser.add_argument("--learner-cpu", type=int, action="append",
                        help="--with-learner: keep the busy learner and its actor on this CPU")
    parser.add_argument("--no-freeze-gc", action="store_true",
                        help="--vla: leave the heap in the garbage collector's walks (LoopConfig.freeze_gc)")
    args = parser.parse_args(argv)
    if args.vla or args.with_learner:
        return vla_main(args)
    ticks = args.ticks or (150 if args.quick else 1500)
    lat = args.latency_ms / 1e3
    results = {
        "async_blend": run_loop(True, "linear", ticks, lat),
        "async_naive": run_loop(True, "none", ticks, lat),
        "sync_naive": run_loop(False, "none", ticks, lat),
    }
    results["tiny_vla_latency"] = tiny_vla_latency(calls=20 if args.quick else 200)
    cols = [
        "ticks",
        "deadline_misses",
        "holds",
        "jitter_p50_ms",
        "jitter_p99_ms",
        "jitter_max_ms",
        "inference_p50_ms",
        "max_join_jump",
    ]
    rows = [
        [name, *[r[c] if isinstance(r[c], int) else f"{r[c]:.3f}" for c in cols]]
        for name, r in results.items()
        if name != "tiny_vla_latency"
    ]
    print_table(f"50 Hz control, policy {args.latency_ms:.0f} ms per chunk", ["loop", *cols], rows)
    vla = results["tiny_vla_latency"]
    print_table(
        "tiny VLA inference (1 thread, 96x96)",
        ["median ms", "p99 ms", "calls"],
        [[vla["median_ms"], vla["p99_ms"], vla["calls"]]],
    )
    write_json(args.json, {**results, "_meta": {"quick": args.quick, "ticks": ticks, **machine()}})
    return results


COLUMNS = ["ticks", "deadline_misses", "holds", "jitter_p50_ms", "jitter_p99_ms", "jitter_max_ms",
           "inference_p50_ms", "gc_pause_max_ms", "steal_ms_per_s", "lost_max_ms"]


def vla_main(args) -> dict:
    from contextlib import contextmanager, nullcontext

    @contextmanager
    def closing(policy):
        try:
            yield policy
        finally:
            if hasattr(policy, "close"):
                policy.close()

    ticks = args.ticks or (150 if args.quick else 1500)
    results = {}
    policy = vla_policy(args.inference, args.cpu) if args.vla else None
    # the policy closes last, and also when the busy learner fails to start
    with closing(policy), BusyLearner(args.learner_cpu) if args.with_learner else nullcontext():
        for hz in args.hz or [50.0]:
            name = f"{'vla' if args.vla else 'replanning'}_{hz:g}hz"
            name += "_process" if args.vla and args.inference == "process" else ""
            name += "_with_learner" if args.with_learner else ""
            name += "_rt" if args.vla and (args.rt_priority or args.cpu) else ""
            name += "_pinned" if args.vla and args.cpu else ""
            name += "_gc_unfrozen" if args.vla and args.no_freeze_gc else ""
            if args.vla:
                steal = Steal()
                results[name] = {**run_vla_loop(hz, ticks, policy, args.rt_priority, args.cpu,
                                                not args.no_freeze_gc), **steal.done()}
                bare = results[f"{name}_bare_clock"] = bare_clock(hz, ticks, args.rt_priority, args.cpu)
                results[name]["worst_start_over_bare_clock"] = round(
                    results[name]["jitter_max_ms"] / max(bare["jitter_max_ms"], 1e-6), 2)
                if args.spin_floor:
                    results[f"{name}_spin_floor"] = spin_floor(ticks / hz, args.rt_priority, args.cpu)
            else:
                results[name] = run_loop(True, "linear", ticks, args.latency_ms / 1e3, hz)
    def cell(r: dict, c: str) -> object:
        return f"{r[c]:.3f}" if isinstance(r.get(c), float) else r.get(c, "")

    rows = [[name, *[cell(r, c) for c in COLUMNS]] for name, r in results.items()]
    print_table("asynchronous loop, linear blending", ["loop", *COLUMNS], rows)
    for name, r in results.items():
        if r.get("realtime") or r.get("realtime_refused"):
            refused = f"; {r['realtime_refused']}" if r["realtime_refused"] else ""
            print(f"{name}: clock thread {r['realtime'] or 'ordinary'}{refused}")
    write_json(args.json, {**results, "_meta": {"quick": args.quick, "ticks": ticks, **machine()}})
    return results


if __name__ == "__main__":
    main()
