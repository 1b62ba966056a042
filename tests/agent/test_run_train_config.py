"""The ``train:`` section of a ``rill run`` config: bad values are refused by name before anything runs."""

from __future__ import annotations

import pytest

from agent.job.config import RunTrainConfig
from learners.streamx import ConfigError


def test_the_shipped_defaults_are_valid():
    train = RunTrainConfig.from_dict({"policy": "vla-residual", "chunk_size": 2, "steps_per_actor": 10})
    assert train.chunk_size == 2 and train.policy == "vla-residual"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"policy": "joystick"}, "train.policy 'joystick' is unknown; one of streamx, vla-residual"),
        ({"policy": "teleop"}, r"train.policy .teleop. is not available in rill run .* \(only in rill demos"),
        ({"policy": "replan"}, r"train.policy 'replan' is not available in rill run"),
        ({"steps_per_actor": 0}, "train.steps_per_actor must be a positive integer"),
        ({"chunk_size": 1}, "train.chunk_size must be an integer >= 2"),
        ({"chunk_size": "8"}, "train.chunk_size must be an integer >= 2"),
        ({"chunk_sise": 8}, "chunk_size"),  # an unknown key names the nearest known one
        ({"hyper": {"gamma": 1.5}}, "gamma"),
    ],
)
def test_bad_train_values_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        RunTrainConfig.from_dict(values)
