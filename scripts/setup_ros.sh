#!/usr/bin/env bash
# Create ./.venv-ros: the ROS 2 Kilted Python wheels (rclpy with Fast DDS and the message packages
# rill uses), colcon and ament_package (to check `colcon build`), pytest (for the checks that run
# inside this venv), and rill itself (editable) with its runtime deps.
#
# A venv of its own because the ROS wheels re-exec every Python start in their venv (to set
# LD_LIBRARY_PATH). Idempotent: a second run only re-installs when this script, setup.py or
# constraints.txt changed. On a robot with a ROS 2 install, none of this is needed (README).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-ros
ROS_WHEELS=(  # Kilted: rclpy 9.1, common_interfaces 5.5
  "ros-rclpy[fastrtps]~=9.1" "ros-std-msgs~=5.5" "ros-sensor-msgs~=5.5" "ros-trajectory-msgs~=5.5"
  "ros-diagnostic-msgs~=5.5"
)
TOOLS=(colcon-core colcon-ros ros-ament-package setuptools pytest)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp=$VENV/.rill-installed
if [ ! -f "$stamp" ] || [ scripts/setup_ros.sh -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
   || [ constraints.txt -nt "$stamp" ]; then
  pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
  "${pip[@]}" install --upgrade pip
  "${pip[@]}" install -c constraints.txt "torch==2.13.0" "${ROS_WHEELS[@]}" "${TOOLS[@]}" -e .
  touch "$stamp"
fi
