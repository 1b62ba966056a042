"""bench.feature_probe: the probe tells a feature that encodes a quantity from one that does not,
and ``--quick`` keeps working on the shipped Meta-World VLA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.feature_probe import probe_r2

REPO = Path(__file__).resolve().parents[2]


def test_the_probe_scores_what_the_features_encode_and_nothing_else():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 32))
    # Positions sit far from zero (a goal 0.85 m out): the fit's intercept must carry them.
    encoded = 0.85 + x[:, :3] @ rng.normal(size=(3, 2)) + 0.01 * rng.normal(size=(400, 2))
    unrelated = 0.6 + rng.normal(size=(400, 1))
    constant = np.full((400, 1), 0.02)
    r2 = probe_r2(x, np.hstack([encoded, unrelated, constant]), train=300)
    assert r2[0] > 0.99 and r2[1] > 0.99
    assert r2[2] < 0.05  # held out, an unrelated quantity is no better than its mean
    assert r2[3] is None  # a quantity that never moves has no R²
    with pytest.raises(ValueError, match="train=400"):
        probe_r2(x, unrelated, train=400)


def test_feature_probe_quick(tmp_path):
    pytest.importorskip("metaworld")
    out = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, "-m", "bench.feature_probe", "--quick", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    reach = report["tasks"]["reach-v3"]
    assert reach["scenes"] == 40 and reach["train"] == 30 and report["_meta"]["quick"]
    assert len(reach["goal"]["r2"]) == 3 and len(reach["object"]["r2"]) == 3
    assert reach["object"]["r2"][2] is None  # reach's puck always rests on the table
    assert "R²" in done.stdout
