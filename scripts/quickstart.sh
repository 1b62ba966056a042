#!/usr/bin/env bash
# The main job, from a clean clone: set up, train stream AC(lambda) on a MuJoCo task while you
# watch (about a minute on 2 CPU cores), then evaluate the learned policy and show its returns.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/rill train --config config/quickstart.yaml --overwrite
.venv/bin/rill eval --run runs/quickstart --episodes 5
