"""``rill actor --keyboard`` from the command line: it runs on a terminal (a pseudo-terminal here),
restores it, and refuses early, naming the problem, where a person cannot take over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from agent.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_keyboard_runs_on_a_terminal_and_gives_it_back(tmp_path):
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    summary = tmp_path / "summary.json"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", "actor", "--actor-id", "person", "--env", "Pendulum-v1",
             "--run", str(tmp_path), "--steps", "30", "--keyboard", "--auto-start", "--drain", "0",
             "--durability", "none", "--learner", "tcp://127.0.0.1:9", "--summary-json", str(summary)],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, timeout=120, text=True)
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert after == before  # cbreak mode undone
    result = json.loads(summary.read_text())
    assert result["steps"] == 30 and result["intervened"] == 0 and result["operator_episodes"] == 1


def test_keyboard_needs_a_terminal(monkeypatch):
    read, write = os.pipe()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read))
    try:
        with pytest.raises(SystemExit, match="--keyboard: standard input is not a terminal"):
            main(["actor", "--actor-id", "a", "--env", "Pendulum-v1", "--keyboard"])
    finally:
        os.close(write)
        sys.stdin.close()


def test_keyboard_refuses_discrete_actions(monkeypatch, tmp_path):
    master, slave = os.openpty()
    monkeypatch.setattr(sys, "stdin", os.fdopen(slave))
    try:
        with pytest.raises(SystemExit, match="CartPole-v1 has 2 discrete actions"):
            main(["actor", "--actor-id", "a", "--env", "CartPole-v1", "--algo", "stream-q", "--keyboard",
                  "--run", str(tmp_path)])
    finally:
        sys.stdin.close()
        os.close(master)
