"""``rill keys generate``: a key pair is never replaced by accident, and its secret is never readable
by others."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth

from learners.link.security import KeysExistError, generate_keys

REPO = Path(__file__).resolve().parents[3]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_key_pair_is_kept_unless_replacing_is_asked_for(tmp_path):
    public, secret = generate_keys(tmp_path, "learner")
    assert (_mode(public), _mode(secret)) == (0o644, 0o600)
    first = zmq.auth.load_certificate(str(secret))
    with pytest.raises(KeysExistError, match=r"learner.key.*a key pair named 'learner' exists; replacing it "
                                             r"locks out every peer that trusts its public key"):
        generate_keys(tmp_path, "learner")
    assert zmq.auth.load_certificate(str(secret)) == first  # untouched
    generate_keys(tmp_path, "learner", replace=True)
    assert zmq.auth.load_certificate(str(secret)) != first
    assert (_mode(public), _mode(secret)) == (0o644, 0o600)


def test_the_cli_refuses_in_one_line_and_replaces_with_replace(tmp_path):
    def keys(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agent.cli", "keys", "generate", str(tmp_path), "--name",
                               "robot-a", *extra], cwd=REPO, capture_output=True, text=True, timeout=120)

    assert keys().returncode == 0
    before = (tmp_path / "robot-a.key").read_bytes()
    again = keys()
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "pass --replace" in again.stderr + again.stdout
    assert (tmp_path / "robot-a.key").read_bytes() == before
    assert keys("--replace").returncode == 0
    assert (tmp_path / "robot-a.key").read_bytes() != before
