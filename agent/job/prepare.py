"""From a run config to a run spec the scheduler can place, and the files its workers read.

A run config is a HAL run spec (robots, learner, actors, restart, heartbeat; see ``hal.runspec``)
plus a ``train:`` section. ``prepare`` validates both, works out the shapes the learner must accept
(from the robots' declared specs and, for a VLA, its config; no model is built) and sets the
workers' commands to ``rill worker <run>/workers/<group file>``. Once the scheduler has placed the
workers, ``Job.worker_files`` resolves the link (loopback on one host; the learner's host address
and the ``link:`` section's keys across hosts) and gives each group's file, which the scheduler
writes on each worker's own host.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.job.config import (
    ActorWorkerConfig,
    LearnerWorkerConfig,
    RunLinkConfig,
    RunTrainConfig,
    worker_config_text,
)
from hal.config import nearest, read_yaml_mapping
from hal.errors import ConfigError, HalError
from learners.cache.records import IMAGE_PREFIX


def actor_robots(spec) -> list[tuple[Any, Any]]:
    """``(robot config, robot)`` of every robot the actors may drive: those of an actor's
    ``robot_type`` and of the type of a robot an actor names (its spares too), each built once,
    never connected, for the checks below to read its declared specs."""
    import hal.registry as registry

    listed_types, listed_names = sorted({r.type for r in spec.robots}), [r.name for r in spec.robots]
    for group in spec.actors:
        wanted, listed, what = ((group.robot_type, listed_types, "robot of type") if group.robot_type
                                else (group.robot, listed_names, "robot named"))
        if wanted not in listed:  # rill run reads the learner's shapes from the robots listed
            near = nearest(str(wanted), listed)
            hint = f"; did you mean {near!r}?" if near else f"; listed: {', '.join(listed) or 'none'}"
            raise ConfigError(f"actors group {group.name!r}: no {what} {wanted!r} among the run's "
                              f"robots{hint}")
    types = {a.robot_type for a in spec.actors if a.robot_type} | {
        r.type for r in spec.robots if any(a.robot == r.name for a in spec.actors)
    }
    return [(robot, registry.make_robot(robot)) for robot in spec.robots if robot.type in types]


def robot_shapes(robots: list[tuple[Any, Any]]) -> tuple[int, int, int | None]:
    """``(state dim, action dim, episode steps)`` shared by the robots the actors will drive
    (``actor_robots``), read from their declared specs."""
    shapes = set()
    for robot, instance in robots:
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


def check_reward_model(robots: list[tuple[Any, Any]], reward) -> None:
    """Refuse a reward model that cannot read the actors' robots' camera (``actor_robots``), naming
    the mismatch."""
    from agent.reward.robot import RewardedRobot
    from policies.reward import RewardModelError, load_reward_model

    try:
        model = load_reward_model(reward.model)
    except RewardModelError as e:
        raise ConfigError(f"train.reward.model: {e}") from None
    for robot, instance in robots:
        if getattr(getattr(instance, "config", None), "terminate_on_success", False):
            raise ConfigError(f"robot {robot.name!r}: terminate_on_success would end episodes on the "
                              "simulator's own success; with train.reward the reward model decides "
                              "(set params.terminate_on_success: false)")
        try:
            RewardedRobot(instance, model, reward)
        except RewardModelError as e:
            raise ConfigError(f"train.reward.model {reward.model}: {e}") from None


def check_residual_inputs(robots: list[tuple[Any, Any]], train: RunTrainConfig, state_dim: int) -> None:
    """Refuse state entries beyond the robots' state, privileged entries beyond (or without) the
    robots' ``privileged`` vector, and a locator that cannot be loaded or that reads another camera
    or frame size than the actors' robots render, before any worker starts (in the actor they would
    fail at every start or hold the robot at every tick)."""
    if train.state_inputs and max(train.state_inputs) >= state_dim:
        raise ConfigError(f"train.state_inputs: index {max(train.state_inputs)} is outside the robots' "
                          f"{state_dim}-entry state")
    if not (train.locator or train.privileged_inputs):
        return
    locator = None
    if train.locator:
        from policies.vla.locator import LocatorError, load_locator

        try:
            locator = load_locator(train.locator).config
        except LocatorError as e:
            raise ConfigError(f"train.locator: {e}") from None
    for robot, instance in robots:
        observation_spec = instance.observation_spec
        if train.privileged_inputs:
            truth = observation_spec.get("privileged")
            if truth is None:
                raise ConfigError(f"train.privileged_inputs: robot {robot.name!r} ({robot.type}) has no "
                                  "'privileged' observation (only a simulator gives one)")
            if max(train.privileged_inputs) >= truth.shape[0]:
                raise ConfigError(f"train.privileged_inputs: index {max(train.privileged_inputs)} is outside "
                                  f"the {truth.shape[0]}-entry 'privileged' vector of robot {robot.name!r}")
        if locator is not None:
            problem = locator.frame_problem(observation_spec, robot.name)
            if problem is not None:
                raise ConfigError(f"train.locator {train.locator} {problem}")


def check_vla_cameras(robots: list[tuple[Any, Any]], train: RunTrainConfig) -> None:
    """Refuse robots that do not render every camera the VLA reads, before any worker starts: its
    actor would refuse every observation, and the run end having learned nothing."""
    from policies.vla.build import resolve_vla_path
    from policies.vla.checkpoint import read_config
    from policies.vla.config import VLAConfig

    cameras = list(read_config(resolve_vla_path(train.vla)).camera_names if train.vla
                   else VLAConfig().camera_names)
    for robot, instance in robots:
        has = sorted(k.removeprefix(IMAGE_PREFIX) for k in instance.observation_spec
                     if k.startswith(IMAGE_PREFIX))
        missing = [c for c in cameras if c not in has]
        if missing:
            raise ConfigError(f"robot {robot.name!r} ({robot.type}) renders cameras {has}, but the VLA "
                              f"({train.vla or 'tiny'}) reads {cameras}: give the robot camera(s) "
                              f"{', '.join(missing)}")


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


def worker_file(group: str, role: str) -> str:
    """A worker group's configuration file, relative to the run directory: ``workers/learner.yaml``,
    ``workers/actors.NAME.yaml``."""
    return "workers/" + ("learner.yaml" if role == "learner" else f"actors.{group}.yaml")


def worker_command(group: str, role: str) -> list[str]:
    """``rill worker FILE``; the scheduler fills in ``{run_dir}`` (the run directory on its host)."""
    return [sys.executable, "-m", "agent.cli", "worker", "{run_dir}/" + worker_file(group, role)]


@dataclass
class Job:
    """A prepared job: the run spec (its workers' commands set), the ``train:`` and ``link:``
    sections, and its workers' configurations (their endpoint set once the workers are placed)."""

    spec: Any
    train: RunTrainConfig
    link: RunLinkConfig
    learner: LearnerWorkerConfig
    actors: dict[str, ActorWorkerConfig]  # per actors group

    def endpoint(self, placement, backend) -> tuple[str, bool]:
        """Where the learner listens (and actors connect) for this placement; True when it leaves
        loopback. Refuses plain TCP off loopback unless ``link.insecure``."""
        learner_host = placement.assignments["learner"].host
        across = any(a.host != learner_host for a in placement.assignments.values())
        address = backend.address(learner_host) if across else "127.0.0.1"
        endpoint = f"tcp://{address}:{self.link.port or backend.free_port(learner_host)}"
        if across and not (self.link.curve or self.link.insecure):
            hosts = sorted({a.host for a in placement.assignments.values()})
            raise ConfigError(f"the learner and its actors are placed on different hosts "
                              f"({', '.join(hosts)}), "
                              f"so the link leaves loopback ({endpoint}): give link.learner_secret, "
                              "link.allow_dir, link.actor_secret and link.learner_public (CurveZMQ keys, "
                              "`rill keys generate`), or link.insecure: true on a trusted network")
        return endpoint, across

    def move_check(self, placement):
        """For ``Scheduler.move_check``: an actor may move to a spare robot on another host only if the
        link already leaves loopback (the endpoint is fixed at the start)."""
        learner_host = placement.assignments["learner"].host
        across = any(a.host != learner_host for a in placement.assignments.values())

        def check(worker: str, host: str) -> str:
            if across or host == learner_host:
                return ""
            return (f"the link stays on loopback on {learner_host}, so {worker} cannot reach the learner "
                    f"from {host}")

        return check

    def worker_files(self, placement, backend) -> dict[str, dict[str, str]]:
        """Each worker group's configuration file (group: {path in the run directory: YAML}) for
        ``placement`` on ``backend``, handed to ``Scheduler.start``."""
        endpoint, across = self.endpoint(placement, backend)
        link = self.link if across else RunLinkConfig()
        learner = replace(self.learner, bind=endpoint, curve_secret=link.learner_secret,
                          allow_dir=link.allow_dir, insecure=link.insecure)
        files = {"learner": {worker_file("learner", "learner"): worker_config_text(learner)}}
        for group, config in self.actors.items():
            config = replace(config, learner=endpoint, curve_secret=link.actor_secret,
                             learner_key=link.learner_public, insecure=link.insecure,
                             spool=self.link.spool)  # (on one host too: it is about the actor's disk)
            files[group] = {worker_file(group, "actor"): worker_config_text(config)}
        return files


def prepare(path: Path) -> Job:
    """The job of the run config at ``path``, validated; nothing is written yet."""
    import sim.robots  # noqa: F401  registers the simulated robot types
    from hal.runspec import RunSpec

    raw = read_yaml_mapping(path, "run config")
    train = RunTrainConfig.from_dict(raw.get("train") or {})
    link = RunLinkConfig.from_dict(raw.get("link") or {})
    spec = RunSpec.from_yaml(path, ignore=("train", "link"))
    robots = actor_robots(spec)  # built once, never connected: their declared specs are read
    state_dim, action_dim, horizon = robot_shapes(robots)
    if train.reward is not None:
        check_reward_model(robots, train.reward)
    if train.policy == "vla-residual":
        check_vla_cameras(robots, train)
        check_residual_inputs(robots, train, state_dim)
    obs_dim = state_dim + 1  # stream-x on the state, plus the time feature
    steps = train.episode_steps or horizon or 1000
    if train.policy == "vla-residual":
        # The VLA's features (unless train.residual_sees_vla is false), the privileged and state
        # entries, the locator's pixel, and the time feature where episodes have a limit (a robot
        # without one, and no train.episode_steps: none): what agent.vla.features.NormalizedFeatures makes
        steps = train.episode_steps or horizon
        obs_dim = train.residual_inputs.dim(vla_feature_dim(train, state_dim, action_dim), steps)
    learner = LearnerWorkerConfig("", obs_dim, action_dim=action_dim, algo=train.algo, seed=train.seed,
                                  hyper=dict(train.hyper))
    spec.learner.command = worker_command("learner", "learner")
    actors = {}
    for group in spec.actors:
        actors[group.name] = ActorWorkerConfig("", train, episode_steps=steps)
        group.command = worker_command(group.name, "actor")
    return Job(spec, train, link, learner, actors)
