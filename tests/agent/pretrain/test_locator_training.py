"""``rill locator``: frames from noisy expert episodes, labelled by the simulator with the goal's
pixel, teach a ``MarkerLocator`` to find reach's goal in held-out scenes far better than the
labels' mean does; bad configs are refused by name."""

from __future__ import annotations

import json
import os

import pytest
import yaml

pytest.importorskip("metaworld")
os.environ.setdefault("MUJOCO_GL", "egl")

from agent.pretrain.locator import LocatorTrainConfig
from hal.errors import ConfigError


def test_a_short_run_finds_the_goal_in_held_out_scenes(tmp_path):
    from agent.cli import main
    from policies.vla.locator import load_locator

    config = tmp_path / "locator.yaml"
    config.write_text(yaml.safe_dump({"out": str(tmp_path / "locator"), "tasks": ["reach-v3"],
                                      "episodes": 10, "val_episodes": 4, "max_episode_steps": 60,
                                      "steps": 120, "threads": 1}))
    assert main(["locator", str(config)]) == 0
    metrics = json.loads((tmp_path / "locator" / "metrics.json").read_text())
    assert metrics["frames"] >= 10 * 5 and metrics["val_frames"] >= 4 * 5
    assert metrics["frames_without_the_target"] == metrics["val_frames_without_the_target"] == 0  # corner2
    # the goal is drawn anew in every scene: the labels' mean pixel misses it by several pixels
    trivial = metrics["val_pixel_error_of_the_mean_pixel"]["median"]
    assert trivial > 3.0
    assert metrics["val_pixel_error"]["median"] < trivial / 2, metrics
    locator = load_locator(tmp_path / "locator")
    assert locator.config.tasks == ("reach-v3",) and locator.config.target == (36, 37, 38)


@pytest.mark.parametrize(("values", "message"), [
    ({"episodes": 0}, "locator.episodes must be a positive integer"),
    ({"target": [36, 37]}, "locator.target must be three indices"),
    ({"target": [37, 38, 39]}, "into the robot's 39-entry 'privileged' view"),
    ({"tasks": ["reach-v3", "push-v3"], "val_episodes": 1},
     r"locator.val_episodes must be at least the number of tasks \(2\)"),
    ({"seed": 0, "val_seed": 5000}, r"draw 30 of the same scenes \(e\.g\. seed 5000\).*must be other scenes"),
    ({"tasks": ["pick-plce-v3"]}, "pick-place-v3"),
    ({"camera": "corner9"}, "locator.camera must be one of corner2"),
    ({"image_height": 95}, "locator.image_height must be an even number >= 8"),
    ({"max_episode_steps": 501}, "max_episode_steps must be at most 500"),
    ({"epsiodes": 5}, "unknown field 'epsiodes'; did you mean 'episodes'"),
    ({"lr": 0}, "locator.lr must be > 0"),
])
def test_bad_configs_are_refused_by_name(tmp_path, values, message):
    config = tmp_path / "locator.yaml"
    config.write_text(yaml.safe_dump({"out": str(tmp_path / "out"), **values}))
    with pytest.raises(ConfigError, match=message):
        LocatorTrainConfig.from_yaml(config)


def test_frames_that_do_not_show_the_target_are_left_out(tmp_path):
    """The gripper's own camera mostly looks past the goal: those frames have no label to learn."""
    from agent.pretrain.locator import collect_frames

    config = LocatorTrainConfig(out=tmp_path / "out", tasks=["reach-v3"], camera="gripperPOV", episodes=3,
                                val_episodes=1, max_episode_steps=30)
    frames, pixels, unseen = collect_frames(config, 3, 0)
    assert unseen > 0 and len(frames) > 0 and len(frames) + unseen == 3 * 30 // 3
    assert (pixels >= 0).all() and (pixels < 96).all()


def test_a_config_without_out_is_refused(tmp_path):
    config = tmp_path / "locator.yaml"
    config.write_text("episodes: 3\n")
    with pytest.raises(ConfigError, match="missing out"):
        LocatorTrainConfig.from_yaml(config)
