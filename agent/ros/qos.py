"""The QoS profiles rill's publishers and subscribers use, chosen to match common ROS 2 drivers.

- Sensor streams (camera images, joint states): the sensor-data profile (best effort, keep last
  5, volatile). A best-effort subscriber matches both best-effort camera drivers and the reliable
  ``joint_state_broadcaster``; only the newest message matters, and a late one is worth nothing.
- Commands and the instruction: reliable, keep last 10, volatile. Volatile on the subscriber side
  matches any publisher durability; the instruction publisher repeats its message for latecomers.
- Diagnostics: reliable, keep last 10 (what ``diagnostic_aggregator`` expects).
"""

from __future__ import annotations


def sensor_qos():
    from rclpy.qos import qos_profile_sensor_data

    return qos_profile_sensor_data


def reliable_qos(depth: int = 10):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
