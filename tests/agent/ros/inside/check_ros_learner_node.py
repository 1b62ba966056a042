"""``learner_node``'s parts on a real node: parameters to a running learner service, and its health
as a ``DiagnosticArray``."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter

from agent.ros.learner_node import LearnerNodeConfig, _diagnostics, build_service
from agent.ros.params import ParameterError, check_unknown_parameters, declare_config, read_config


def _config(ros, **overrides):
    params = [Parameter(k, value=v) for k, v in overrides.items()]
    node = ros.create_node("learner_node", parameter_overrides=params)
    try:
        check_unknown_parameters(node, declare_config(node, LearnerNodeConfig))
        return node, read_config(node, LearnerNodeConfig)
    except Exception:
        node.destroy_node()
        raise


def test_learner_node_serves_and_reports(ros, tmp_path):
    node, config = _config(ros, bind="tcp://127.0.0.1:0", run_dir=str(tmp_path / "learner"), obs_dim=4,
                           action_dim=2, durability="os-buffered", hyper="{lamda: 0.9}")
    service = build_service(config).start()
    try:
        assert service.endpoint.startswith("tcp://127.0.0.1:")
        status = _diagnostics(node, service).status[0]
        assert status.level == DiagnosticStatus.OK and status.name == "rill: learner_node learner"
        values = {kv.key: kv.value for kv in status.values}
        assert values["actors"] == "0" and values["endpoint"] == service.endpoint
    finally:
        service.stop()
        node.destroy_node()
    assert (tmp_path / "learner" / "checkpoints").is_dir()


def test_learner_node_needs_the_shapes(ros):
    with pytest.raises(ParameterError, match="obs_dim and action_dim >= 1"):
        _config(ros, action_dim=2)[1]
