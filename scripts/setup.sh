#!/usr/bin/env bash
# Create ./.venv with rill installed (editable, with test extras) and torch pinned. Idempotent:
# a second run only re-installs when setup.py or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
METAWORLD=3.1.1
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.rill-installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
    "torch==2.13.0" -e ".[test,ray,metaworld]"
  # Meta-World pins mujoco==3.3.0; rill runs it on its own MuJoCo (sim/metaworld/env.py), so
  # without its dependencies (the metaworld extra above carries the others).
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "metaworld==$METAWORLD"
  touch "$stamp"
fi
