#!/usr/bin/env bash
# The main job, from a clean clone: set up, then `rill run` with the default run config: the HAL
# scheduler places a stream-x learner and an actor driving a simulated MuJoCo Hopper on this
# machine, shows them live, and reports the returns and the learning curve at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/rill run config/sim_hopper.yaml
