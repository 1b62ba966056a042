#!/usr/bin/env bash
# The main job, from a clean clone: set up, then `rill run config/sim_tabletop_vla.yaml`: the HAL
# scheduler places a stream-x learner and an actor driving a simulated MuJoCo tabletop arm with the
# pretrained tiny VLA rill ships plus stream-x residual heads, shows them live, and reports returns,
# success rates (at the start, at the end, the worst window between) and curves at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
.venv/bin/rill run config/sim_tabletop_vla.yaml
