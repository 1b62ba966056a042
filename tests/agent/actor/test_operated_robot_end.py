"""An operated stepping actor on an arm that ends its own episodes on success (the tabletop's
default): the episode is logged as the robot's success, not as a failure. A scripted operator drives
the pusher to the named block; the robot's ``success`` reaches the episode controller."""

from __future__ import annotations

from agent.actor import ActorConfig, ActorRunner
from agent.actor.episodes import read_episodes
from agent.actor.sources import RobotSource
from agent.operator.config import OperatorConfig
from agent.operator.scripted import ScriptedReachConfig, ScriptedReachOperator
from learners.service import LearnerConfig, LearnerService
from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig


def test_a_success_the_robot_reports_is_logged_as_its_success(tmp_path):
    robot = TabletopRobot("arm", TabletopRobotConfig(task="reach", cameras=[], goal_in_state="relative",
                                                     watchdog_timeout_s=None, seed=5))
    robot.connect()
    source = RobotSource(robot, episode_steps=None)
    learner = LearnerService(LearnerConfig(
        bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=source.obs_dim,
        action_dim=robot.action_spec.dim, durability="os-buffered")).start()
    # takes over at once and never hands back: the pusher goes straight to the block
    operator = ScriptedReachOperator.for_tabletop(robot, ScriptedReachConfig(
        away_steps=1, away_margin=0.0, release_distance=0.001, hand_back_steps=10_000,
        time_limit_steps=10_000))
    config = ActorConfig(learner=learner.endpoint, env="sim-tabletop", actor_id="op",
                         run_dir=tmp_path / "actor", durability="os-buffered")
    runner = ActorRunner(config, source, operator=OperatorConfig(enabled=True, wait_for_start=False),
                         intervention=operator)
    operator.controller = runner.operated.controller
    try:
        runner.link.start()
        for _ in range(600):
            runner.step()
            if runner.operated.controller.episode > 3:
                break
    finally:
        runner.close(drain_s=2.0)
        learner.stop()
        robot.disconnect()
    episodes = read_episodes(tmp_path / "actor" / "actors" / "op" / "episodes.csv")
    robot_ends = [e for e in episodes if e.ended_by == "robot"]
    assert len(robot_ends) >= 2, episodes
    assert all(e.outcome == "success" and e.success for e in robot_ends), episodes
