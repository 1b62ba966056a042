"""The bodies of a job's workers, started by the scheduler as ``rill worker FILE``.

Each reads its resolved configuration (``agent.job.config``), joins the scheduler through
``hal.worker.WorkerContext`` (heartbeats, progress, the robot it leased, the stop request) and runs
the packages' own pieces: the learner service, or an actor of the policy kind the job names (a
stream-x actor stepping its robot, or the VLA actor's control loop).
"""

from __future__ import annotations

import logging
from pathlib import Path

from agent.job.config import ActorWorkerConfig, LearnerWorkerConfig, read_worker_config

log = logging.getLogger(__name__)

VLA_PROGRESS = ("ticks", "seq", "episodes", "success_rate_recent", "return_recent", "acked_seq", "backlog",
                "weights_version")


def run_worker(path: Path) -> int:
    """Run the worker whose configuration file is ``path``."""
    config = read_worker_config(path)
    if isinstance(config, LearnerWorkerConfig):
        return learner_worker(config)
    return actor_worker(config)


def learner_worker(config: LearnerWorkerConfig) -> int:
    from hal.worker import WorkerContext
    from learners.link.security import CurveServer
    from learners.service import LearnerConfig, LearnerService

    ctx = WorkerContext.from_env()
    layout = {"action_dim": config.action_dim} if config.action_dim else {"n_actions": config.n_actions}
    curve = CurveServer(Path(config.curve_secret).expanduser(), Path(config.allow_dir).expanduser()
                        ) if config.curve_secret else None
    service = LearnerService(LearnerConfig(bind=config.bind, run_dir=ctx.run_dir, obs_dim=config.obs_dim,
                                           algo=config.algo, seed=config.seed, hyper=dict(config.hyper),
                                           curve=curve, insecure=config.insecure, **layout)).start()
    log.info("learner listening on %s; run directory %s", service.endpoint, ctx.run_dir)
    with ctx:
        try:
            while not ctx.stop_requested.wait(0.2):
                ctx.beat(updates=service.algo.updates, actors=len(service.server.sessions),
                         episodes=service.updater.episodes)
        finally:
            service.stop()
    return 0


def actor_worker(config: ActorWorkerConfig) -> int:
    """An actor driving the robot the scheduler leased for it, with the job's policy kind."""
    from hal.worker import WorkerContext

    ctx = WorkerContext.from_env()
    with ctx:
        robot = ctx.open_robot()
        if config.train.reward is not None:
            from agent.reward.robot import with_reward_model

            with ctx.busy("loading the reward model"):
                robot = with_reward_model(robot, config.train.reward)
        if config.train.policy == "vla-residual":
            return _vla_actor(config, ctx, robot)
        return _streamx_actor(config, ctx, robot)


def _curve(config: ActorWorkerConfig, name: str):
    """This actor's CurveZMQ keys (``{name}`` in the secret's path is its name), or None."""
    from learners.link.security import CurveClient

    if not config.curve_secret:
        return None
    return CurveClient(Path(config.curve_secret.replace("{name}", name)).expanduser(),
                       Path(config.learner_key).expanduser())


def _drain_s(ctx) -> float:
    return 2.0 if ctx.stop_requested.is_set() else 10.0


def _streamx_actor(config: ActorWorkerConfig, ctx, robot) -> int:
    from agent.actor import ActorConfig, ActorRunner
    from agent.actor.sources import RobotSource

    t = config.train
    runner = ActorRunner(ActorConfig(learner=config.learner, env="", actor_id=ctx.name, run_dir=ctx.run_dir,
                                     algo=t.algo, hyper=dict(t.hyper), seed=t.seed, steps=t.steps_per_actor,
                                     max_lag=t.max_lag, curve=_curve(config, ctx.name),
                                     insecure=config.insecure, durability=config.spool),
                         RobotSource(robot, config.episode_steps))
    with ctx.busy("compiling the stream-x kernels"):
        runner.warm_up()

    def beat(r: ActorRunner, force: bool = False) -> None:
        ctx.beat(force=force, steps=r.steps, seq=r.seq, acked=r.link.acked_seq, backlog=r.link.backlog,
                 episodes=r.episode, weights=r.version)

    try:
        runner.run(on_step=beat, should_stop=ctx.stop_requested.is_set)
    finally:
        with ctx.busy("draining the link"):  # up to drain_s without a beat: not a hung worker
            runner.close(drain_s=_drain_s(ctx))
    beat(runner, force=True)  # the last word to the scheduler: how far this stream got, once drained
    return 0


def _vla_actor(config: ActorWorkerConfig, ctx, robot) -> int:
    from agent.vla.actor import VLAActor, VLAActorConfig

    t = config.train
    with ctx.busy("loading the VLA"):
        actor = VLAActor(VLAActorConfig(learner=config.learner, actor_id=ctx.name, run_dir=ctx.run_dir,
                                        vla_path=t.vla, chunk_size=t.chunk_size, control_hz=t.control_hz,
                                        residual_scale=t.residual_scale, base_scale=t.base_scale,
                                        hidden=t.hyper.get("hidden", (128, 128)), seed=t.seed,
                                        keep_images=t.keep_images, pace=t.pace, inference=t.inference,
                                        rt_priority=t.rt_priority, cpus=tuple(t.cpus),
                                        time_limit=config.episode_steps,
                                        inputs=t.residual_inputs,
                                        curve=_curve(config, ctx.name), insecure=config.insecure,
                                        durability=config.spool), robot)

    def progress() -> dict:
        summary = actor.summary()
        return {k: summary[k] for k in VLA_PROGRESS}

    def should_stop() -> bool:
        if actor.ticks % 25 == 0:
            ctx.beat(**progress())
        return ctx.stop_requested.is_set()

    try:
        actor.run(ticks=t.steps_per_actor, should_stop=should_stop)
    finally:
        with ctx.busy("draining the link"):
            actor.close(drain_s=_drain_s(ctx))
    ctx.beat(force=True, **progress())
    return 0
