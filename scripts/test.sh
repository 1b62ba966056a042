#!/usr/bin/env bash
# The whole test suite, from a clean clone: set up, lint, then pytest (which also runs every
# benchmark's --quick mode). Fails if pytest collects no tests (exit code 5 is not a pass).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The ROS 2 tests run rill's nodes in a venv of their own (the ROS wheels re-exec Python in theirs).
bash scripts/setup_ros.sh
export RILL_REQUIRE_ROS=${RILL_REQUIRE_ROS:-1}
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
