"""ROS parameters <-> config dataclasses, without ROS: names, types, and errors naming the parameter.
(The same on a real rclpy node, with a YAML parameter file: ``inside/check_ros_params.py``.)"""

from __future__ import annotations

import pytest

from agent.ros.agent_config import DERIVED, AgentNodeConfig, LearnerClientConfig, PolicyConfig
from agent.ros.params import ParameterError, ParamField, build_config, coerce, param_fields, ros_default
from agent.ros.robot_config import Ros2RobotConfig
from agent.ros.sim_node import SimNodeConfig
from hal.errors import ConfigError


def _names():
    return {f.name: f for f in param_fields(AgentNodeConfig, exclude=DERIVED)}


def test_nested_configs_become_dotted_parameters():
    fields = _names()
    for name in ("robot.joints", "robot.control_hz", "robot.max_delta", "loop.blend_ticks",
                 "loop.max_obs_age_s", "policy.type", "policy.args", "learner.endpoint", "status_file"):
        assert name in fields, name
    assert "loop.control_hz" not in fields  # the loop ticks at robot.control_hz
    assert fields["robot.joints"].kind == "list[str]"
    assert fields["robot.max_delta"].kind == "float" and fields["robot.max_delta"].optional
    assert fields["policy.args"].kind == "mapping"
    assert ros_default(fields["policy.args"]) == "" and ros_default(fields["robot.joints"]) == []


def _build(**values):
    return build_config(AgentNodeConfig, values, exclude=DERIVED, fixed={"loop.control_hz": 20.0})


def test_a_config_from_parameter_values():
    cfg = _build(**{"robot.joints": ["a", "b"], "robot.control_hz": 20, "loop.blend_ticks": 3,
                    "policy.type": "reach", "policy.args": "{gain: 0.5}", "learner.actor_id": "arm-1"})
    assert isinstance(cfg.robot, Ros2RobotConfig) and cfg.robot.joints == ["a", "b"]
    assert cfg.robot.control_hz == 20.0 and isinstance(cfg.robot.control_hz, float)  # int accepted
    assert cfg.loop.control_hz == 20.0 and cfg.loop.blend_ticks == 3
    assert isinstance(cfg.policy, PolicyConfig) and cfg.policy.args == {"gain": 0.5}
    assert isinstance(cfg.learner, LearnerClientConfig) and cfg.learner.actor_id == "arm-1"


@pytest.mark.parametrize("name, value, message", [
    ("robot.control_hz", "fast", "parameter 'robot.control_hz' must be a number, got string 'fast'"),
    ("robot.joints", "a,b", "parameter 'robot.joints' must be a list of strings, got string 'a,b'"),
    ("robot.joints", ["a", 2], "parameter 'robot.joints' must be a list of strings, got list \\['a', 2\\]"),
    ("loop.blend_ticks", 2.5, "parameter 'loop.blend_ticks' must be an integer, got number 2.5"),
    ("robot.compressed", 1, "parameter 'robot.compressed' must be true or false, got integer 1"),
    ("policy.args", "[1, 2]", "parameter 'policy.args' must be a mapping"),
])
def test_a_parameter_of_the_wrong_type_is_named(name, value, message):
    values = {"robot.joints": ["a"], name: value}
    with pytest.raises(ParameterError, match=message):
        _build(**values)


def test_a_bad_value_is_named_by_its_config():
    with pytest.raises(ParameterError, match=r"robot\.joints must list the joints"):
        _build()
    with pytest.raises(ParameterError, match=r"policy.type 'rplan' is unknown \(did you mean 'replan'\?\)"):
        _build(**{"robot.joints": ["a"], "policy.type": "rplan"})
    with pytest.raises(ParameterError, match=r"robot.command must be one of"):
        _build(**{"robot.joints": ["a"], "robot.command": "effort"})
    with pytest.raises(ParameterError, match=r"loop.blend must be one of"):
        _build(**{"robot.joints": ["a"], "loop.blend": "cubic"})
    with pytest.raises(ParameterError, match=r"robot.position_lower has 1 values for 2 joints"):
        _build(**{"robot.joints": ["a", "b"], "robot.position_lower": [0.0]})


def test_coerce_handles_what_rclpy_reports_for_unset_and_empty():
    field = ParamField("robot.extra_state_joints", "list[str]", False, [])
    assert coerce(field, b"") == []  # an empty list declared untyped reads back as an empty byte array
    optional = ParamField("robot.max_delta", "float", True, None)
    assert coerce(optional, None) is None and coerce(optional, 1) == 1.0


def test_sim_node_parameters_take_the_robot_params_mapping():
    cfg = build_config(SimNodeConfig, {"robot_params": "{env_id: Pusher-v5}", "kp": 2})
    assert cfg.robot_params == {"env_id": "Pusher-v5"} and cfg.kp == 2.0
    with pytest.raises(ParameterError, match="image_encoding must be one of"):
        build_config(SimNodeConfig, {"image_encoding": "yuv422"})


def test_the_robot_waits_for_its_instruction_when_something_reads_the_task():
    from agent.ros.agent_node import _instruction_waits

    def waits(**values) -> bool | None:
        return _instruction_waits(_build(**{"robot.joints": ["a"], **values})).wait_for_instruction

    assert waits(**{"policy.type": "replan"}) is False
    assert waits(**{"policy.type": "streamx"}) is False
    assert waits(**{"policy.type": "reach"}) is True
    assert waits(**{"policy.type": "vla"}) is True
    assert waits(**{"policy.type": "streamx", "reward.model": "pretrained:tabletop-reach"}) is True
    assert waits(**{"policy.type": "streamx", "learner.endpoint": "tcp://127.0.0.1:5555",
                    "learner.keep_images": True}) is True
    assert waits(**{"policy.type": "reach", "robot.wait_for_instruction": False}) is False  # explicit wins
    with pytest.raises(ParameterError, match=r"robot\.wait_for_instruction"):
        _build(**{"robot.joints": ["a"], "robot.wait_for_instruction": "yes"})


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_the_scripted_operators_call_off_count_must_be_a_whole_number(value):
    from agent.ros.scripted_operator import ScriptedOperatorConfig

    message = rf"scripted_operator\.call_off_every must be an integer >= 0, got {value}"
    with pytest.raises(ConfigError, match=message):
        ScriptedOperatorConfig(call_off_every=value)
    with pytest.raises(ConfigError, match=r"scripted_operator\.call_off_after_s must be >= 0, got -0.5"):
        ScriptedOperatorConfig(call_off_every=3, call_off_after_s=-0.5)
