"""The live view of ``rill run`` (and ``rill status``): the worker table reads whole at 80 columns and
uses the width of a wide terminal; the success line and the end-of-run summary say how success
started and what online learning made of it."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from agent.actor.episodes import EpisodeLog, EpisodeRecord, read_run_episodes
from agent.console import compact_value, heartbeat_age, worker_table
from agent.job.summary import print_result, success_line, success_summary, success_text
from hal.run_status import WorkerStatus

REPO = Path(__file__).resolve().parents[2]

LEARNER = WorkerStatus("learner", "learner", "running", "gpu-box-1", None, "cuda:0", 4242, 0, 0, 0, 0.4,
                       {"updates": 120345, "actors": 2, "episodes": 1204})
ACTOR = WorkerStatus("actor-0", "actor", "running", "gpu-box-1", "tabletop-0", "cpu", 4243, 1, 1, 1, 0.2,
                     {"ticks": 123456, "seq": 61728, "episodes": 602, "success_rate_recent": 0.85,
                      "return_recent": 12.3456, "acked_seq": 61700, "backlog": 28, "weights_version": 317},
                     detail="moved from tabletop-1: robot fault (estop pressed)")
SHOWN = ["learner", "actor-0", "running", "updates=120,345", "actors=2", "episodes=1,204", "ticks=123,456",
         "seq=61,728", "episodes=602", "success=85%", "return=12.3", "acked=61,700", "backlog=28",
         "weights=317", "tabletop-0", "cuda:0", "moved from tabletop-1: robot fault (estop pressed)"]


def _render(status, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(worker_table(status, title="rill run vla-tabletop"))
    return console.export_text().splitlines()


def _episodes(successes: list[bool | None]) -> list[EpisodeRecord]:
    return [EpisodeRecord(step=10 * (i + 1), episode=i, ret=float(i), length=10, wall_time=float(i),
                          success=s) for i, s in enumerate(successes)]


@pytest.mark.parametrize("width", [80, 160])
def test_worker_table_reads_whole_at_80_and_160_columns(width):
    lines = _render([LEARNER, ACTOR], width)
    text = "\n".join(lines)
    assert "…" not in text, text
    assert max(len(line) for line in lines) <= width, text
    for needle in SHOWN:
        assert needle in text, f"{needle!r} not shown whole at {width} columns:\n{text}"


def test_worker_table_uses_a_wide_terminal():
    status = {"workers": [vars(LEARNER), vars(ACTOR)]}  # as rill status reads it from status.json
    at_160 = _render(status, 160)
    assert any("ticks=123,456" in line and "weights=317" in line for line in at_160), at_160  # one line
    at_200 = _render(status, 200)
    row = next(line for line in at_200 if "actor-0" in line)  # one row: placement, beat and progress
    assert "tabletop-0 · cpu @ gpu-box-1" in row and "0.2s" in row and "backlog=28" in row, at_200
    assert max(len(line) for line in at_200) <= 200


def test_a_worker_that_ended_well_shows_no_heartbeat_age():
    from dataclasses import replace

    done = replace(ACTOR, state="done", heartbeat_age_s=0.6)  # the age when it stopped, frozen
    row = next(line for line in _render([LEARNER, done], 200) if "actor-0" in line)
    assert "done" in row and "0.6s" not in row and " - " in row, row


def test_worker_table_at_80_columns_with_long_names_and_a_failure():
    failed = WorkerStatus("vla-actor-tabletop-arm-12", "actor", "failed", "ip-10-0-3-17.ec2.internal",
                          "tabletop-arm-12", "cuda:3", None, 4, 5, 2, 312.0,
                          {"busy": "compiling the stream-x kernels", "success_rate_recent": math.nan},
                          detail="heartbeat timeout after 30 s; gave up after 5 restarts (max_restarts 5)")
    lines = _render([LEARNER, ACTOR, failed], 80)
    text = "\n".join(lines)
    assert "…" not in text and max(len(line) for line in lines) <= 80, text
    for needle in ("vla-actor-tabletop-arm-12", "failed", "5/2", "5m", "success=-", "kernels",
                   "heartbeat timeout after 30 s"):
        assert needle in text, f"{needle!r}:\n{text}"


def test_progress_values_are_compact():
    assert compact_value(1204) == "1,204" and compact_value(True) == "True" and compact_value(None) == "-"
    assert compact_value(0.8461, "success_rate_recent") == "85%"
    assert compact_value(12.3456) == "12.3" and compact_value(-0.0123) == "-0.0123"
    assert compact_value(123456.7) == "123,457" and compact_value(math.nan) == "-"
    assert compact_value("cuda:0") == "cuda:0"
    ages = [heartbeat_age(a) for a in (None, 0.44, 42.0, 600.0, 9000.0)]
    assert ages == ["-", "0.4s", "42s", "10m", "2.5h"]


def test_success_summary_finds_the_worst_rolling_window_of_a_dip():
    window = 10
    start = [True] * 8 + [False] * 2  # 80% at the start
    later = [True] * 7 + [False] * 6 + [True] * 17  # a dip across the boundary of two blocks of 10
    s = success_summary(_episodes(start + later), window)
    assert (s.episodes, s.start_rate, s.start_episodes) == (40, 0.8, 10)
    assert (s.now_rate, s.now_episodes) == (1.0, 10)
    # blocks of 10 after the start would both read 70%; the worst window (episodes 17..26) is 40%
    assert s.worst_rate == pytest.approx(0.4) and s.best_rate == 1.0 and s.rolling_windows == 21
    assert s.worst_drop == pytest.approx(0.8 - 0.4)
    assert success_text(s) == ("success: start 80% (first 10 eps) -> now 100% (last 10); worst 10-episode "
                               "window 40% (drop 40 pts), best 100%; 40 episodes")


def test_success_summary_without_a_drop_and_ignoring_episodes_without_success():
    successes = [True, False] * 5 + [None] * 3 + [True] * 20  # 50% at the start, then always
    s = success_summary(_episodes(successes), window=10)
    assert (s.episodes, s.start_rate, s.rolling_windows) == (30, 0.5, 11)
    assert (s.worst_rate, s.worst_drop) == (1.0, 0.0)
    assert "never below the start" in success_text(s)


def test_success_summary_with_fewer_episodes_than_two_windows():
    s = success_summary(_episodes([True, True, False, True, False, True]), window=10)
    assert (s.start_rate, s.start_episodes, s.episodes) == (4 / 6, 6, 6)
    assert (s.now_rate, s.worst_rate, s.worst_drop, s.rolling_windows) == (None, None, None, 0)
    assert success_text(s) == "success: start 67% (first 6 eps, so far)"
    s = success_summary(_episodes([True] * 10 + [False] * 5), window=10)  # the start window and 5 more
    assert (s.start_rate, s.now_rate, s.now_episodes, s.worst_rate) == (1.0, 0.0, 5, None)
    assert success_text(s) == "success: start 100% (first 10 eps) -> now 0% (next 5); 15 episodes"


def test_success_summary_of_a_task_without_success():
    assert success_summary(_episodes([None] * 120)) is None
    assert success_summary([]) is None
    with pytest.raises(ValueError, match="window must be at least 1"):
        success_summary(_episodes([True]), window=0)


def _write_run(run: Path, successes: list[bool | None]) -> None:
    """Two actors' episode logs, their episodes interleaved in time."""
    logs = [EpisodeLog(run / "actors" / name / "episodes.csv") for name in ("actor-0", "actor-1")]
    for i, s in enumerate(successes):
        logs[i % 2].append(EpisodeRecord(step=100 * i, episode=i // 2, ret=float(i), length=100,
                                         wall_time=1000.0 + i, success=s))
    for log in logs:
        log.close()


