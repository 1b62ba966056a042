"""From a run config to a run spec the scheduler can place, and the files its workers read.

A run config is a HAL run spec (robots, learner, actors, restart, heartbeat; see ``hal.runspec``)
plus a ``train:`` section. ``prepare`` validates both, works out the shapes the learner must accept
(from the robots' declared specs and, for a VLA, its config; no model is built), picks a loopback
endpoint, writes each worker group's resolved configuration into ``<run>/workers/`` and sets the
workers' commands to ``rill worker <that file>``.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.job.config import ActorWorkerConfig, LearnerWorkerConfig, RunTrainConfig, write_worker_config
from hal.errors import ConfigError, HalError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def robot_shapes(spec) -> tuple[int, int, int | None]:
    """``(state dim, action dim, episode steps)`` shared by the robots the actors will drive.

    Read from each robot's declared specs (the robot is built, never connected)."""
    import hal.registry as registry

    types = {a.robot_type for a in spec.actors if a.robot_type} | {
        r.type for r in spec.robots if any(a.robot == r.name for a in spec.actors)
    }
    shapes = set()
    for robot in spec.robots:
        if robot.type not in types:
            continue
        instance = registry.make_robot(robot)
        obs, act = instance.observation_spec, instance.action_spec
        if "state" not in obs:
            raise HalError(f"robot {robot.name!r} ({robot.type}) has no 'state' observation to learn from")
        horizon = getattr(instance, "episode_steps", None)
        if horizon is None and "env_id" in robot.params:
            from sim.envs import make_env, time_limit

            horizon = time_limit(make_env(robot.params["env_id"]))
        shapes.add((int(obs["state"].shape[0]), act.dim, horizon))
    if len(shapes) != 1:
        raise HalError(f"the actors' robots must share one observation/action shape, found {sorted(shapes)}")
    return shapes.pop()


def check_reward_model(spec, reward) -> None:
    """Refuse a reward model that cannot read the actors' robots' camera, naming the mismatch (the
    robots are built, never connected)."""
    import hal.registry as registry
    from agent.reward.robot import RewardedRobot
    from policies.reward import RewardModelError, load_reward_model

    try:
        model = load_reward_model(reward.model)
    except RewardModelError as e:
        raise ConfigError(f"train.reward.model: {e}") from None
    types = {a.robot_type for a in spec.actors if a.robot_type}
    for robot in spec.robots:
        if robot.type in types or any(a.robot == robot.name for a in spec.actors):
            instance = registry.make_robot(robot)
            if getattr(getattr(instance, "config", None), "terminate_on_success", False):
                raise ConfigError(f"robot {robot.name!r}: terminate_on_success would end episodes on the "
                                  "simulator's own success; with train.reward the reward model decides "
                                  "(set params.terminate_on_success: false)")
            try:
                RewardedRobot(instance, model, reward)
            except RewardModelError as e:
                raise ConfigError(f"train.reward.model {reward.model}: {e}") from None


def vla_feature_dim(train: RunTrainConfig, state_dim: int, action_dim: int) -> int:
    """What the residual heads learn from (the VLA's pooled features plus the state), read from the
    VLA's configuration alone."""
    from policies.vla.build import resolve_vla_path
    from policies.vla.checkpoint import read_config
    from policies.vla.config import VLAConfig

    if train.vla:
        return int(read_config(resolve_vla_path(train.vla)).policy_feature_dim)
    config = VLAConfig(state_dim=state_dim, action_dim=action_dim, chunk_size=train.chunk_size)
    return int(config.policy_feature_dim)


def worker_file(run_dir: Path, group: str, role: str) -> Path:
    """A worker group's configuration file: ``workers/learner.yaml``, ``workers/actors.NAME.yaml``."""
    return Path(run_dir) / "workers" / ("learner.yaml" if role == "learner" else f"actors.{group}.yaml")


def worker_command(group: str, role: str) -> list[str]:
    """``rill worker FILE``; the scheduler fills in ``{run_dir}``."""
    return [sys.executable, "-m", "agent.cli", "worker", str(worker_file(Path("{run_dir}"), group, role))]


@dataclass
class Job:
    """A prepared job: the run spec (its workers' commands set), the ``train:`` section, and the
    configuration files its workers will read (written once the spec is placed)."""

    spec: Any
    train: RunTrainConfig
    worker_files: dict[Path, LearnerWorkerConfig | ActorWorkerConfig]

    def write_worker_files(self) -> None:
        for path, config in self.worker_files.items():
            write_worker_config(path, config)


def prepare(path: Path) -> Job:
    """The job of the run config at ``path``, validated; nothing is written yet."""
    import sim.robots  # noqa: F401  registers the simulated robot types
    from hal.runspec import RunSpec

    raw = yaml.safe_load(Path(path).read_text()) or {}
    train = RunTrainConfig.from_dict(raw.get("train") or {})
    spec = RunSpec.from_yaml(path, ignore=("train",))
    state_dim, action_dim, horizon = robot_shapes(spec)
    if train.reward is not None:
        check_reward_model(spec, train.reward)
    obs_dim = state_dim + 1  # stream-x on the state, plus the time feature
    if train.policy == "vla-residual":
        obs_dim = vla_feature_dim(train, state_dim, action_dim)
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    run_dir = spec.directory
    learner = LearnerWorkerConfig(endpoint, obs_dim, action_dim=action_dim, algo=train.algo, seed=train.seed,
                                  hyper=dict(train.hyper))
    files: dict[Path, LearnerWorkerConfig | ActorWorkerConfig] = {
        worker_file(run_dir, "learner", "learner"): learner}
    spec.learner.command = worker_command("learner", "learner")
    for actors in spec.actors:
        config = ActorWorkerConfig(endpoint, train, episode_steps=train.episode_steps or horizon or 1000)
        files[worker_file(run_dir, actors.name, "actor")] = config
        actors.command = worker_command(actors.name, "actor")
    return Job(spec, train, files)
