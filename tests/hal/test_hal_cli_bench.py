"""``rill hal list`` shows robots, health and lease holders; the HAL benchmark's quick mode runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from agent.console import render_inventory, worker_table
from agent.hal_cli import add_hal_commands
from hal.inventory import inventory_report
from hal.leases import LeaseStore

REPO = Path(__file__).resolve().parents[2]


def _rill_hal(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rill")
    add_hal_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["hal", *argv])


def test_rill_hal_list_shows_robots_health_and_lease_holders(tmp_path, capsys):
    fault = tmp_path / "estop"
    fault.touch()
    config = tmp_path / "run.yaml"
    config.write_text(f"""
name: lab
robots:
  - {{name: hopper-0, type: sim-mujoco}}
  - {{name: hopper-1, type: sim-mujoco, params: {{fault_file: {fault}}}}}
actors: [{{name: a, robot_type: sim-mujoco}}]
""")
    LeaseStore().acquire("hopper-0", "lab/a-0#2", ttl_s=60)
    LeaseStore().acquire("arm-from-elsewhere", "other/a-0#0", ttl_s=60)
    args = _rill_hal("list", "--config", str(config), "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in report["robots"]}
    assert rows["hopper-0"]["holder"] == "lab/a-0#2" and rows["hopper-0"]["ok"]
    assert rows["hopper-1"]["health"] == "fault" and rows["hopper-1"]["holder"] is None
    assert rows["sim-hopper"]["source"] == "discovered"
    assert rows["arm-from-elsewhere"]["holder"] == "other/a-0#0"
    console = Console(width=200, record=True)
    render_inventory(inventory_report([config]), console)
    text = console.export_text()
    for needle in ("Hosts", "Accelerators", "Robots", "hopper-0", "lab/a-0#2", "fault", "sim-hopper"):
        assert needle in text


def test_worker_table_renders_a_status_file():
    status = {
        "workers": [
            {
                "name": "actor-0",
                "role": "actor",
                "state": "running",
                "host": "h",
                "robot": "hopper-0",
                "device": "cpu",
                "pid": 42,
                "restarts": 1,
                "moves": 0,
                "heartbeat_age_s": 0.1,
                "progress": {"seq": 9},
                "detail": "",
            }
        ]
    }
    console = Console(width=200, record=True)
    console.print(worker_table(status))
    text = console.export_text()
    assert "actor-0" in text and "seq=9" in text and "running" in text


def test_hal_bench_quick_writes_measured_json(tmp_path):
    out = tmp_path / "hal.json"
    subprocess.run(
        [sys.executable, "-m", "bench.hal", "--quick", "--json", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    data = json.loads(out.read_text())
    assert data["placement"]["actors"] == 1000 and data["placement"]["median_ms"] > 0
    assert data["recovery"]["all_contiguous"] and data["recovery"]["streaming_s"]["median"] > 0
    assert data["heartbeat"]["supervision"]["running"] == data["heartbeat"]["supervision"]["workers"]
