"""The VLA residual's time input (stream-x's time feature): the control loop tells the policy how
far into its episode it is, the features carry ``-0.5 + k/T``, the learner's transitions hold the
same vector the residual acted on, and an evaluation rebuilt from the saved policy sees it too."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

import sim.robots  # noqa: F401  registers sim-tabletop
from agent.loop.episodes import drive_episodes
from agent.vla.features import NormalizedFeatures
from hal.config import RobotConfig
from hal.registry import make_robot
from policies.base import EPISODE_TICK, ActionChunk, Observation, Policy, PolicyInputError
from policies.vla import ResidualPolicy
from tests.ports import free_port

VLA = "pretrained:tabletop-reach"
LIMIT = 12  # ticks an episode lasts (the arm never reaches in so few: every episode times out)
ARM = RobotConfig("arm", "sim-tabletop", {"task": "reach", "state": "proprio", "cameras": ["front"],
                                          "colors": ["red", "blue", "yellow"], "max_delta": 1.0, "seed": 5,
                                          "episode_steps": LIMIT, "terminate_on_success": False})


class Seen(Policy):
    """Forwards to ``inner`` and keeps each call's episode tick and the features the chunk carries."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.action_dim, self.chunk_size = inner.action_dim, inner.chunk_size
        self.calls: list[tuple[int, float]] = []

    @property
    def version(self) -> int:
        return self.inner.version

    def act(self, observation: Observation) -> ActionChunk:
        chunk = self.inner.act(observation)
        self.calls.append((observation[EPISODE_TICK], float(chunk.features[-1])))
        return chunk

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state, version=None) -> None:
        self.inner.load_state_dict(state, version)


def test_the_features_end_in_the_time_since_the_episode_began(vla):
    features = NormalizedFeatures(vla, vla.feature_dim, time_limit=LIMIT)
    seen = Seen(ResidualPolicy(features, features.out_dim, scale=0.2))
    with make_robot(ARM) as robot:
        _, outcomes = drive_episodes(robot, seen, 2)
    assert len(outcomes) == 2 and not any(o.success for o in outcomes)
    # A chunk of 4 is planned every 4 ticks, from the episode's first tick; none on the tick that
    # observes the time limit (12: the episode is over); a new episode starts at 0 again.
    ticks = [t for t, _ in seen.calls]
    assert ticks == [0, 4, 8] * 2
    assert [v for _, v in seen.calls] == pytest.approx([-0.5 + t / LIMIT for t in ticks])
    assert features.out_dim == vla.feature_dim + 1


def test_past_the_limit_the_time_holds_and_a_missing_tick_is_refused(vla):
    features = NormalizedFeatures(vla, vla.feature_dim, time_limit=LIMIT)
    assert features.time({EPISODE_TICK: 3 * LIMIT}) == 0.5
    assert features.time({EPISODE_TICK: np.int64(6)}) == 0.0
    with pytest.raises(PolicyInputError, match="episode_tick"):
        features.time({})
    with pytest.raises(ValueError, match="time_limit"):
        NormalizedFeatures(vla, vla.feature_dim, time_limit=0)


def test_an_actor_learns_from_what_it_acted_on_and_its_saved_policy_evaluates_with_time(tmp_path):
    """The VLA actor with a time limit: its spec and every transition carry the time feature last,
    equal to what the residual acted on; the saved policy, rebuilt for evaluation, has it too."""
    from agent.vla.actor import VLAActor, VLAActorConfig
    from agent.vla.snapshot import POLICY_DIR, load_residual_policy
    from learners.cache import ReplayCache

    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_port()}", actor_id="arm", run_dir=tmp_path,
                            vla_path=VLA, chunk_size=4, residual_scale=0.35, pace="fast", save_every_s=0.0,
                            durability="os-buffered", time_limit=LIMIT)
    with make_robot(ARM) as robot:
        actor = VLAActor(config, robot)
        try:
            assert actor.spec["obs_dim"] == actor.vla.feature_dim + 1
            actor.run(ticks=5 * LIMIT)
        finally:
            actor.close()
    spool = ReplayCache(tmp_path / "actors" / "arm" / "spool")
    try:
        made = [t for _, t in spool.iter_transitions()]
    finally:
        spool.close()
    assert len(made) >= 10
    times = [float(t.obs[-1]) for t in made]
    # Every chunk starts a multiple of 4 ticks into its episode: -0.5, -0.5 + 4/12, -0.5 + 8/12.
    assert set(np.round(times, 5)) <= {round(-0.5 + k / LIMIT, 5) for k in (0, 4, 8)}
    assert min(times) == pytest.approx(-0.5) and max(times) == pytest.approx(-0.5 + 8 / LIMIT)
    # Within an episode the next chunk's features are 4 ticks later.
    inside = [t for t in made if not (t.terminated or t.truncated)]
    assert all(float(t.next_obs[-1]) == pytest.approx(float(t.obs[-1]) + 4 / LIMIT) for t in inside)
    rebuilt = load_residual_policy(tmp_path / "actors" / "arm" / POLICY_DIR)
    assert rebuilt.feature_dim == actor.vla.feature_dim + 1
    with make_robot(ARM) as robot:
        robot.reset()
        chunk = rebuilt.act({**robot.observe(), EPISODE_TICK: 6})
    assert float(chunk.features[-1]) == pytest.approx(0.0)
