"""bench.walk traces a real actor -> learner -> weights loop (CI runs its --quick mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_walk_bench_quick(tmp_path):
    out = tmp_path / "walk.json"
    done = subprocess.run([sys.executable, "-m", "bench.walk", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(out.read_text())
    mods = set(data["module_list"])
    # The whole loop was traced, actor side, link, cache, learning and the weights' way back.
    for needed in ("agent.actor.steps", "agent.actor.feed", "learners.link.stream", "learners.link.spool",
                   "learners.link.client", "learners.link.server", "learners.cache.cache",
                   "learners.service.updater", "agent.actor.streamx_policy"):
        assert needed in mods, needed
    assert data["weights_version_advance"] > 0
    assert data["hand_offs"] == len(data["edge_list"]) and data["modules"] == len(mods)
    # The data path follows the transition into the stream and the weights back into the policy.
    path = data["data_path"]
    assert any(p.endswith("learners.link.stream:TransitionStream.offer") for p in path), path
    assert any(p.endswith("StreamXPolicy.load_state_dict") for p in path), path
    assert 0 < data["data_modules"] < data["modules"]