def test_print_result_and_rill_status_show_and_write_the_success_summary(tmp_path, capsys):
    run = tmp_path / "run"
    _write_run(run, [i % 5 != 0 for i in range(50)] + [i % 10 != 0 for i in range(70)])
    (run / "metrics").mkdir()
    episodes = read_run_episodes(run)
    assert [e.ret for e in episodes] == [float(i) for i in range(120)]  # in the order they ended
    print_result(run)
    out = " ".join(capsys.readouterr().out.split())
    assert "episodic return (raw), all actors" in out
    assert "success: start 80% (first 50 eps) -> now 90% (last 50)" in out and "120 episodes" in out, out
    written = json.loads((run / "metrics" / "success_summary.json").read_text())
    assert written == json.loads(json.dumps(vars(success_summary(episodes))))
    assert (written["start_rate"], written["now_rate"], written["worst_drop"]) == (0.8, 0.9, 0.0)
    assert str(success_line(run)) in out

    status = subprocess.run([sys.executable, "-m", "agent.cli", "status", str(run)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "success: start 80% (first 50 eps) -> now 90% (last 50)" in status.stdout, status.stdout


def test_a_task_without_success_writes_no_success_summary(tmp_path, capsys):
    run = tmp_path / "run"
    _write_run(run, [None] * 30)
    print_result(run)
    out = capsys.readouterr().out
    assert "episodic return" in out and "success" not in out
    assert success_line(run) is None and not (run / "metrics" / "success_summary.json").exists()
