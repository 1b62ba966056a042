"""``VLAActor``: a robot driven by a frozen VLA plus stream-x residual heads, learning online.

The control loop ticks at the robot's rate; the VLA infers on its own thread; each executed chunk
becomes one transition (features, residual, summed reward, next features) spooled locally and
streamed to the learner, whose newest residual-actor weights are swapped in between ticks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from agent.actor.chunks import ChunkTransitions
from agent.actor.episodes import EpisodeRecord
from agent.actor.feed import LearnerFeed
from agent.loop import ControlLoop, LoopConfig
from agent.loop.config import MIN_CHUNK
from agent.loop.control import TickRecord
from agent.operator.episodes import robot_ender
from agent.vla.features import NormalizedFeatures
from agent.vla.inputs import ResidualInputs
from agent.vla.snapshot import POLICY_DIR, capture_actor_policy, restore_actor_policy
from hal.robot import Robot
from learners.checkpoint import CheckpointError, save_checkpoint
from learners.link.security import CurveClient
from policies.vla import ResidualPolicy, VLAPolicy, load_vla, tiny_vla
from policies.vla.build import vla_digest

log = logging.getLogger(__name__)
INFERENCE = ("thread", "process")


@dataclass
class VLAActorConfig:
    learner: str
    actor_id: str
    run_dir: Path
    vla_path: str | None = None  # a saved VLA or pretrained:NAME; None: the tiny untrained one, built here
    chunk_size: int = 8  # a loaded VLA's chunks must have this many actions
    control_hz: float | None = None  # None: the robot's rate
    residual_scale: float = 1.0
    base_scale: float = 1.0  # weight of the VLA's own actions (0: an untrained head is muted)
    hidden: tuple[int, ...] = (128, 128)
    gamma: float = 0.99
    seed: int = 0
    keep_images: bool = False  # store the camera frames in the transitions (the cache keeps them)
    pace: str = "real-time"  # or "fast": a stepped simulator ticked as fast as it computes
    save_every_s: float = 30.0  # actors/<id>/policy/ is rewritten at an episode end this often
    curve: CurveClient | None = None
    insecure: bool = False
    durability: str = "fsync"
    # "thread": the VLA computes on the loop's inference thread; "process": in a process of its own
    # (agent.loop.policy_process), so nothing it does in Python can delay a tick
    inference: str = "thread"
    rt_priority: int = 0  # pace real-time: the clock thread under SCHED_FIFO (LoopConfig.rt_priority)
    cpus: tuple[int, ...] = ()  # pace real-time: the clock thread pinned to these CPUs
    # The episode time limit in ticks: the residual heads then also see stream-x's time feature
    # (agent.vla.features); None: no time input (a robot whose episodes have no limit)
    time_limit: int | None = None
    # What the residual heads see besides the time (agent.vla.inputs): the VLA's features, entries
    # of a simulator's privileged vector (a diagnostic), of the robot's state, a MarkerLocator's pixel
    inputs: ResidualInputs = field(default_factory=ResidualInputs)

    def __post_init__(self) -> None:
        if self.inference not in INFERENCE:
            raise ValueError(f"VLAActorConfig.inference must be one of {INFERENCE}, got {self.inference!r}")
        if type(self.chunk_size) is not int or self.chunk_size < MIN_CHUNK:
            raise ValueError(f"VLAActorConfig.chunk_size must be an integer >= {MIN_CHUNK}, "
                             f"got {self.chunk_size!r}")
        if self.time_limit is not None and (type(self.time_limit) is not int or self.time_limit < 1):
            raise ValueError(f"VLAActorConfig.time_limit must be a positive integer or None, "
                             f"got {self.time_limit!r}")
        self.run_dir = Path(self.run_dir)
        self.hidden = tuple(int(h) for h in self.hidden)
        if not isinstance(self.inputs, ResidualInputs):
            raise ValueError(f"VLAActorConfig.inputs must be a ResidualInputs, got {self.inputs!r}")


class VLAActor:
    def __init__(self, config: VLAActorConfig, robot: Robot) -> None:
        torch.set_num_threads(1)
        self.config = config
        self.robot = robot
        spec = robot.observation_spec
        missing = [k for k in ("state", "instruction", "reward", "terminated", "truncated") if k not in spec]
        if missing:
            raise ValueError(
                f"robot {robot.name!r} cannot drive a VLA learner: no {missing} in its observations"
            )
        state_dim, action = int(spec["state"].shape[0]), robot.action_spec
        self.vla = self._vla(state_dim, action.dim)
        try:
            self._set_up(robot, state_dim, action)
        except BaseException:  # a VLA in a process of its own must not outlive a failed start
            close = getattr(self.vla, "close", None)
            if close is not None:
                close()
            raise

    def _set_up(self, robot: Robot, state_dim: int, action) -> None:
        c = self.config
        if self.vla.state_dim != state_dim or self.vla.action_dim != action.dim:
            raise ValueError(
                f"VLA {c.vla_path}: state/action dims {self.vla.state_dim}/{self.vla.action_dim} "
                f"do not fit robot {robot.name!r} ({state_dim}/{action.dim})"
            )
        if self.vla.chunk_size != c.chunk_size:
            raise ValueError(f"VLA {c.vla_path}: chunks of {self.vla.chunk_size} actions, "
                             f"the actor was configured for {c.chunk_size}")
        self.features = NormalizedFeatures(self.vla, self.vla.feature_dim, c.base_scale,
                                           time_limit=c.time_limit, inputs=c.inputs,
                                           locator=c.inputs.load_locator(robot.observation_spec, robot.name))
        self.policy = ResidualPolicy(
            self.features,
            self.features.out_dim,
            scale=c.residual_scale,
            low=action.low,
            high=action.high,
            hidden=c.hidden,
            seed=c.seed,
        )
        self.dir = c.run_dir / "actors" / c.actor_id
        self.dir.mkdir(parents=True, exist_ok=True)
        keys = ("vla_path", "chunk_size", "control_hz", "residual_scale", "base_scale", "hidden", "gamma",
                "seed", "keep_images", "pace", "time_limit")
        self.settings = {**{k: getattr(c, k) for k in keys}, "hidden": list(c.hidden),
                         **c.inputs.saved(), "vla_sha256": vla_digest(c.vla_path) if c.vla_path else None,
                         "feature_dim": self.vla.feature_dim, "robot": robot.name}
        (self.dir / "settings.json").write_text(json.dumps(self.settings, indent=1))
        self.spec = {
            "obs_dim": self.features.out_dim,
            "action_dim": action.dim,
            "n_actions": None,
            "algo": "stream-ac",
        }
        self.feed = LearnerFeed(self.dir, c.actor_id, c.learner, self.spec, self.policy, curve=c.curve,
                                insecure=c.insecure, durability=c.durability)
        self.stream, self.link = self.feed.stream, self.feed.link
        hz = c.control_hz or robot.control_hz
        if c.pace == "fast" and not robot.stepped:
            raise ValueError(f"pace 'fast' needs a stepped simulator; robot {robot.name!r} runs in real time")
        real_time = c.pace != "fast"
        loop = LoopConfig(control_hz=hz, asynchronous=real_time, paced=real_time,
                          rt_priority=c.rt_priority if real_time else 0,
                          cpus=list(c.cpus) if real_time else [])
        self.loop = ControlLoop(robot, self.policy, loop, on_tick=self._on_tick)
        self.builder = ChunkTransitions(c.gamma, c.actor_id, c.keep_images)
        self.ticks = 0  # taken by this actor, across restarts (see _restore)
        self._restore()
        self._saved_at = time.monotonic()
        self._writer: threading.Thread | None = None
        self.ep_return, self.ep_ticks = 0.0, 0
        self.successes: list[bool] = []
        self.returns: list[float] = []
        self._t0 = time.monotonic()

    def _vla(self, state_dim: int, action_dim: int):
        c = self.config
        if c.inference == "process":
            from agent.loop.policy_process import PolicyProcess

            avoid = list(c.cpus) if c.pace != "fast" else []  # the clock's CPUs are the clock's alone
            if c.vla_path:
                return PolicyProcess("agent.loop.policy_process:load_vla_policy", {"path": c.vla_path},
                                     avoid_cpus=avoid)
            shape = {"state_dim": state_dim, "action_dim": action_dim, "chunk_size": c.chunk_size}
            return PolicyProcess("agent.loop.policy_process:tiny_vla_policy", {**shape, "seed": c.seed},
                                 avoid_cpus=avoid)
        model = load_vla(c.vla_path) if c.vla_path else tiny_vla(state_dim, action_dim, c.chunk_size, c.seed)
        return VLAPolicy(model)

    # -- per tick (control thread: nothing here may block) ----------------------------------------
    def _on_tick(self, record: TickRecord) -> None:
        self.feed.take_weights()
        self.ticks += 1
        obs = record.observation
        self.ep_return += float(obs.get("reward", 0.0))
        self.ep_ticks += 1
        t = self.builder.on_tick(record)
        if t is not None:
            self.feed.emit(t)
        if record.episode_end:
            success = bool(obs.get("success", False))
            self.successes.append(success)
            self.returns.append(self.ep_return)
            task = obs.get("task_success")  # the simulator's own verdict where a reward model judged
            self.feed.log_episode(EpisodeRecord(
                self.ticks, self.episode, self.ep_return, self.ep_ticks, time.monotonic() - self._t0,
                seq=self.seq, success=success, policy_version=self.policy.version,
                outcome="success" if success else ("failure" if obs.get("terminated") else "timeout"),
                ended_by=robot_ender(obs), task_success=None if task is None else bool(task)))
            self.ep_return, self.ep_ticks = 0.0, 0
            if time.monotonic() - self._saved_at >= self.config.save_every_s:
                self.save(background=True)

    # -- the acting state, saved (agent.vla.snapshot) ---------------------------------------------
    def save(self, background: bool = False) -> None:
        """Write ``actors/<id>/policy/``: residual weights, feature and reward statistics.

        ``background``: the state is copied here and written (with its fsyncs) on a thread of its
        own, so an episode end on the control thread never waits for the disk; skipped while the
        previous write is still going."""
        if self._writer is not None and self._writer.is_alive():
            if background:
                return
            self._writer.join()
        path = self.dir / POLICY_DIR
        tensors, state = capture_actor_policy(self.policy, self.features, self.builder.scaler, self.settings,
                                              {"ticks": self.ticks, "episode": self.episode})
        self._saved_at = time.monotonic()

        def write() -> None:
            try:
                save_checkpoint(path, tensors, state)
            except OSError as e:  # a full or failing disk must not stop the arm; the next save retries
                log.error("cannot save the actor's policy to %s: %s", path, e)

        if background:
            self._writer = threading.Thread(target=write, name="policy-writer", daemon=True)
            self._writer.start()
        else:
            write()

    def _restore(self) -> None:
        path = self.dir / POLICY_DIR
        saved: dict[str, int] = {}
        if path.exists():
            try:
                state = restore_actor_policy(path, self.policy, self.features, self.builder.scaler,
                                             self.config.vla_path)
            except CheckpointError as e:
                log.error("%s; starting with fresh feature statistics (the learner's heads will see a new "
                          "scale until they adapt), counting ticks and episodes on from the episode log", e)
            else:
                saved = state["progress"]
                log.info("restored the actor's policy from %s (weights v%d, %d feature samples)", path,
                         state["weights_version"], state["features_count"])
        self._count_on(saved)

    def _count_on(self, saved: dict[str, int]) -> None:
        """Continue the tick and episode counts of this actor's earlier life (``LearnerFeed.count_on``)."""
        self.ticks, self.builder.episode = self.feed.count_on(saved.get("ticks", 0), saved.get("episode", 0))
        if self.ticks or self.builder.episode:
            log.info("actor %s counts on from tick %d, episode %d", self.config.actor_id, self.ticks,
                     self.builder.episode)

    @property
    def episode(self) -> int:
        return self.builder.episode

    # -- running ---------------------------------------------------------------------------------
    def run(self, ticks: int | None = None, should_stop=None) -> dict:
        """Drive the robot until this actor has taken ``ticks`` ticks in all (counting those before a
        restart; None: until ``should_stop()`` or the loop stops). An actor runs once; a new
        ``VLAActor`` on the same run directory continues from its saved policy and counts."""
        if self.loop.ran:
            raise RuntimeError(f"VLAActor {self.config.actor_id}: this actor has run; make a new VLAActor "
                               "to go on (it continues from the saved policy and counts)")
        self.stream.start()
        # This actor's count spans restarts; the loop counts from its start.
        left = None if ticks is None else max(0, ticks - self.ticks)
        stats = self.loop.run(ticks=left, should_stop=should_stop)
        return self.summary(stats)

    def summary(self, stats=None) -> dict:
        stats = stats or self.loop.stats
        recent = self.successes[-20:]
        return {
            "actor_id": self.config.actor_id,
            "ticks": self.ticks,
            "seq": self.seq,
            "episodes": self.episode,
            "success_rate_recent": float(np.mean(recent)) if recent else float("nan"),
            "return_recent": float(np.mean(self.returns[-20:])) if self.returns else float("nan"),
            "acked_seq": self.link.acked_seq,
            "backlog": self.link.backlog,
            "weights_version": self.policy.version,
            "loop": stats.summary(),
        }

    @property
    def seq(self) -> int:
        return self.feed.seq

    def close(self, drain_s: float = 0.0) -> None:
        self.save()
        self.feed.close(drain_s)
        if hasattr(self.vla, "close"):  # a VLA in a process of its own
            self.vla.close()
        (self.dir / "summary.json").write_text(json.dumps(self.summary(), indent=1, default=float))
