"""Loop health as ``diagnostic_msgs/DiagnosticArray`` (what ``rqt_robot_monitor`` and the
diagnostic aggregator read), built from one plain snapshot that ``status_file`` also records.

Level: OK while the loop runs; WARN while it holds the robot (no chunk yet, a failing policy);
ERROR when sensor data is missing or stale (the message says ``no sensor data since ...``) or the
robot is faulted. ``agent_node`` adds the ``supervision`` section (``agent.supervision``); its
entries become ``supervision.*`` values of the status.
"""

from __future__ import annotations

import json
from typing import Any

OK, WARN, ERROR = 0, 1, 2


def loop_snapshot(loop: Any, robot: Any, learner: Any = None) -> dict[str, Any]:
    """Plain data about the loop, the robot and the learner link, for diagnostics and the status file."""
    health = robot.health()
    stats = loop.stats
    problem = health.extra.get("sensor_problem", "")
    if not health.ok:
        level, message = ERROR, f"robot {health.status}: {health.detail}"
    elif problem and loop.state.startswith("holding"):
        # waiting for a first task is no sensor failure
        level = WARN if problem.startswith("no instruction yet") else ERROR
        message = problem
    elif loop.state.startswith("holding") or loop.state == "starting":
        level, message = WARN, loop.state
    else:
        level, message = OK, loop.state
    return {"level": level, "message": message, "loop_state": loop.state, "ticks": stats.ticks,
            "holds": stats.holds, "stale_observations": stats.stale_observations,
            "policy_failures": stats.policy_failures, "chunks": stats.chunks,
            "deadline_misses": stats.deadline_misses, "last_failure": stats.last_failure,
            "robot": {"status": health.status, "ok": health.ok, "detail": health.detail,
                      "watchdog_trips": health.watchdog_trips, "clamped_actions": health.clamped_actions,
                      **health.extra},
            "learner": learner.stats() if learner is not None else None}


def diagnostic_array(snapshot: dict[str, Any], name: str, hardware_id: str, stamp: Any = None):
    """A ``DiagnosticArray`` with one status for the control loop."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus()
    status.level = bytes([snapshot["level"]])
    status.name, status.hardware_id, status.message = name, hardware_id, snapshot["message"][:400]
    nested = ("robot", "learner", "supervision")
    flat = {k: v for k, v in snapshot.items() if k not in ("level", "message", *nested)}
    for section in nested:  # one key per entry: rqt_robot_monitor shows them as rows
        for k, v in (snapshot.get(section) or {}).items():
            flat[f"{section}.{k}"] = v
    status.values = [KeyValue(key=k, value=v if isinstance(v, str) else json.dumps(v))
                     for k, v in flat.items()]
    msg = DiagnosticArray()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.status = [status]
    return msg
