"""A learner's run directory holds one learner: a restart with the same algorithm, shapes, seed and
hyperparameters resumes it; another learner there is refused by name before anything is touched
(its checkpoint failed to load by shape, or was resumed with other hyperparameters silently)."""

from __future__ import annotations

import pytest

from hal.errors import ConfigError
from learners.service import LearnerConfig
from learners.service.learner import IDENTITY_FILE, claim_learner_dir


def _config(tmp_path, **changes) -> LearnerConfig:
    values = dict(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=12, action_dim=3,
                  durability="none")
    return LearnerConfig(**{**values, **changes})


def test_a_run_directory_holds_one_learner(tmp_path):
    claim_learner_dir(_config(tmp_path))
    written = (tmp_path / "learner" / IDENTITY_FILE).read_text()
    claim_learner_dir(_config(tmp_path, publish_every_updates=7))  # the same learner, run otherwise
    for changes, said in (({"obs_dim": 18}, "obs_dim: 12 -> 18"), ({"seed": 7}, "seed: 0 -> 7"),
                          ({"hyper": {"gamma": 0.5}}, "'gamma': 0.99"),
                          ({"algo": "stream-q", "action_dim": None, "n_actions": 2}, "algo: 'stream-ac'")):
        with pytest.raises(ConfigError, match=rf"holds another learner \(.*{said}"):
            claim_learner_dir(_config(tmp_path, **changes))
    assert (tmp_path / "learner" / IDENTITY_FILE).read_text() == written  # untouched
    (tmp_path / "learner" / IDENTITY_FILE).write_text("[1, 2]")
    with pytest.raises(ConfigError, match="is not a learner's description"):
        claim_learner_dir(_config(tmp_path))
