"""Do interventions fall as the policy learns from them? Takeovers per episode over time, with a
scripted operator at the tabletop arm.

    python -m bench.interventions [--quick] [--json OUT] [--steps N] [--seeds S ...] [--window W]

A stream-x learner (``LearnerService`` on loopback ZeroMQ, stream AC) and one actor stepping the
simulated arm (``sim-tabletop``, task ``reach``, ``goal_in_state: relative``, reward ``progress``,
no cameras), in one process. A ``ScriptedReachOperator`` (``agent/operator/scripted.py``) stands in
for the person: it takes over when the pusher heads away from the named block, drives it back
and releases it, and ends each episode: ``success`` when the simulator reports it, ``failure``
after 150 steps (the robot itself never ends one). Three arms on the same seeds (the same scenes,
the same initial weights):

- ``imitation``: intervened steps are flagged (``extras["intervened"]``) and the learner applies
  them with its imitation rule (policy weight ``sign(delta)``: always toward the person's action);
- ``control``: the same operator, but the flag is taken off each transition on the actor's side
  before it is sent, so the learner treats the person's steps as ordinary off-policy steps (no
  behaviour probability: importance weight 1, so a negative TD error pushes away from the
  person's action). The learner has no switch for this (see ``learners/service/applier.py``);
- ``watch``: the operator never takes over; it only ends episodes and counts each excursion away
  it would have taken over (plain RL from the same reward: the baseline for "takeovers fall").

Per window of ``--window`` episodes (default 50), averaged over the seeds that completed it: mean
takeovers and intervened steps per episode, success rate, success without any takeover (the
policy alone), mean episode length. Default 60,000 steps per run (``rill run
config/sim_tabletop.yaml``'s budget), seeds 0 1 2: about 6 minutes on 2 cores; ``--quick`` (CI):
400 steps, 1 seed, windows of 2 episodes.

The reward is ``progress`` (the distance to the block closed each step, plus the simulator's
success bonus): stream-x learns reach from it in tens of thousands of steps (``sim.tabletop.task``),
so a trend shows within the budget; with ``success`` alone it would not learn in it, and every
difference between the arms would come from the intervened steps alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, print_table, write_json

ARMS = ("imitation", "control", "watch")
EPISODE_STEPS = 150  # the reach task's time limit: the operator says failure here
log = logging.getLogger(__name__)


class UnflaggedFeed:
    """An actor's ``LearnerFeed`` that takes the ``intervened`` flag off every transition it sends
    (the control arm); everything else goes to the feed as is."""

    def __init__(self, feed: Any) -> None:
        self._feed, self.stripped = feed, 0

    def emit(self, t: Any) -> Any:
        if t.extras.get("intervened"):
            t = dataclasses.replace(t, extras={k: v for k, v in t.extras.items() if k != "intervened"})
            self.stripped += 1
        return self._feed.emit(t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feed, name)


def run_arm(arm: str, seed: int, steps: int, work: Path) -> dict[str, Any]:
    """One learner and one operated actor for ``steps`` steps; the episodes and what was learned."""
    from agent.actor import ActorConfig, ActorRunner
    from agent.actor.episodes import read_episodes
    from agent.actor.sources import RobotSource
    from agent.operator.config import OperatorConfig
    from agent.operator.scripted import ScriptedReachConfig, ScriptedReachOperator
    from learners.service import LearnerConfig, LearnerService
    from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig

    robot = TabletopRobot("arm", TabletopRobotConfig(
        task="reach", cameras=[], goal_in_state="relative", reward="progress", terminate_on_success=False,
        episode_steps=10 * steps + 1_000, watchdog_timeout_s=None, seed=seed))
    robot.connect()
    source = RobotSource(robot, episode_steps=EPISODE_STEPS)
    run_dir = work / f"{arm}-{seed}"
    learner = LearnerService(LearnerConfig(
        bind="tcp://127.0.0.1:0", run_dir=run_dir / "learner", obs_dim=source.obs_dim + 1,  # + time feature
        action_dim=robot.action_spec.dim, seed=seed, durability="os-buffered")).start()
    operator = ScriptedReachOperator.for_tabletop(robot, ScriptedReachConfig(
        time_limit_steps=EPISODE_STEPS, take_over=arm != "watch"))
    config = ActorConfig(learner=learner.endpoint, env="sim-tabletop", actor_id=f"{arm}-{seed}",
                         run_dir=run_dir / "actor", seed=seed, max_lag=64, durability="os-buffered")
    try:
        runner = ActorRunner(config, source, operator=OperatorConfig(enabled=True, wait_for_start=False),
                             intervention=operator)
        operator.controller = runner.operated.controller
        if arm == "control":
            runner.feed = UnflaggedFeed(runner.feed)
        runner.warm_up()  # numba's compiling, once per process, is no part of the rate
        start = time.perf_counter()
        summary = runner.run(steps, on_step=operator.watch)
        wall = time.perf_counter() - start
        runner.close(drain_s=30.0)
        deadline = time.monotonic() + 60
        while learner.updater.applied.get(config.actor_id, 0) < runner.seq and time.monotonic() < deadline:
            time.sleep(0.05)
        status = learner.status()
    finally:
        learner.stop()
        robot.disconnect()
    episodes = read_episodes(run_dir / "actor" / "actors" / config.actor_id / "episodes.csv")
    would = operator.takeovers_by_episode  # watching: the takeovers it would have made
    return {
        "arm": arm, "seed": seed, "steps": summary["steps"], "wall_s": round(wall, 1),
        "steps_per_s": round(summary["steps"] / wall, 1), "transitions": runner.seq,
        "applied": learner.updater.applied.get(config.actor_id, 0), "updates": status["updates"],
        "learner_intervened": sum(status["intervened"].values()),
        "flag_stripped": runner.feed.stripped if arm == "control" else 0,
        "operator_takeovers": operator.takeovers, "operator_marked": dict(operator.marked),
        "episodes": [{"takeovers": would.get(e.episode, 0) if arm == "watch" else e.takeovers or 0,
                      "intervened_steps": e.intervened_steps or 0,
                      "success": bool(e.success), "length": e.length, "outcome": e.outcome}
                     for e in episodes if e.outcome in ("success", "failure")],
    }


def windows(runs: list[dict], size: int) -> list[dict]:
    """Per window of ``size`` episodes: each figure averaged over the runs that completed it."""
    n = max((len(r["episodes"]) for r in runs), default=0) // size
    out = []
    for w in range(n):
        chunks = [r["episodes"][w * size:(w + 1) * size] for r in runs
                  if len(r["episodes"]) >= (w + 1) * size]
        eps = [e for c in chunks for e in c]

        def mean(f, digits: int, eps: list[dict] = eps) -> float:
            return round(float(np.mean([f(e) for e in eps])), digits)

        out.append({
            "episodes": [w * size + 1, (w + 1) * size], "seeds": len(chunks),
            "takeovers": mean(lambda e: e["takeovers"], 3),
            "intervened_steps": mean(lambda e: e["intervened_steps"], 2),
            "success_rate": mean(lambda e: e["success"], 3),
            "unaided_success_rate": mean(lambda e: e["success"] and not e["takeovers"], 3),
            "length": mean(lambda e: e["length"], 1),
        })
    return out


def _summarize(run: dict, window: int) -> dict:
    """A run as the report keeps it: totals and its own windows instead of every episode."""
    eps = run.pop("episodes")
    totals = {key: int(sum(e[key] for e in eps)) for key in ("success", "takeovers", "intervened_steps")}
    return {**run, "episodes": len(eps), "successes": totals["success"], "takeovers": totals["takeovers"],
            "intervened_steps": totals["intervened_steps"], "windows": windows([{"episodes": eps}], window)}


def measure(steps: int, seeds: list[int], window: int) -> dict:
    import torch

    torch.set_num_threads(1)
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory(prefix="rill-bench-interventions-") as tmp:
        for seed in seeds:
            for arm in ARMS:
                r = run_arm(arm, seed, steps, Path(tmp))
                log.info("%s seed %d: %d episodes in %.0f s", arm, seed, len(r["episodes"]), r["wall_s"])
                runs[arm].append(r)
    arms = {arm: {"windows": windows(rs, window), "runs": [_summarize(r, window) for r in rs]}
            for arm, rs in runs.items()}
    return {"steps": steps, "seeds": seeds, "window": window, "arms": arms}


def _rows(per_window: list[dict]) -> list[list[Any]]:
    return [[f"{w['episodes'][0]}-{w['episodes'][1]}", f"{w['takeovers']:.2f}",
             f"{w['intervened_steps']:.1f}", f"{100 * w['success_rate']:.0f}",
             f"{100 * w['unaided_success_rate']:.0f}", f"{w['length']:.0f}", w["seeds"]] for w in per_window]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="400 steps, 1 seed, windows of 2 (CI)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--steps", type=int, help="actor steps per run (default 60,000; --quick: 400)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2; --quick: 0)")
    parser.add_argument("--window", type=int, help="episodes per window (default 50; --quick: 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    steps = args.steps or (400 if args.quick else 60_000)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    window = args.window or (2 if args.quick else 50)
    if steps < 1 or window < 1:
        parser.error(f"--steps and --window must be >= 1, got {steps} and {window}")
    report = measure(steps, seeds, window)
    cols = ["episodes", "takeovers/ep", "intervened steps/ep", "success %", "unaided success %", "length",
            "seeds"]
    for arm in ARMS:
        what = " (would-be takeovers: it never drives)" if arm == "watch" else ""
        print_table(f"{arm}{what}: tabletop reach with a scripted operator, {steps:,} steps per run, "
                    f"seeds {seeds}", cols, _rows(report["arms"][arm]["windows"]))
    for arm in ARMS:
        for r in report["arms"][arm]["runs"]:
            print(f"{arm} seed {r['seed']}: {r['episodes']} episodes ({r['successes']} successes), "
                  f"{r['steps']:,} steps at {r['steps_per_s']} steps/s; "
                  f"learner applied {r['applied']:,} transitions, "
                  f"{r['learner_intervened']:,} as interventions; {r['takeovers']:,} takeovers"
                  + (" (would-be)" if arm == "watch" else ""))
    payload = {**report, "_meta": {**machine(), "quick": args.quick}}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
