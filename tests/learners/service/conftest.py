"""Real learner and actor processes on loopback for the edge-cloud tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": "egl"}


class Procs:
    """Starts rill processes and makes sure none outlives the test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, log: str) -> subprocess.Popen:
        out = open(self.tmp / log, "ab")  # noqa: SIM115  closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", *args], cwd=REPO, env=ENV,
                                stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def learner(self, run: Path, port: int, *extra: str) -> subprocess.Popen:
        return self.start("learner", "--bind", f"tcp://127.0.0.1:{port}", "--run", str(run),
                          "--env", "Hopper-v5", "--checkpoint-every", "400", *extra, log="learner.log")

    def actor(self, run: Path, port: int, actor_id: str, steps: int, *extra: str) -> subprocess.Popen:
        return self.start("actor", "--learner", f"tcp://127.0.0.1:{port}", "--run", str(run),
                          "--env", "Hopper-v5", "--actor-id", actor_id, "--steps", str(steps),
                          "--drain", "60", "--summary-json", str(self.tmp / f"{actor_id}.json"), *extra,
                          log=f"{actor_id}.log")

    def summary(self, actor_id: str) -> dict:
        return json.loads((self.tmp / f"{actor_id}.json").read_text())

    def stop(self, proc: subprocess.Popen, timeout: float = 30) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    port = staticmethod(lambda: free_port())
    updates = staticmethod(lambda run: learner_updates(run))
    wait_for = staticmethod(lambda *a, **k: wait_for(*a, **k))

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def learner_updates(run: Path) -> int:
    """The update count the learner last reported in ``metrics/learner.csv`` (every ~2 s)."""
    path = run / "metrics" / "learner.csv"
    if not path.exists():
        return 0
    lines = path.read_text().strip().splitlines()
    return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.cleanup()


@pytest.fixture
def raw_actor():
    """``connect(service, actor_id)``: a DEALER socket that has said hello to ``service`` as
    ``actor_id`` (its welcome read), for tests that write wire messages by hand."""
    import zmq

    from learners.link.wire import encode

    ctx = zmq.Context()
    socks = []

    def connect(service, actor_id: str):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, actor_id.encode())
        sock.connect(service.endpoint)
        socks.append(sock)
        hello = {"actor_id": actor_id, "last_seq": 0, "spec": service.config.spec}
        sock.send_multipart(encode("hello", hello))
        assert sock.poll(5000), "no welcome"
        sock.recv_multipart()
        return sock

    yield connect
    for sock in socks:
        sock.close(linger=0)
    ctx.term()


def _settles(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def settles():
    """``settles(predicate, timeout=30)``: True once ``predicate()`` holds, False if it still does
    not after ``timeout`` seconds (for ``assert settles(...), details``)."""
    return _settles


class CurveKeys:
    """A learner key pair and actor key pairs; the actors' public keys allow-listed by name."""

    def __init__(self, tmp: Path, actors: tuple[str, ...]) -> None:
        from learners.link.security import CurveServer, generate_keys

        self.dir, self.allow = tmp / "keys", tmp / "allow"
        self.allow.mkdir()
        self.learner_public, learner_secret = generate_keys(self.dir, "learner")
        self.server = CurveServer(learner_secret, self.allow)
        for name in actors:
            self.add(name)

    def add(self, name: str) -> None:
        """Make ``name``'s key pair if it has none, and allow-list its public key as ``name``."""
        from learners.link.security import generate_keys

        if not (self.dir / f"{name}.key").exists():
            generate_keys(self.dir, name)
        (self.allow / f"{name}.key").write_bytes((self.dir / f"{name}.key").read_bytes())

    def secret(self, name: str) -> Path:
        return self.dir / f"{name}.key_secret"

    def client(self, name: str):
        from learners.link.security import CurveClient

        return CurveClient(self.secret(name), self.learner_public)


@pytest.fixture
def curve_keys(tmp_path):
    """``curve_keys(*actor_ids)``: a :class:`CurveKeys` with those actors allow-listed."""
    return lambda *actors: CurveKeys(tmp_path, actors)


@pytest.fixture
def curve_socket():
    """``connect(endpoint, keys, key_name, routing_id)``: a CurveZMQ DEALER holding ``key_name``'s
    secret key and using ``routing_id``, for tests that write wire messages by hand."""
    import zmq

    from learners.link.security import apply_client_curve

    ctx = zmq.Context()
    socks = []

    def connect(endpoint: str, keys: CurveKeys, key_name: str, routing_id: str):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, routing_id.encode())
        sock.setsockopt(zmq.LINGER, 0)
        apply_client_curve(sock, keys.client(key_name))
        sock.connect(endpoint)
        socks.append(sock)
        return sock

    yield connect
    for sock in socks:
        sock.close(linger=0)
    ctx.term()

