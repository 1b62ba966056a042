"""bench.link and bench.edge_learning keep working (CI runs their --quick modes; no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(module: str, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]  # the benchmark's own error, if it fails
    return json.loads(out.read_text())


def test_link_bench_quick(tmp_path):
    data = _run("bench.link", tmp_path / "link.json")
    for kind in ("state_transitions", "image_transitions", "camera_transitions"):
        row = data[kind]
        assert row["acked_durable_per_s"] > 0 and row["raw_zmq_per_s"] > 0 and row["ratio"] > 0
        assert row["raw_zmq_batch_frames_per_s"] > 0
        assert row["ratio_runs"] == [row["ratio"]]  # --quick: one run
    image = data["image_transitions"]
    assert image["transition_bytes"] > 96 * 96 * 3  # the image and the rest of the row
    assert image["disk_limit_per_s"] > 0 and image["ratio_to_disk_limit"] > 0
    camera = data["camera_transitions"]  # rendered frames: the actor's spool compresses them
    assert camera["transition_bytes"] * 3 < 96 * 96 * 3 and camera["spool_behind"]["ratio"] > 0
    behind = image["spool_behind"]  # the same transitions, the actor's spool writing behind the link
    assert behind["acked_durable_per_s"] > 0 and behind["ratio"] > 0
    assert behind["ratio_runs"] == [behind["ratio"]]
    for key, dtype in (("weights_10M", "float32"), ("weights_10M_float16", "float16")):
        assert data[key]["dtype"] == dtype and data[key]["repeats"] == 2
        w = data[key]
        assert 0 < w["latency_ms_min"] <= w["latency_ms_median"] <= w["latency_ms_max"]
    assert all(v > 0 for v in data["weights_codec_10M"].values())
    assert set(data["learner_updates_per_s"]) == {"1", "2"}  # --quick: 4 actors only in the full run
    assert all(v > 0 for v in data["learner_updates_per_s"].values())


def test_edge_learning_bench_quick(tmp_path):
    data = _run("bench.edge_learning", tmp_path / "edge.json")
    assert set(data) - {"_meta"} == {"train", "link-1", "link-4-stale"}
    assert all(len(v["curve_mean"]) == 20 for k, v in data.items() if k != "_meta")
