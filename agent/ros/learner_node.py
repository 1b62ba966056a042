"""``learner_node``: rill's stream-x learner service as a ROS 2 node (``learner.launch.py``).

The learner speaks ZeroMQ to its actors, not ROS topics (an edge-cloud link crosses networks that
DDS should not); the node gives ``ros2 launch`` a way to start it next to the robot or on a GPU
host, takes its settings as ROS parameters, and publishes its health on ``/diagnostics``. SIGINT
stops it after a checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.ros.params import check_unknown_parameters, declare_config, read_config
from agent.ros.runtime import NodeRuntime, run_main
from hal.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LearnerNodeConfig:
    """The ROS parameters of ``learner_node`` (see ``rill learner --help`` for their meaning)."""

    bind: str = "tcp://127.0.0.1:5555"
    run_dir: str = "runs/ros-learner"
    obs_dim: int = 0
    action_dim: int = 0
    algo: str = "stream-ac"
    hyper: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    insecure: bool = False
    curve_secret: str = ""
    allow_keys: str = ""
    durability: str = "fsync"
    publish_every_updates: int = 100
    diagnostics_topic: str = "/diagnostics"

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.action_dim < 1:
            raise ConfigError("learner_node needs obs_dim and action_dim >= 1 (obs_dim = 2 x the agent's "
                              "observed joints, action_dim = its commanded joints), got "
                              f"{self.obs_dim} and {self.action_dim}")
        if bool(self.curve_secret) != bool(self.allow_keys):
            raise ConfigError("curve_secret and allow_keys go together (CurveZMQ)")


def build_service(config: LearnerNodeConfig):
    from learners.link.security import CurveServer
    from learners.service import LearnerConfig, LearnerService

    curve = CurveServer(Path(config.curve_secret), Path(config.allow_keys)) if config.curve_secret else None
    return LearnerService(LearnerConfig(
        bind=config.bind, run_dir=Path(config.run_dir), obs_dim=config.obs_dim, action_dim=config.action_dim,
        algo=config.algo, hyper=dict(config.hyper), seed=config.seed, insecure=config.insecure, curve=curve,
        durability=config.durability, publish_every_updates=config.publish_every_updates))


def _diagnostics(node, service):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    server, updater = service.server, service.updater
    values = {"endpoint": service.endpoint, "updates": service.algo.updates,
              "weights_version": updater.version, "actors": len(server.sessions), "received": server.received,
              "rejected": sum(server.rejected.values()), "episodes": updater.episodes}
    status = DiagnosticStatus(level=DiagnosticStatus.OK, name=f"rill: {node.get_name()} learner",
                              hardware_id=node.get_fully_qualified_name(),
                              message=f"{len(server.sessions)} actor(s), {service.algo.updates} updates",
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def _run(runtime: NodeRuntime) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from agent.ros.qos import reliable_qos

    node = rclpy.create_node("learner_node")
    try:
        fields = declare_config(node, LearnerNodeConfig)
        check_unknown_parameters(node, fields)
        config = read_config(node, LearnerNodeConfig)
        service = build_service(config).start()
        log.info("learner listening on %s; run directory %s", service.endpoint, config.run_dir)
        publisher = node.create_publisher(DiagnosticArray, config.diagnostics_topic, reliable_qos())
        node.create_timer(1.0, lambda: publisher.publish(_diagnostics(node, service)))
        try:
            runtime.spin_until_stopped(node)
        finally:
            log.info("learner stopping: writing a checkpoint")
            service.stop()
    finally:
        runtime.close(node)
    return 0


def main(args: list[str] | None = None) -> int:
    return run_main("learner_node", _run, args)


if __name__ == "__main__":
    raise SystemExit(main())
