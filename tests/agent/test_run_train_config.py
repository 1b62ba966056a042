"""The ``train:`` section of a ``rill run`` config: bad values are refused by name before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.job.config import RunTrainConfig
from learners.streamx import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_defaults_are_valid():
    train = RunTrainConfig.from_dict({"policy": "vla-residual", "chunk_size": 2, "steps_per_actor": 10})
    assert train.chunk_size == 2 and train.policy == "vla-residual" and train.pace == "real-time"
    assert RunTrainConfig.from_dict({"policy": "vla-residual"}).chunk_size == 8  # the tiny VLA's
    rt = RunTrainConfig.from_dict({"policy": "vla-residual", "rt_priority": 50, "cpus": [1]})
    assert (rt.rt_priority, rt.cpus) == (50, [1])


def test_a_shipped_vla_is_named_and_its_chunk_size_taken():
    train = RunTrainConfig.from_dict({"policy": "vla-residual", "vla": "pretrained:tabletop-reach"})
    assert train.chunk_size == 4  # what the shipped VLA plans


@pytest.mark.parametrize(
    "values, message",
    [
        ({"policy": "joystick"}, "train.policy 'joystick' is unknown; one of streamx, vla-residual"),
        ({"policy": "teleop"}, r"train.policy .teleop. is not available in rill run .* \(only in rill demos"),
        ({"policy": "replan"}, r"train.policy 'replan' is not available in rill run"),
        ({"steps_per_actor": 0}, "train.steps_per_actor must be a positive integer"),
        ({"chunk_size": 1}, "train.chunk_size must be an integer >= 2"),
        ({"chunk_size": "8"}, "train.chunk_size must be an integer >= 2"),
        ({"vla": "pretrained:tabletop-reach", "chunk_size": "4"}, "train.chunk_size must be an integer >= 2, "
                                                                   "got '4'"),
        ({"cpus": [0], "pace": "fast"}, r"train.cpus \[0\] needs train.pace: real-time"),
        ({"chunk_sise": 8}, "chunk_size"),  # an unknown key names the nearest known one
        ({"hyper": {"gamma": 1.5}}, "gamma"),
        ({"pace": "ludicrous"}, r"train.pace must be one of \('real-time', 'fast'\), got 'ludicrous'"),
        ({"rt_priority": 99}, r"train.rt_priority must be an integer from 0 \(off\) to 98, got 99"),
        ({"cpus": [-1]}, r"train.cpus must be a list of CPU numbers \(0 to 1023\), got \[-1\]"),
        ({"rt_priority": 50, "pace": "fast"}, r"train.rt_priority needs train.pace: real-time"),
        ({"vla": "pretrained:tabletop-push"}, r"train.vla 'pretrained:tabletop-push': no shipped VLA "
                                              r"'tabletop-push'; rill ships "
                                              r"\['metaworld-mt10', 'tabletop-reach'\]"),
        ({"vla": "/nonexistent/vla"}, r"train.vla '/nonexistent/vla': /nonexistent/vla: no config.json"),
        # a value of the wrong type, where no check of the section's own names it: refused before any
        # worker starts (it used to reach the workers, which failed on it at every restart)
        ({"max_lag": "lots"}, r"train.max_lag must be int or null, got 'lots'"),
        ({"seed": "banana"}, r"train.seed must be int, got 'banana'"),
        ({"keep_images": "maybe"}, r"train: keep_images must be true or false, got 'maybe'"),
        ({"hyper": {"lamda": "abc"}}, r"stream-ac.lamda must be a number, got 'abc'"),
        ({"hyper": {"adaptive": "maybe"}}, r"stream-ac.adaptive must be true or false, got 'maybe'"),
        # ranges a worker found only after it started, at every restart (the reason in its log alone)
        ({"residual_scale": -1}, r"train.residual_scale must be > 0, got -1"),
        ({"residual_scale": float("inf")}, r"train.residual_scale must be finite"),
        ({"base_scale": -2}, r"train.base_scale must be >= 0, got -2"),
        ({"control_hz": 0}, r"train.control_hz must be > 0, got 0"),
        ({"episode_steps": -5}, r"train.episode_steps must be >= 1, got -5"),
        ({"max_lag": -1}, r"train.max_lag must be >= 0, got -1"),
        ({"seed": -1}, r"train.seed must be >= 0, got -1"),
        ({"algo": "stream-td"}, r"train.algo 'stream-td' only predicts values; rill run's actors need one "
                                r"that controls: stream-ac, stream-q, stream-sarsa"),
        ({"vla": "pretrained:tabletop-reach", "chunk_size": 2},
         r"train.chunk_size 2 does not match the chunks of train.vla 'pretrained:tabletop-reach' "
         r"\(4 actions\)"),
    ],
)
def test_bad_train_values_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        RunTrainConfig.from_dict(values)


def _run_config(path, **train) -> None:
    import yaml

    spec = yaml.safe_load((REPO / "config" / "sim_hopper.yaml").read_text())
    spec["train"].update(train)
    path.write_text(yaml.safe_dump(spec))


def test_a_run_directory_continues_its_own_run_and_refuses_another(tmp_path):
    from agent.job.supervise import claim_run_dir

    run, config = tmp_path / "run", tmp_path / "run.yaml"
    _run_config(config)
    claim_run_dir(run, config)
    assert (run / "config.yaml").read_text() == config.read_text()
    kept = run / "checkpoints" / "step_000000020000"  # what a learner left there
    kept.mkdir(parents=True)
    _run_config(config, steps_per_actor=120_000, max_lag=None)  # more steps, other pacing: the same run
    claim_run_dir(run, config)
    assert kept.exists() and "120000" in (run / "config.yaml").read_text()
    before = (run / "config.yaml").read_text()
    _run_config(config, seed=1, hyper={"lamda": 0.5})  # another run: its learner would resume this one's
    with pytest.raises(ConfigError, match=rf"run directory {run} holds a different run \(train.seed: 0 -> 1; "
                                          r"train.hyper: \{\} -> \{'lamda': 0.5\}\); give this one another "
                                          r"run_dir, or pass --overwrite"):
        claim_run_dir(run, config)
    assert kept.exists() and (run / "config.yaml").read_text() == before  # nothing touched
    claim_run_dir(run, config, overwrite=True)
    assert not kept.exists() and "lamda" in (run / "config.yaml").read_text()
