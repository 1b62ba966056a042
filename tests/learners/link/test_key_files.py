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


def test_key_files_are_checked_when_the_curve_settings_are_made(tmp_path):
    from learners.link.security import CurveClient, CurveServer, KeyFileError

    public, secret = generate_keys(tmp_path, "learner")
    actor_public, actor_secret = generate_keys(tmp_path / "actors", "a1")
    CurveServer(secret, tmp_path / "actors")
    CurveClient(actor_secret, public)
    # before: these surfaced in the link's thread (a traceback, an actor that ran on sending
    # nothing) or as a TypeError
    with pytest.raises(KeyFileError, match=r"learner.key holds no secret key \(use the .key_secret file\)"):
        CurveServer(public, tmp_path / "actors")
    with pytest.raises(KeyFileError, match=r"a1\.key is a file; give the directory"):
        CurveServer(secret, actor_public)
    with pytest.raises(KeyFileError, match="needs its secret key file and the learner's public key file"):
        CurveClient(actor_secret, None)
    with pytest.raises(FileNotFoundError, match=r"nope\.key_secret does not exist"):
        CurveClient(tmp_path / "nope.key_secret", public)


@pytest.mark.parametrize(("endpoint", "bind", "said"), [
    ("not-a-url", False, "is not an endpoint"),
    ("tcp://127.0.0.1", False, "needs a host and a port"),
    ("tcp://127.0.0.1:99999", True, "port '99999' is not a port number"),  # ZeroMQ took it mod 65536
    ("tcp://127.0.0.1:0", False, "port '0' is not a port number"),  # an actor needs the learner's port
    ("http://host:80", False, "rill speaks tcp://, ipc:// or inproc://"),
])
def test_what_is_no_endpoint_is_named(endpoint, bind, said):
    from learners.link.security import EndpointError, check_endpoint

    with pytest.raises(EndpointError, match=said):
        check_endpoint(endpoint, "actor", bind=bind)


def test_endpoints_rill_uses_pass():
    from learners.link.security import check_endpoint

    for endpoint, bind in (("tcp://127.0.0.1:5555", False), ("tcp://0.0.0.0:0", True),
                           ("tcp://*:5555", True), ("tcp://[::1]:5555", False),
                           ("ipc:///tmp/rill.sock", False), ("inproc://x", False)):
        check_endpoint(endpoint, "learner", bind=bind)


def test_a_learner_whose_port_is_taken_says_so_in_one_line(tmp_path):
    import zmq

    from learners.link.security import EndpointError
    from learners.service import LearnerConfig, LearnerService

    ctx = zmq.Context()
    holder = ctx.socket(zmq.ROUTER)
    port = holder.bind_to_random_port("tcp://127.0.0.1")
    try:
        with pytest.raises(EndpointError, match=rf"learner: cannot bind tcp://127.0.0.1:{port}: Address "
                                                r"already in use"):
            LearnerService(LearnerConfig(bind=f"tcp://127.0.0.1:{port}", run_dir=tmp_path / "l", obs_dim=4,
                                         action_dim=1, durability="none")).start()
    finally:
        holder.close(0)
        ctx.term()
