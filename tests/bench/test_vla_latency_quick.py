"""``python -m bench.vla_latency --quick`` keeps working (no timing assertions: CI machines vary)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from bench import vla_latency


def test_vla_latency_quick_reports_every_case_and_restores_threads(tmp_path):
    threads = torch.get_num_threads()
    out = tmp_path / "vla.json"
    vla_latency.main(["--quick", "--json", str(out)])
    report = json.loads(out.read_text())
    assert torch.get_num_threads() == threads
    for case in ("vla_1t", "vla_new_instruction_1t", "vla_residual_1t"):
        assert 0 < report[case]["median_ms"] <= report[case]["p99_ms"], case
    assert report["_meta"]["quick"] is True and report["_meta"]["image_size"] == 96
    assert report["_meta"]["params"] < 3_000_000
