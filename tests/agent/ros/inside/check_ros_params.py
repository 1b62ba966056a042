"""Parameters on real rclpy nodes: types checked with the parameter named, unknown names refused with
the nearest known one, and the repository's parameter files read as ``ros2 launch`` passes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from rclpy.parameter import Parameter

from agent.ros.agent_config import AgentNodeConfig
from agent.ros.agent_node import read_agent_config
from agent.ros.learner_node import LearnerNodeConfig
from agent.ros.params import ParameterError, check_unknown_parameters, declare_config, read_config
from agent.ros.sim_node import SimNodeConfig

CONFIG = Path(__file__).resolve().parents[4] / "config"


def _node(ros, name, overrides=(), params_file=None):
    args = ["--ros-args", "--params-file", str(params_file)] if params_file else None
    params = [Parameter(k, value=v) for k, v in overrides]
    return ros.create_node(name, cli_args=args, parameter_overrides=params)


def test_a_wrong_type_is_named(ros):
    node = _node(ros, "agent_node", [("robot.joints", ["a"]), ("robot.control_hz", "fast")])
    with pytest.raises(ParameterError, match=r"'robot\.control_hz' must be a number, got string 'fast'"):
        read_agent_config(node)
    node.destroy_node()


def test_an_unknown_parameter_is_named_with_the_nearest(ros):
    node = _node(ros, "agent_node", [("robot.joints", ["a"]), ("loop.blend_tick", 3)])
    with pytest.raises(ParameterError, match=r"unknown parameter 'loop\.blend_tick'.*'loop\.blend_ticks'"):
        read_agent_config(node)
    node.destroy_node()


def test_integers_for_floats_and_the_loop_rate_from_the_robot(ros):
    node = _node(ros, "agent_node", [("robot.joints", ["a", "b"]), ("robot.control_hz", 25)])
    config = read_agent_config(node)
    assert isinstance(config, AgentNodeConfig)
    assert config.robot.control_hz == 25.0 and config.loop.control_hz == 25.0
    node.destroy_node()


@pytest.mark.parametrize("name, node_name, config", [
    ("ros_agent.yaml", "agent_node", AgentNodeConfig), ("ros_sim_agent.yaml", "agent_node", AgentNodeConfig),
    ("ros_sim.yaml", "sim_node", SimNodeConfig), ("ros_learner.yaml", "learner_node", LearnerNodeConfig),
])
def test_the_parameter_files_load(ros, name, node_name, config):
    node = _node(ros, node_name, params_file=CONFIG / name)
    if config is AgentNodeConfig:
        loaded = read_agent_config(node)
        assert loaded.robot.joints
    else:
        check_unknown_parameters(node, declare_config(node, config))
        loaded = read_config(node, config)
    if config is SimNodeConfig:
        assert loaded.robot_params == {"env_id": "Reacher-v5"}  # a nested mapping in the YAML file
    node.destroy_node()
