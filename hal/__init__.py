"""Hardware abstraction layer: robots, accelerators and hosts as schedulable resources.

Imports nothing of rill's (see docs/design.md): ``import hal`` works without ROS 2 or Ray, and is cheap:
the names below load their module on first use.

- ``Robot`` and its specs: the robot interface (``hal.robot``, ``hal.specs``);
- ``register_robot``, ``make_robot``, ``robot_types``, ``discover_robots``: the robot registry;
- ``Host``, ``Accelerator``, ``detect_accelerators``: what a machine has;
- ``LeaseStore``: one driver per robot, with a TTL;
- ``RunSpec``, ``WorkerSpec``, ``place``, ``Scheduler``: placing and supervising a run;
- ``WorkerContext``, ``Heartbeat``: what a worker process uses.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Robot": "hal.robot",
    "RobotError": "hal.robot",
    "RobotHealth": "hal.robot",
    "Observation": "hal.robot",
    "ActionSpec": "hal.specs",
    "FeatureSpec": "hal.specs",
    "RobotConfig": "hal.config",
    "HalError": "hal.errors",
    "ConfigError": "hal.errors",
    "UnknownRobotTypeError": "hal.errors",
    "DuplicateRobotError": "hal.errors",
    "InfeasibleSpecError": "hal.errors",
    "LeaseError": "hal.errors",
    "LeaseHeldError": "hal.errors",
    "LeaseLostError": "hal.errors",
    "register_robot": "hal.registry",
    "register_discovery": "hal.registry",
    "make_robot": "hal.registry",
    "robot_types": "hal.registry",
    "robot_class": "hal.registry",
    "discover_robots": "hal.registry",
    "Accelerator": "hal.accelerators",
    "detect_accelerators": "hal.accelerators",
    "Host": "hal.host",
    "Inventory": "hal.host",
    "RobotState": "hal.host",
    "Lease": "hal.leases",
    "LeaseStore": "hal.leases",
    "RunSpec": "hal.runspec",
    "WorkerSpec": "hal.runspec",
    "ResourceRequest": "hal.runspec",
    "Assignment": "hal.placement",
    "Placement": "hal.placement",
    "place": "hal.placement",
    "Scheduler": "hal.scheduler",
    "WorkerStatus": "hal.scheduler",
    "read_run_status": "hal.scheduler",
    "WorkerContext": "hal.worker",
    "Heartbeat": "hal.worker",
    "EXIT_ROBOT_FAULT": "hal.worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
