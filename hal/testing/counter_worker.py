"""A real worker for scheduler tests and benchmarks: drives its robot and streams sequence numbers.

    python -m hal.testing.counter_worker --steps 200 [--rate 100] [--exit-code N]

Started by the scheduler (``hal.worker`` environment). Each step it observes its robot (if one is
assigned), acts with a small deterministic command, appends the next sequence number to its durable
log ``<run_dir>/streams/<name>.seq`` and beats. It stops after ``--steps`` numbers in all (across
restarts) and exits 0; ``--exit-code`` makes it exit with that status at once instead (a worker
that always crashes).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from hal.testing.sequence_log import SequenceLog
from hal.worker import WorkerContext


def stream_path(run_dir: str | Path, worker: str) -> Path:
    return Path(run_dir) / "streams" / f"{worker}.seq"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="sequence numbers to stream in all")
    parser.add_argument("--rate", type=float, default=0.0, help="steps per second (0: as fast as it goes)")
    parser.add_argument("--exit-code", type=int, default=None, help="exit with this status at start")
    parser.add_argument("--no-fsync", action="store_true", help="do not fsync each record")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.exit_code is not None:
        return args.exit_code

    with WorkerContext.from_env() as ctx:
        log = SequenceLog(stream_path(ctx.run_dir, ctx.name), fsync=not args.no_fsync)
        robot = ctx.open_robot() if ctx.robot_config is not None else None
        robot_name = robot.name if robot else "-"
        command = np.zeros(robot.action_spec.shape, np.float32) if robot else None
        period = 1.0 / args.rate if args.rate > 0 else 0.0
        next_tick = time.monotonic()
        while log.next_seq < args.steps and not ctx.stop_requested.is_set():
            if robot is not None:
                obs = robot.observe()
                if obs["terminated"] or obs["truncated"]:
                    robot.reset()
                command[:] = 0.1 * np.sin(0.1 * log.next_seq)
                robot.act(command)
            seq = log.append(ctx.incarnation, robot_name)
            ctx.beat(seq=seq, streamed=seq + 1)
            if period:
                next_tick += period
                time.sleep(max(0.0, next_tick - time.monotonic()))
        ctx.beat(force=True, seq=log.next_seq - 1, streamed=log.next_seq)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
