"""A Ray cluster of several nodes on this machine, for tests and benchmarks of the Ray backend.

Each node is a real ``ray start`` (the head first, then ``--address`` of the head) with a temp
directory and a ``$RILL_HOME`` of its own, so nothing is shared by accident: the nodes see each
other only through Ray, exactly as two machines would. The cluster uses Ray's token
authentication with a token made for it. ``kill_node`` SIGKILLs one node's raylet (a machine lost
mid-run); ``stop`` ends every process of the cluster, and only those.

    with LocalRayCluster(tmp_path) as cluster:
        robots = cluster.add_node("robots", resources={"robot:arm-0": 1})
        gpu = cluster.add_node("gpu", num_gpus=1, env={"RILL_STANDIN_GPUS": "standin:16"})
        os.environ.update(cluster.client_env())          # for ray.init(address=cluster.address)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class RayNode:
    """One ``ray start`` of the cluster: its name, directories and Ray node id."""

    name: str
    temp_dir: Path
    home: Path  # the node's $RILL_HOME: its runs and leases
    node_id: str = ""
    resources: dict[str, float] = field(default_factory=dict)


def _ray_exe() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


class LocalRayCluster:
    """Ray nodes on this machine that share nothing but Ray (see the module's docstring)."""

    def __init__(self, root: Path, port: int | None = None, token: str | None = None) -> None:
        from hal.backends import free_tcp_port

        self.root = Path(root)  # the nodes' homes
        # Ray's sockets live in the temp directories, and a socket path must stay under 108 bytes
        self.temp_root = Path(tempfile.mkdtemp(prefix="rill-ray-"))
        self.port = port or free_tcp_port()
        self.token = token or secrets.token_hex(16)
        self.nodes: list[RayNode] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What a process needs in its environment to join this cluster as a driver."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_ADDRESS": self.address}

    def add_node(
        self,
        name: str,
        *,
        num_cpus: float = 1,
        num_gpus: int = 0,
        resources: dict[str, float] | None = None,
        env: dict[str, str] | None = None,
        timeout_s: float = 120.0,
    ) -> RayNode:
        """Start one node (the first is the head) and wait until the cluster lists it."""
        home = self.root / name / "home"
        node = RayNode(name, self.temp_root / name, home, resources=dict(resources or {}))
        node.temp_dir.mkdir(parents=True, exist_ok=True)
        node.home.mkdir(parents=True, exist_ok=True)
        argv = [_ray_exe(), "start", f"--temp-dir={node.temp_dir}", f"--num-cpus={num_cpus}",
                f"--num-gpus={num_gpus}", "--disable-usage-stats"]
        if resources:
            argv.append("--resources=" + json.dumps(resources))
        if self.nodes:
            argv.append(f"--address={self.address}")
        else:
            argv += ["--head", f"--port={self.port}", "--include-dashboard=false"]
        full_env = {**os.environ, **self.client_env(), "RILL_HOME": str(node.home), **(env or {})}
        full_env.pop("RAY_ADDRESS")
        before = self._node_ids()
        out = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout_s)
        if out.returncode != 0:
            raise RuntimeError(f"ray start of node {name!r} failed ({out.returncode}): {out.stderr[-2000:]}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            new = self._node_ids() - before
            if new:
                node.node_id = new.pop()
                self.nodes.append(node)
                return node
            time.sleep(0.2)
        raise RuntimeError(f"node {name!r} started but its raylet never appeared")

    def node(self, name: str) -> RayNode:
        return next(n for n in self.nodes if n.name == name)

    def _processes(self, needle: str) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline:
                pids.append(int(entry.name))
        return pids

    def _node_ids(self) -> set[str]:
        """Node ids of the raylets started under this cluster's temp directories."""
        ids = set()
        for pid in self._processes(str(self.temp_root)):
            try:
                args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"/raylet"):
                ids |= {a.split(b"=", 1)[1].decode() for a in args if a.startswith(b"--node_id=")}
        return ids

    def kill_node(self, name: str) -> int:
        """SIGKILL the raylet of node ``name`` (its workers then die with it); returns its pid."""
        node = self.node(name)
        for pid in self._processes(f"--node_id={node.node_id}"):
            if (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[0].endswith(b"/raylet"):
                os.kill(pid, signal.SIGKILL)
                return pid
        raise RuntimeError(f"no raylet of node {name!r} ({node.node_id[:8]}) is running")

    def stop(self) -> None:
        """End every process of this cluster (its raylets, GCS and helpers, and what they started)."""
        import psutil

        pids = self._processes(str(self.temp_root)) + self._processes(f":{self.port} ")
        roots = []
        for pid in pids:
            try:
                roots.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        victims = set()
        for p in roots:
            try:
                victims |= {p, *p.children(recursive=True)}
            except psutil.NoSuchProcess:
                pass
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(victims), timeout=10)
        shutil.rmtree(self.temp_root, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
