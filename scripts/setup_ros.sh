#!/usr/bin/env bash
# Create ./.venv-ros: the ROS 2 Kilted Python wheels (rclpy with Fast DDS and the message packages
# rill uses), colcon and ament_package, and rill itself (editable) with its runtime deps.
#
# A venv of its own because the ROS wheels re-exec every Python start in their venv (to set
# LD_LIBRARY_PATH). Idempotent: a second run only re-installs when this script, setup.py or
# constraints.txt changed. On a robot with a ROS 2 install, none of this is needed (README).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-ros
ROS_WHEELS=(
  "ros-rclpy[fastrtps]" ros-std-msgs ros-sensor-msgs ros-trajectory-msgs ros-diagnostic-msgs
  ros-builtin-interfaces
)
BUILD_TOOLS=(colcon-core colcon-ros ros-ament-package setuptools pytest)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp=$VENV/.rill-installed
if [ ! -f "$stamp" ] || [ scripts/setup_ros.sh -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
   || [ constraints.txt -nt "$stamp" ]; then
  pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
  "${pip[@]}" install --upgrade pip
  "${pip[@]}" install -c constraints.txt "torch==2.13.0" "${ROS_WHEELS[@]}" "${BUILD_TOOLS[@]}" -e .
  touch "$stamp"
fi
