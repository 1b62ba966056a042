"""``AgentNode`` in this process against a driver node: loop health on ``/diagnostics`` (OK while it
runs, ERROR naming the missing data when the driver goes down), the status file, and the robot
left holding when the node stops."""

from __future__ import annotations

import json
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from agent.ros.agent_node import AgentNode, read_agent_config
from agent.ros.conversions import joint_state_msg


def test_agent_node_reports_health_and_holds_on_stop(ros, spinner, wait, tmp_path):
    driver = spinner.add(ros.create_node("driver"))
    joints = driver.create_publisher(JointState, "/joint_states", 10)
    live = threading.Event()
    live.set()
    timer = driver.create_timer(0.02, lambda: live.is_set() and joints.publish(
        joint_state_msg(["elbow", "shoulder"], [0.2, 0.1], stamp=driver.get_clock().now().to_msg())))
    diagnostics: list[DiagnosticArray] = []
    trajectories: list[JointTrajectory] = []
    driver.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    driver.create_subscription(JointTrajectory, "/joint_trajectory_controller/joint_trajectory",
                               trajectories.append, 10)
    status = tmp_path / "status.json"
    overrides = {"robot.joints": ["shoulder", "elbow"], "robot.image_topic": "", "robot.control_hz": 50.0,
                 "robot.connect_timeout_s": 5.0, "policy.type": "replan", "policy.chunk_size": 10,
                 "policy.args": "{amplitude: 0.05, latency_s: 0.01}", "diagnostics_hz": 10.0,
                 "status_file": str(status)}
    params = [Parameter(k, value=v) for k, v in overrides.items()]
    node = ros.create_node("agent_node", parameter_overrides=params)
    agent = AgentNode(node, read_agent_config(node))
    spinner.add(node)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop.is_set,))
    runner.start()
    try:
        def level(lvl):
            return any(d.status[0].level == lvl for d in diagnostics)
        assert wait(lambda: level(DiagnosticStatus.OK) and len(trajectories) > 10, timeout=15)
        first = diagnostics[-1].status[0]
        assert first.name == "rill: agent_node control loop" and first.hardware_id == "/agent_node"
        assert {kv.key for kv in first.values} >= {"ticks", "holds", "robot.received", "robot.dropped_stale"}
        live.clear()  # the driver goes down
        assert wait(lambda: diagnostics[-1].status[0].level == DiagnosticStatus.ERROR, timeout=5)
        assert diagnostics[-1].status[0].message.startswith("no sensor data since")
        assert "/joint_states" in diagnostics[-1].status[0].message
        live.set()  # and comes back: the loop runs again
        assert wait(lambda: diagnostics[-1].status[0].level == DiagnosticStatus.OK, timeout=5)
    finally:
        stop.set()
        runner.join(timeout=10)
        timer.cancel()
    assert not runner.is_alive()
    snap = json.loads(status.read_text())
    assert snap["stopped"] and snap["last_published"] == "hold" and snap["ticks"] > 10
    assert snap["stale_observations"] > 0 and snap["robot"]["received"]["/joint_states"] > 5
    assert wait(lambda: len(trajectories[-1].points) == 1)  # the last command was the hold
