"""The learner's rule for steps a person drove: an imitation step toward the person's action.

An actor streams steps whose action is always the same human action, flagged
``extras["intervened"]``, with a reward that makes the TD error mostly negative. Applied by the
learner's ``TransitionApplier`` (the real stream AC, on the torch and the compiled path), the
policy's mean moves toward that action and the learner counts the steps per actor. The same
steps unflagged (an ordinary off-policy step with an unknown behaviour probability) move it
the other way: the rule is what makes the difference.
"""

from __future__ import annotations

import numpy as np
import pytest

from learners.service.applier import TransitionApplier, imitation_weight
from learners.service.config import LearnerConfig
from learners.service.journal import AppliedJournal
from learners.service.stats import LearnerStats
from learners.streamx import algorithm_config, build_algorithm
from learners.transition import Transition

HUMAN = np.array([0.8], np.float32)
OBS_DIM = 3


def _run(tmp_path, fast: bool, flagged: bool) -> tuple[float, float, LearnerStats]:
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=OBS_DIM, action_dim=1,
                           fast=fast)
    algo = build_algorithm("stream-ac", OBS_DIM, action_dim=1, config=algorithm_config("stream-ac", {}),
                           fast=fast, seed=3)
    stats = LearnerStats(tmp_path / f"learner-{fast}-{flagged}.csv", 0)
    journal = AppliedJournal(tmp_path / f"applied-{fast}-{flagged}.log")
    applier = TransitionApplier(config, algo, journal, stats)
    rng = np.random.default_rng(0)
    probes = rng.normal(size=(32, OBS_DIM)).astype(np.float32)

    def gap() -> float:
        means = np.array([algo.act(p, deterministic=True).action for p in probes])
        return float(np.mean(np.abs(means - HUMAN)))

    before = gap()
    obs = rng.normal(size=OBS_DIM).astype(np.float32)
    for seq in range(1, 401):
        nxt = rng.normal(size=OBS_DIM).astype(np.float32)
        extras = {"raw_reward": -1.0, "intervened": True} if flagged else {"raw_reward": -1.0}
        t = Transition(obs, HUMAN.copy(), -1.0, nxt, False, seq % 50 == 0, actor_id="arm-1", seq=seq,
                       behavior_logp=float("nan"), extras=extras)
        assert applier.apply(t, 0)
        obs = nxt
    applier.journal.close()
    return before, gap(), stats


@pytest.mark.parametrize("fast", [False, True], ids=["torch", "compiled"])
def test_intervened_steps_pull_the_policy_toward_the_human_action(tmp_path, fast):
    before, after, stats = _run(tmp_path, fast, flagged=True)
    assert after < 0.6 * before, f"mean gap to the human action {before:.3f} -> {after:.3f}"
    assert stats.intervened == {"arm-1": 400}
    assert stats.row(400, 0)["intervened"] == 400
    control_before, control_after, control_stats = _run(tmp_path, fast, flagged=False)
    assert control_before == pytest.approx(before)
    # Without the rule, negative TD errors push the policy away from the person's action (in this
    # stream far enough that its weights diverge: NaN, which compares false too).
    assert not control_after < control_before, f"{control_before:.3f} -> {control_after:.3f}"
    assert control_stats.intervened == {}


def test_imitation_weight_is_the_sign_of_the_td_error():
    assert imitation_weight(-0.3) == -1.0 and imitation_weight(0.0) == 1.0 and imitation_weight(2.0) == 1.0
