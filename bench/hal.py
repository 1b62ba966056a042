"""HAL scheduler benchmarks: placement at scale, recovery after kill -9, heartbeat overhead.

    python -m bench.hal [--quick] --json OUT
    python -m bench.hal --multinode [--quick] --json OUT    (two Ray nodes: bench/hal_multinode.py)

- placement: ``hal.placement.place`` (the real scheduler code) for a learner wanting a GPU plus
  1,000 actors, one per robot, on a synthetic inventory of 1,000 robots over 50 hosts;
- recovery: the embedded backend runs a real actor (``hal.testing.counter_worker`` driving a MuJoCo
  Hopper); it is ``kill -9``-ed, and the time until its replacement streams its next sequence
  number is measured, split into detection, restart (with the default backoff) and first record;
- heartbeat overhead: the cost of one ``WorkerContext.beat()`` call (rate-limited and writing), and
  the scheduler's sweep time and CPU use while it supervises 100 real worker processes.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import machine, print_table, write_json


def _synthetic_inventory(hosts: int = 50, robots_per_host: int = 20, gpu_hosts: int = 10):
    from hal.accelerators import Accelerator
    from hal.config import RobotConfig
    from hal.host import Host, Inventory, RobotState
    from hal.robot import RobotHealth

    ok = RobotHealth(True, "available")
    out = []
    for h in range(hosts):
        name = f"host-{h:02d}"
        gpus = (
            [Accelerator(i, "Synthetic GPU", 80.0, 80.0 - 10 * i) for i in range(4)] if h < gpu_hosts else []
        )
        robots = [
            RobotState(RobotConfig(f"{name}-arm-{r:02d}", "arm"), name, ok) for r in range(robots_per_host)
        ]
        out.append(Host(name, 64.0, 512.0, 480.0, gpus, robots))
    return Inventory(out)


def bench_placement(repeats: int) -> dict:
    from hal.placement import place
    from hal.runspec import ActorsSpec, LearnerSpec, RunSpec

    inventory = _synthetic_inventory()
    spec = RunSpec(
        "bench",
        learner=LearnerSpec(gpu_memory_gb=40, cpus=8),
        actors=[ActorsSpec("actor", robot_type="arm", count=1000, cpus=1.0)],
    )
    place(spec, inventory)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        placement = place(spec, inventory)
        times.append(1e3 * (time.perf_counter() - start))
    assert len(placement.assignments) == 1001
    return {
        "actors": 1000,
        "robots": 1000,
        "hosts": 50,
        "repeats": repeats,
        "median_ms": round(statistics.median(times), 2),
        "max_ms": round(max(times), 2),
        "learner": placement.assignments["learner"].device,
    }


class _StreamWatcher(threading.Thread):
    """Notes the wall time at which a sequence log first holds a record of a given incarnation."""

    def __init__(self, path: Path, incarnation: int) -> None:
        super().__init__(daemon=True)
        self.path, self.incarnation = path, incarnation
        self.seen: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        needle = f" {self.incarnation} "
        size = 0
        while not self.stop.is_set():
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_size != size:
                size = st.st_size
                tail = self.path.read_bytes()[-256:].decode(errors="replace")
                if any(needle in line for line in tail.splitlines()):
                    self.seen = time.time()
                    return
            time.sleep(0.001)


def _one_recovery(root: Path) -> dict:
    from hal.backends.embedded import EmbeddedBackend
    from hal.config import RobotConfig
    from hal.leases import LeaseStore
    from hal.runspec import ActorsSpec, HeartbeatPolicy, RunSpec
    from hal.scheduler import Scheduler
    from hal.testing.counter_worker import stream_path
    from hal.testing.sequence_log import read_records

    command = [sys.executable, "-m", "hal.testing.counter_worker", "--steps", "100000000", "--rate", "200"]
    spec = RunSpec(
        "recovery",
        robots=[RobotConfig("hopper-0", "sim-mujoco", {"env_id": "Hopper-v5"})],
        actors=[ActorsSpec("actor", robot_type="sim-mujoco", count=1, cpus=0.1, command=command)],
        heartbeat=HeartbeatPolicy(interval_s=0.1),
        run_dir=str(root),
    )  # default restart policy
    log_path = stream_path(root, "actor-0")
    with Scheduler(spec, EmbeddedBackend(LeaseStore(root / "leases")), sweep_s=0.01) as scheduler:
        scheduler.start()
        deadline = time.monotonic() + 60
        while len(read_records(log_path)) < 50 and time.monotonic() < deadline:
            scheduler.poll()
            time.sleep(0.01)
        watcher = _StreamWatcher(log_path, 1)
        watcher.start()
        pid = scheduler.status()[0].pid
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        while watcher.seen is None and time.monotonic() < deadline + 60:
            scheduler.poll()
            time.sleep(scheduler.sweep_s)
        watcher.stop.set()
        events = {e.kind: e.time for e in scheduler.events if e.incarnation == 1 or e.kind == "crashed"}
        scheduler.stop()
    records = read_records(log_path)
    seqs = [s for s, _, _ in records]
    return {
        "detect_s": events["crashed"] - killed,
        "restarted_s": events["started"] - killed,
        "streaming_s": (watcher.seen or float("nan")) - killed,
        "contiguous": seqs == list(range(len(seqs))),
    }


def bench_recovery(trials: int) -> dict:
    from hal.runspec import RestartPolicy

    runs = []
    for i in range(trials):
        with tempfile.TemporaryDirectory(prefix="hal-bench-") as tmp:
            runs.append(_one_recovery(Path(tmp) / f"run{i}"))
    out = {
        "trials": trials,
        "backoff_s": RestartPolicy().backoff(1),
        "all_contiguous": all(r["contiguous"] for r in runs),
    }
    for key in ("detect_s", "restarted_s", "streaming_s"):
        values = [r[key] for r in runs]
        out[key] = {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}
    return out


def bench_beat_cost(calls: int) -> dict:
    from hal.leases import LeaseStore
    from hal.worker import Heartbeat, WorkerContext

    with tempfile.TemporaryDirectory(prefix="hal-bench-") as tmp:
        store = LeaseStore(Path(tmp) / "leases")
        ctx = WorkerContext(
            name="w",
            role="actor",
            run="bench",
            run_dir=Path(tmp),
            incarnation=0,
            heartbeat=Heartbeat(Path(tmp) / "w.heartbeat.json", interval_s=3600),
            leases=store,
            lease_ttl_s=3600,
        )
        ctx.beat(force=True)
        start = time.perf_counter()
        for i in range(calls):
            ctx.beat(seq=i)  # not due: the common case inside a control loop
        idle_us = 1e6 * (time.perf_counter() - start) / calls
        start = time.perf_counter()
        for i in range(calls // 10):
            ctx.beat(force=True, seq=i)  # writes the heartbeat file
        write_us = 1e6 * (time.perf_counter() - start) / (calls // 10)
        lease = store.acquire("robot", "w#0", ttl_s=60)
        start = time.perf_counter()
        for _ in range(calls // 10):
            lease = store.renew(lease)
        renew_us = 1e6 * (time.perf_counter() - start) / (calls // 10)
    return {
        "beat_not_due_us": round(idle_us, 2),
        "beat_write_us": round(write_us, 1),
        "lease_renew_us": round(renew_us, 1),
    }


def bench_supervision(workers: int, seconds: float) -> dict:
    import psutil

    from hal.backends.embedded import EmbeddedBackend
    from hal.leases import LeaseStore
    from hal.placement import Assignment
    from hal.runspec import HeartbeatPolicy, LearnerSpec, RunSpec, WorkerSpec
    from hal.scheduler import RUNNING, Scheduler

    command = [
        sys.executable,
        "-m",
        "hal.testing.counter_worker",
        "--steps",
        "100000000",
        "--rate",
        "10",
        "--no-fsync",
    ]
    hb = HeartbeatPolicy()  # the default interval
    with tempfile.TemporaryDirectory(prefix="hal-bench-") as tmp:
        # N robot-less workers: one placed learner, repeated under distinct names on its host.
        spec = RunSpec("hb", learner=LearnerSpec(cpus=0.0, command=command), heartbeat=hb, run_dir=tmp)
        scheduler = Scheduler(spec, EmbeddedBackend(LeaseStore(Path(tmp) / "leases")), sweep_s=0.05)
        placement = scheduler.place()
        first, host = placement.workers[0], placement.assignments["learner"].host
        for i in range(1, workers):
            worker = WorkerSpec(f"worker-{i:03d}", "learner", first.request, first.argv, group="bench")
            placement.workers.append(worker)
            placement.assignments[worker.name] = Assignment(worker.name, "learner", host)
        try:
            scheduler.start(placement)
            deadline = time.monotonic() + 300
            while (
                sum(w.state == RUNNING for w in scheduler.workers.values()) < workers
                and time.monotonic() < deadline
            ):
                scheduler.poll()
                time.sleep(scheduler.sweep_s)
            me = psutil.Process()
            cpu0, wall0 = me.cpu_times(), time.perf_counter()
            sweeps, beats0 = [], sum(w.last_beat for w in scheduler.workers.values())
            while time.perf_counter() - wall0 < seconds:
                start = time.perf_counter()
                scheduler.poll()
                sweeps.append(1e3 * (time.perf_counter() - start))
                time.sleep(scheduler.sweep_s)
            cpu1, wall = me.cpu_times(), time.perf_counter() - wall0
            beats = sum(w.last_beat for w in scheduler.workers.values()) - beats0
            running = sum(w.state == RUNNING for w in scheduler.workers.values())
        finally:
            scheduler.stop(grace_s=10)
    return {
        "workers": workers,
        "running": running,
        "interval_s": hb.interval_s,
        "seconds": round(wall, 1),
        "beats_seen_per_s": round(beats / wall, 1),
        "sweep_ms_median": round(statistics.median(sweeps), 2),
        "sweep_ms_max": round(max(sweeps), 2),
        "scheduler_cpu_percent": round(
            100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / wall, 1
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds in all (CI)")
    parser.add_argument("--json", help="write results here")
    parser.add_argument("--multinode", action="store_true",
                        help="the Ray backend on two nodes next to one node (bench/hal_multinode.py)")
    args = parser.parse_args(argv)
    if args.multinode:
        from bench.hal_multinode import bench_multinode, rows

        results = bench_multinode(args.quick)
        print_table("HAL on Ray: one node vs two nodes" + (" (quick)" if args.quick else ""),
                    ["measure", "one node", "two nodes"], rows(results))
        write_json(args.json, {**results, "_meta": {"quick": args.quick, **machine()}})
        return results
    import sim.robots  # noqa: F401  registers the sim-mujoco robot the recovery benchmark drives

    results = {
        "placement": bench_placement(repeats=5 if args.quick else 50),
        "recovery": bench_recovery(trials=1 if args.quick else 5),
        "heartbeat": {
            **bench_beat_cost(calls=20_000 if args.quick else 200_000),
            "supervision": bench_supervision(
                workers=10 if args.quick else 100, seconds=2.0 if args.quick else 10.0
            ),
        },
    }
    p, r, h = results["placement"], results["recovery"], results["heartbeat"]
    s = h["supervision"]
    rows = [
        [
            "placement: 1,000 actors on 1,000 robots / 50 hosts",
            f"{p['median_ms']} ms median, {p['max_ms']} ms max",
            "< 100 ms",
        ],
        [
            "kill -9 -> exit seen by the scheduler",
            f"{r['detect_s']['median']} s median, {r['detect_s']['max']} s max",
            "",
        ],
        [
            f"kill -9 -> replacement started (backoff {r['backoff_s']} s)",
            f"{r['restarted_s']['median']} s median, {r['restarted_s']['max']} s max",
            "",
        ],
        [
            "kill -9 -> replacement streaming again",
            f"{r['streaming_s']['median']} s median, {r['streaming_s']['max']} s max",
            "aim < 2 s",
        ],
        ["beat() in a control loop (not due)", f"{h['beat_not_due_us']} us", ""],
        ["beat() that writes the heartbeat file", f"{h['beat_write_us']} us", ""],
        ["lease renewal", f"{h['lease_renew_us']} us", ""],
        [
            f"supervising {s['workers']} workers (beat every {s['interval_s']} s)",
            f"sweep {s['sweep_ms_median']} ms median / {s['sweep_ms_max']} ms max; scheduler CPU "
            f"{s['scheduler_cpu_percent']}%; {s['beats_seen_per_s']} beats/s",
            "",
        ],
    ]
    print_table("HAL scheduler" + (" (quick)" if args.quick else ""), ["measure", "result", "target"], rows)
    write_json(args.json, {**results, "_meta": {"quick": args.quick, **machine()}})
    return results


if __name__ == "__main__":
    main()
