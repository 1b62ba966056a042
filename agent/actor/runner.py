"""``rill actor``: act on an environment with the learner's latest weights, never waiting for it.

Each step: act, step the environment, preprocess (the stream-x normalizers live on the actor,
which is the only place that sees every observation of its stream), spool the transition locally
and hand it to the link (``LearnerFeed``). Weights are swapped in between steps.

With an operator (``rill actor --keyboard``: an ``OperatorConfig`` and an intervention source such as
the ``KeyboardOperator``), steps go through ``agent.operator.stepping.OperatedSteps``: episodes are
started, ended and labelled by the person, who can take over any step; only the steps the world took
in an episode count towards ``steps``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.actor.episodes import EpisodeRecord
from agent.actor.feed import LearnerFeed
from agent.actor.sources import GymSource, RobotSource
from agent.actor.steps import SteppingActor, StepTransitions
from agent.actor.streamx_policy import StreamXPolicy
from agent.loop.pacer import Pacer
from agent.operator.config import OperatorConfig
from agent.operator.intervention import InterventionSource
from hal.config import check_number
from hal.errors import ConfigError
from learners.checkpoint import CheckpointError, CheckpointStore
from learners.link.security import CurveClient
from learners.link.spool import KEEP_BYTES
from learners.link.wire import check_actor_id
from learners.streamx import algorithm_config, build_algorithm, build_preprocessor
from sim.envs import make_env

log = logging.getLogger(__name__)

_IDLE_S = 0.01  # an unpaced actor's pause between steps that took no action (waiting, holding)


@dataclass
class ActorConfig:
    learner: str
    env: str
    actor_id: str
    run_dir: Path
    algo: str = "stream-ac"
    hyper: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    steps: int | None = None
    control_hz: float | None = None  # pace the loop like a real robot; None: as fast as it goes
    curve: CurveClient | None = None
    insecure: bool = False
    durability: str = "fsync"
    state_every: int = 1_000  # normalizer statistics and counters, a few KB
    # Simulation only: wait while more than this many of our transitions are not yet learned
    # from, so a simulator faster than the learner does not run ahead on stale weights. A real
    # robot leaves it None: it never waits for the learner.
    max_lag: int | None = None
    # Acknowledged transitions kept on the actor's own disk (the oldest are dropped past this);
    # None keeps everything. Unacknowledged ones are never dropped.
    spool_keep_bytes: int | None = KEEP_BYTES

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        check_actor_id(self.actor_id)
        check_number("actor", "steps", self.steps, 1, optional=True)  # (-5 ran, and showed 0/-5)
        check_number("actor", "control_hz", self.control_hz, 0, strict=True, optional=True)
        check_number("actor", "max_lag", self.max_lag, 0, optional=True)  # (-1 waited at every step)
        check_number("actor", "seed", self.seed, 0)


class ActorRunner(SteppingActor):
    """Acts on ``source`` (default: the gymnasium env named in the config) and streams to a learner.

    ``operator`` / ``intervention``: a person in the loop (see the module docstring); the episode
    controller is ``self.operated.controller`` (a keyboard's events go to it).
    """

    def __init__(self, config: ActorConfig, source: GymSource | RobotSource | None = None,
                 operator: OperatorConfig | None = None,
                 intervention: InterventionSource | None = None) -> None:
        torch.set_num_threads(1)
        self.config = c = config
        self.source = source or GymSource(make_env(c.env), seed=c.seed)
        layout = self.source.layout
        self.box = self.source.box
        obs_dim = self.source.obs_dim
        hyper = algorithm_config(c.algo, c.hyper)
        self.pre = build_preprocessor(obs_dim, hyper.gamma, self.source.time_limit, fast=True)
        self.algo = build_algorithm(c.algo, self.pre.out_dim, config=hyper, seed=c.seed, fast=True, **layout)
        self.policy = StreamXPolicy(self.algo)  # weights arrive through its load_state_dict
        self.spec = {
            "obs_dim": self.pre.out_dim,
            "action_dim": layout.get("action_dim"),
            "n_actions": layout.get("n_actions"),
            "algo": c.algo,
        }
        self.dir = c.run_dir / "actors" / c.actor_id
        self.feed = LearnerFeed(self.dir, c.actor_id, c.learner, self.spec, self.policy, curve=c.curve,
                                insecure=c.insecure, durability=c.durability,
                                spool_keep_bytes=c.spool_keep_bytes)
        self.stream, self.link = self.feed.stream, self.feed.link
        self.builder = StepTransitions(self.pre, self.algo)
        self.steps = 0
        self._warm = False
        self._state_error: str | None = None  # the last failure to save the state, while it lasts
        self.tick_durations: list[float] = []
        self.deadline_misses = 0
        self.lag_waits = 0
        self.state_store = CheckpointStore(self.dir / "state", keep=2)
        self._restore_state()
        self.resumed_seq = self.stream.kept_seq  # the last transition kept from before (0: a fresh actor)
        self._t0 = time.monotonic()
        self.operated = None if operator is None and intervention is None else \
            self._operated(operator or OperatorConfig(), intervention)

    def _operated(self, operator: OperatorConfig, intervention: InterventionSource | None):
        from agent.operator.episodes import EpisodeController
        from agent.operator.stepping import OperatedSteps

        if not self.source.box:
            raise ConfigError(f"a person can take over only continuous actions; {self.config.env} has "
                              f"{self.source.layout.get('n_actions')} discrete actions")
        controller = EpisodeController(operator, int(self.source.layout["action_dim"]),
                                       self.config.control_hz or 50.0, reset_robot=self.source.reset)
        return OperatedSteps(self, controller, intervention)

    @property
    def elapsed_s(self) -> float:
        """Seconds since this actor started."""
        return time.monotonic() - self._t0

    # -- persistence of the actor's own state (normalizers, counters) ----------------------------
    def _restore_state(self) -> None:
        try:
            found = self.state_store.load_latest()
        except CheckpointError as e:
            log.error("actor %s: %s; starting with fresh normalizers", self.config.actor_id, e)
            found = None
        if found is None:
            # Killed before its first save (or the save is unreadable): every transition the
            # stream kept is a step taken, so the budget counts them and is not run again in full.
            self.steps = self.stream.kept_steps()
            return
        _, tensors, state = found
        pre = {
            "obs": {
                "count": state["obs_count"],
                "mean": tensors["obs.mean"].numpy(),
                "m2": tensors["obs.m2"].numpy(),
            },
            "reward": state["reward"],
        }
        if state.get("time") is not None:
            pre["time"] = state["time"]
        self.pre.load_state_dict(pre)
        self.builder.episode, self.steps = int(state["episode"]), int(state["steps"])
        # Never reuse a sequence number: the spool normally knows the last one; the saved state is
        # a floor in case the spool lost its tail.
        self.stream.raise_floor(int(state.get("seq", 0)))
        # (Written behind, now or when saved, the saved count stands: numbers skip past
        # reservations, and steps after the save may have gone unwritten; they are taken again.)
        if "handed_seq" in state and not (self.stream.writes_behind or state.get("written_behind")):
            # Count the steps whose transitions the stream kept (it continues after ``seq``), one
            # per transition: a kill just after the save loses saved steps not yet durable (they
            # are taken again), one later keeps steps past the save (not taken twice). A run's
            # stream then holds exactly its step budget, whenever it was killed.
            kept = self.stream.kept_seq - int(state["handed_seq"])
            self.steps = max(0, self.steps + kept)

    def _save_state(self) -> None:
        pre = self.pre.state_dict()
        tensors = {
            "obs.mean": torch.from_numpy(pre["obs"]["mean"].copy()),
            "obs.m2": torch.from_numpy(pre["obs"]["m2"].copy()),
        }
        state = {
            "obs_count": pre["obs"]["count"],
            "episode": self.episode,
            "steps": self.steps,
            # The floor a restart continues after: the last durable one, never one handed out
            # that the disk may not hold (the learner would wait on the gap forever).
            "seq": self.feed.stream.durable_seq(),
            # The sequence number of the last step counted above (an operated step waits for the
            # next one before it is handed out, and has its number then).
            "handed_seq": self.seq + (self.operated.unrecorded if self.operated is not None else 0),
            "written_behind": self.stream.writes_behind,
            "time": pre.get("time"),
            "reward": {
                "trace": pre["reward"]["trace"],
                "count": pre["reward"]["count"],
                "mean": float(pre["reward"]["mean"]),
                "m2": float(pre["reward"]["m2"]),
            },
        }
        try:
            self.state_store.save(self.steps, tensors, state)
        except OSError as e:  # a full or failing disk: the loop runs on; the previous state stands
            if str(e) != self._state_error:
                log.error("actor %s: could not save its state (%s); acting on, keeping the last saved",
                          self.config.actor_id, e)
            self._state_error = str(e)
        else:
            self._state_error = None

    # -- the loop --------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Of the weights acted with; -1 until the learner's first arrive."""
        return self.feed.version

    @property
    def weight_latencies(self) -> list[float]:
        return self.feed.weight_latencies

    def step(self) -> bool:
        """One step; False when the world took no action of an episode (an operator's hold, reset)."""
        self.feed.take_weights()
        if self.operated is not None:
            acted = self.operated.step()
            self.steps += acted
            if acted and self.steps % self.config.state_every == 0:
                self._save_state()
            return acted
        b = self.builder
        if not b.in_episode:
            self.begin_episode(self.source.reset, self.config.actor_id)
        chosen = b.choose()
        raw, reward, terminated, truncated = self.source.step(chosen.action)
        self.steps += 1
        t = b.record(chosen, raw, reward, terminated, truncated, actor_id=self.config.actor_id,
                     policy_version=max(self.version, 0), timestamp=time.time(),
                     extras={"raw_reward": float(reward)})
        if t is not None:
            self.feed.emit(t)
            if t.done:
                self.feed.log_episode(EpisodeRecord(self.steps, b.episode, b.ret, b.length,
                                                    self.elapsed_s, seq=t.seq,
                                                    policy_version=self.version))
        if self.steps % self.config.state_every == 0:
            self._save_state()
        return True

    def warm_up(self) -> None:
        """Compile the acting path now, on throwaway copies of the preprocessor and algorithm.

        numba compiles (or loads from its disk cache) each kernel on its first call; done in the
        first step, that would stall a paced loop (and its heartbeat) mid-run. The copies leave
        this actor's statistics, weights and random stream untouched.
        """
        if self._warm:
            return
        c, layout = self.config, self.source.layout
        hyper = algorithm_config(c.algo, c.hyper)
        pre = build_preprocessor(self.source.obs_dim, hyper.gamma, self.source.time_limit, fast=True)
        algo = build_algorithm(c.algo, pre.out_dim, config=hyper, seed=c.seed, fast=True, **layout)
        raw = np.zeros(self.source.obs_dim)
        algo.act(pre.reset(raw))
        algo.act(pre.step(raw, 0.0, False, False)[0])
        self._warm = True

    def run(self, steps: int | None = None, on_progress=None, on_step=None, should_stop=None) -> dict:
        """Step until ``steps`` (default: the config's, or forever), ``should_stop()`` or Ctrl-C.

        ``on_step(self)`` runs after every step and while waiting for the learner (a scheduler
        heartbeat: a simulated actor held back by ``max_lag`` is alive); ``on_progress`` every 1000.
        """
        total = steps if steps is not None else self.config.steps
        if total is not None and self.steps >= total:  # steps count across restarts (kept in run_dir)
            log.warning("actor %s has taken %d steps already (kept in %s), not fewer than the %d asked: "
                        "nothing to do", self.config.actor_id, self.steps, self.config.run_dir, total)
        self.warm_up()
        self.link.start()
        pacer = Pacer(1.0 / self.config.control_hz) if self.config.control_hz else None
        try:
            while total is None or self.steps < total:
                if should_stop is not None and should_stop():
                    break
                if self.config.max_lag is not None:
                    self._wait_for_learner(self.config.max_lag, on_step)
                if pacer is not None:
                    pacer.wait()
                start = time.monotonic()
                acted = self.step()
                if pacer is not None:
                    self.tick_durations.append(time.monotonic() - start)
                    pacer.end_tick()
                    self.deadline_misses = pacer.deadline_misses
                elif not acted:
                    time.sleep(_IDLE_S)  # waiting for the operator: do not spin
                if on_step is not None:
                    on_step(self)
                if on_progress and acted and self.steps % 1000 == 0:
                    on_progress(self)
        finally:
            self._save_state()
        return self.summary()

    def _wait_for_learner(self, max_lag: int, on_wait=None) -> None:
        if self.seq - self.link.applied_seq <= max_lag:
            return
        self.stream.flush()  # the learner can only catch up on what it has been sent
        waited = 0.0
        while self.seq - self.link.applied_seq > max_lag and waited < 30.0:
            time.sleep(0.0005)
            waited += 0.0005
            self.lag_waits += 1
            if on_wait is not None:
                on_wait(self)

    def summary(self) -> dict:
        ticks = np.asarray(self.tick_durations) if self.tick_durations else np.zeros(1)
        return {
            "actor_id": self.config.actor_id,
            "steps": self.steps,
            "seq": self.seq,
            "resumed_after_seq": self.resumed_seq,
            "episodes": self.episode,
            "acked_seq": self.link.acked_seq,
            "backlog": self.link.backlog,
            "weights_version": self.version,
            "nonfinite_skipped": self.nonfinite,
            "deadline_misses": self.deadline_misses,
            "tick_p99_ms": float(np.percentile(ticks, 99) * 1e3),
            "link_errors": dict(self.link.errors),
            # a full disk under the spool: transitions dropped before they were numbered, and why
            "dropped_disk_full": self.feed.dropped_disk_full,
            "spool": "ok" if self.stream.spool_error is None else f"full: {self.stream.spool_error}",
            "weights_refused": self.feed.weights_refused,  # non-finite weights never loaded
            **({} if self.operated is None else {
                "operator_episodes": self.operated.controller.episode,
                "intervened": self.operated.intervened_total,  # transitions a person drove
                "held": self.operated.held}),
        }

    @property
    def seq(self) -> int:
        """The last sequence number handed out."""
        return self.feed.seq

    def close(self, drain_s: float = 0.0) -> None:
        self.feed.close(drain_s)
        self.source.close()
