#!/usr/bin/env bash
# Optional: a virtual environment holding LeRobot itself, so tests/agent/demos/test_lerobot_format.py
# can check that LeRobot's own LeRobotDataset loads what `rill cache export --format lerobot` writes.
# rill does not need it. torch stays the CPU build of constraints.txt: LeRobot's release pins an older
# torch, torchvision and torchcodec, so LeRobot and torchcodec go in with --no-deps (torchcodec matched
# to torch 2.13) and only LeRobot's plain-Python dependencies resolve. torchcodec, LeRobot's video
# decoder, loads the system's FFmpeg libraries: apt-get installs them.
# torchvision cannot be had: PyPI's wheels are CUDA builds (their _C.so links libtorch_cuda), which
# fail to import beside CPU torch. LeRobot's dataset reader imports torchvision but uses only
# `transforms.ToTensor` (for image features stored in Parquet) and, for its "pyav" backend,
# torchvision's video reader, so a two-file stand-in provides ToTensor and refuses the rest; video is
# decoded by torchcodec, LeRobot's default backend.
# Idempotent. The venv goes to $RILL_LEROBOT_VENV (default build/lerobot-venv, which git ignores).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${RILL_LEROBOT_VENV:-build/lerobot-venv}
LEROBOT=0.4.4       # LeRobotDataset v3.0 ("codebase_version": "v3.0")
TORCHCODEC=0.13.0   # the torchcodec of torch 2.13

if ! ldconfig -p | grep -q libavcodec; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ffmpeg >/dev/null
  else
    echo "setup_lerobot: torchcodec needs FFmpeg's libraries: sudo apt-get install ffmpeg" >&2
    exit 1
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.rill-lerobot-$LEROBOT"
if [ ! -f "$stamp" ] || [ constraints.txt -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt)
  "${pip[@]}" "torch==2.13.0"
  "${pip[@]}" --no-deps "lerobot==$LEROBOT" "torchcodec==$TORCHCODEC"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision 2>/dev/null || true
  site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  mkdir -p "$site/torchvision"
  cat >"$site/torchvision/__init__.py" <<'PY'
"""A stand-in for torchvision, written by rill's scripts/setup_lerobot.sh (see there why)."""
from torchvision import transforms  # noqa: F401

__version__ = "0.0.0+rill.stand.in"


def set_video_backend(backend):
    raise RuntimeError("torchvision is a stand-in here: use LeRobot's torchcodec video backend")
PY
  cat >"$site/torchvision/transforms.py" <<'PY'
"""ToTensor: HxWxC uint8 (PIL or numpy) -> CxHxW float32 in [0, 1], as torchvision's does."""
import numpy as np
import torch


class ToTensor:
    def __call__(self, pic):
        array = np.asarray(pic)
        if array.ndim == 2:
            array = array[:, :, None]
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        return tensor.float().div(255) if tensor.dtype == torch.uint8 else tensor.float()
PY
  # What `import lerobot.datasets.lerobot_dataset` needs besides torch (LeRobot's own ranges).
  "${pip[@]}" "datasets>=4.0,<5" "huggingface-hub>=0.34.2,<0.36" "av>=15,<16" "pandas" "pillow" \
    "accelerate>=1.10,<2" "packaging>=24.2,<26" "jsonlines" "termcolor" "deepdiff" "draccus==0.10.0" \
    "einops" "imageio[ffmpeg]" "fsspec"
  "$VENV/bin/python" -c "import torch, torchcodec.decoders, lerobot.datasets.lerobot_dataset as m; \
assert torch.__version__.startswith('2.13.0'), torch.__version__; print('lerobot', m.CODEBASE_VERSION)"
  touch "$stamp"
fi
