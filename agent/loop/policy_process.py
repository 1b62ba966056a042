"""``PolicyProcess``: a policy that computes in a process of its own, so the control loop's clock
never shares a GIL with the model.

The loop's inference thread calls ``act()`` as on any policy; the call writes the observation's
arrays into a shared-memory arena (a file in ``/dev/shm`` mapped by both processes), sends a small
msgpack header over a Unix socket, and sleeps in ``recv`` (GIL released) until the child answers
with the chunk's header, its arrays in the child's own arena. Nothing is pickled: the child builds
its policy from a factory (``"module:function"`` and JSON keyword arguments), weights travel as
safetensors bytes, everything else as msgpack scalars.

Failures stay failures of the policy, which the loop already survives by holding: an exception in
the child comes back as a :class:`PolicyProcessError` with its message; a child that died or went
silent past ``act_timeout_s`` is killed and started again on the next ``act()`` (at most once per
``restart_backoff_s``), with the last weights it accepted. The child ends when its parent does:
its socket reaches end-of-file. (Not ``PR_SET_PDEATHSIG``: that signal follows the *thread* that
started the child, and a restart happens on the loop's inference thread, which ends with each run.)

The channel and its shared-memory arenas are in :mod:`agent.loop.shm_channel`.

    policy = PolicyProcess("agent.loop.policy_process:load_vla_policy", {"path": "pretrained:tabletop-reach"})
    loop = ControlLoop(robot, policy, LoopConfig(control_hz=50))
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.loop.shm_channel import Channel, ChannelBroken, PolicyProcessError, split_values
from policies.base import ActionChunk, Observation

log = logging.getLogger(__name__)

#: What a policy declares that a ``PolicyProcess`` shows as its own attributes (when the policy has them).
DECLARED = ("state_dim", "action_dim", "feature_dim", "action_low", "action_high", "period_s", "cameras")
OVERHEAD_KEPT = 100_000  # round-trip overheads a PolicyProcess keeps (the newest)


# -- the parent's side -----------------------------------------------------------------------------
class PolicyProcess:
    """A ``Policy`` whose ``act`` runs in a child process (see the module's docstring)."""

    def __init__(self, factory: str, kwargs: dict[str, Any] | None = None, *, threads: int = 1,
                 act_timeout_s: float = 30.0, start_timeout_s: float = 300.0,
                 restart_backoff_s: float = 1.0, avoid_cpus: list[int] | tuple[int, ...] = ()) -> None:
        self.factory, self.kwargs = factory, dict(kwargs or {})
        # the clock's CPUs (LoopConfig.cpus): the child keeps off them
        self.avoid_cpus = [int(c) for c in avoid_cpus]
        json.dumps(self.kwargs)  # refused here, by json, if it cannot travel
        self.threads, self.act_timeout_s = threads, act_timeout_s
        self.start_timeout_s, self.restart_backoff_s = start_timeout_s, restart_backoff_s
        self._lock = threading.Lock()
        self._weights: tuple[bytes, int | None] | None = None  # the last weights the child accepted
        self._pending: tuple[bytes, int | None] | None = None  # weights given while the child was down
        self._version = 0
        self.restarts = 0
        # per act, the newest OVERHEAD_KEPT: round trip minus the child's compute
        self.overhead_s: collections.deque[float] = collections.deque(maxlen=OVERHEAD_KEPT)
        self._started_at = 0.0
        self._start()

    def _start(self) -> None:
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                             os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.loop.policy_process", "--fd", str(child.fileno()),
             "--factory", self.factory, "--kwargs", json.dumps(self.kwargs), "--threads", str(self.threads),
             *(["--avoid-cpus", ",".join(map(str, self.avoid_cpus))] if self.avoid_cpus else [])],
            pass_fds=[child.fileno()], env=env)
        child.close()
        self._started_at = time.monotonic()
        self.channel = Channel(parent)
        parent.settimeout(self.start_timeout_s)
        try:
            ready, _ = self._answer()
        except PolicyProcessError:
            self._kill()
            raise
        parent.settimeout(self.act_timeout_s)
        self.chunk_size = int(ready["chunk_size"])
        self._version = int(ready["version"])
        for name, value in ready.get("declared", {}).items():
            if name in DECLARED:
                setattr(self, name, np.asarray(value, np.float32) if name in ("action_low", "action_high")
                        else value)
        self.pid = int(ready["pid"])
        self._reload()

    def _reload(self) -> None:
        """Give a (re)started child the newest weights it can take: those handed over while it was
        down (tried once: refused ones are dropped), else the last it accepted. A child that refuses
        even those is stopped, not left acting with its factory's weights."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                self._load(*pending)
                return
            except PolicyProcessError as e:
                if self.channel is None:  # the child died of them: the next start uses the last good
                    raise
                log.error("policy process: weights v%s refused on restart: %s", pending[1], e)
        if self._weights is not None:
            try:
                self._load(*self._weights)
            except PolicyProcessError:
                if self.channel is not None:
                    self._kill()
                raise

    def _exchange(self, header: dict, arrays: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
        """Send one request and read its answer; a dead or silent child is killed and reported."""
        try:
            self.channel.send(header, arrays)
        except OSError as e:
            self._down(e)
        return self._answer()

    def _down(self, e: Exception) -> None:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        why = f"exited with {code}" if code is not None else f"did not answer ({e})"
        self._kill()
        raise PolicyProcessError(f"policy process {self.proc.pid} {why}") from None

    def _answer(self) -> tuple[dict, dict[str, np.ndarray]]:
        try:
            header, arrays = self.channel.recv()
        except (EOFError, OSError, ChannelBroken) as e:  # died, silent past the timeout, or garbled
            self._down(e)
        if not header.get("ok"):
            raise PolicyProcessError(f"policy process: {header.get('error', 'failed without saying why')}")
        return header, arrays

    def _kill(self) -> None:
        """Kill the child and give up the channel; safe to call again."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.channel is not None:
            self.channel.close(unlink_peer=True)  # the child is gone: its arena is ours to remove
            self.channel = None

    def _ensure(self) -> None:
        if self.channel is not None:
            return
        wait = self._started_at + self.restart_backoff_s - time.monotonic()
        if wait > 0:
            raise PolicyProcessError(f"policy process is down; restarting in {wait:.1f} s")
        self.restarts += 1
        log.warning("restarting the policy process (restart %d)", self.restarts)
        self._start()

    # -- Policy --------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def act(self, observation: Observation) -> ActionChunk:
        arrays, scalars = split_values(dict(observation), "observation")
        with self._lock:
            self._ensure()
            began = time.monotonic()
            header, out = self._exchange({"op": "act", "values": scalars}, arrays)
            self.overhead_s.append(time.monotonic() - began - float(header.get("compute_s", 0.0)))
        v = header.get("values", {})
        extras = {k[7:]: a for k, a in out.items() if k.startswith("extras.")}
        extras.update({k[7:]: x for k, x in v.items() if k.startswith("extras.")})
        return ActionChunk(actions=out["actions"], period_s=float(v["period_s"]), version=int(v["version"]),
                           features=out.get("features"), logp=float(v["logp"]),
                           observed_at=float(v["observed_at"]), extras=extras)

    def load_state_dict(self, state: dict[str, Any], version: int | None = None) -> None:
        from learners.link.tensors import encode

        weights = encode(state)
        with self._lock:
            if self.channel is None:  # applied when the child is back (and checked then)
                self._pending = (weights, version)
                return
            self._load(weights, version)

    def _load(self, weights: bytes, version: int | None) -> None:
        """Send ``weights`` (through the arena: no size limit of the header); remembered only once the
        child has accepted them, so refused weights are never replayed on a restart."""
        answer, _ = self._exchange({"op": "load", "version": version},
                                   {"weights": np.frombuffer(weights, np.uint8)})
        self._version = int(answer["version"])
        self._weights = (weights, version)

    def state_dict(self) -> dict[str, Any]:
        from learners.link.tensors import decode

        with self._lock:
            self._ensure()
            _, arrays = self._exchange({"op": "state"})
            state, _ = decode(arrays["weights"].tobytes())
        return {k: v.clone() for k, v in state.items()}

    def close(self) -> None:
        with self._lock:
            if self.channel is None:
                return
            try:
                self.channel.send({"op": "stop"})
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()

    def __enter__(self) -> PolicyProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the child's side ------------------------------------------------------------------------------
def load_vla_policy(path: str) -> Any:
    """A factory: the saved (or ``pretrained:``) VLA at ``path`` as a policy."""
    from policies.vla import VLAPolicy, load_vla

    return VLAPolicy(load_vla(path))


def tiny_vla_policy(state_dim: int, action_dim: int, chunk_size: int, seed: int = 0) -> Any:
    """A factory: the tiny untrained VLA (same arguments, same weights) as a policy."""
    from policies.vla import VLAPolicy, tiny_vla

    return VLAPolicy(tiny_vla(state_dim, action_dim, chunk_size, seed))


def _build(factory: str, kwargs: dict) -> Any:
    module, _, name = factory.partition(":")
    if not module or not name:
        raise ValueError(f"factory {factory!r} is not 'module:function'")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _serve(channel: Channel, policy: Any) -> None:
    from learners.link.tensors import decode, encode

    while True:
        try:
            header, arrays = channel.recv()
        except EOFError:
            return  # the parent is gone
        op = header.get("op")
        try:
            if op == "act":
                began = time.monotonic()
                chunk = policy.act({**header.get("values", {}), **arrays})
                compute = time.monotonic() - began
                out = {"actions": chunk.actions}
                if chunk.features is not None:
                    out["features"] = np.asarray(chunk.features)
                extra_arrays, extra_values = split_values(chunk.extras, "chunk extra")
                out.update({"extras." + k: a for k, a in extra_arrays.items()})
                values = {"period_s": chunk.period_s, "version": int(chunk.version),
                          "logp": float(chunk.logp), "observed_at": float(chunk.observed_at),
                          **{"extras." + k: x for k, x in extra_values.items()}}
                channel.send({"ok": True, "values": values, "compute_s": compute}, out)
            elif op == "load":
                state, _ = decode(arrays["weights"].tobytes())
                policy.load_state_dict(state, header.get("version"))
                channel.send({"ok": True, "version": int(policy.version)})
            elif op == "state":
                channel.send({"ok": True}, {"weights": np.frombuffer(encode(policy.state_dict()), np.uint8)})
            elif op == "stop":
                return
            else:
                channel.send({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # the policy's fault: the parent raises it; this process serves on
            channel.send({"ok": False, "error": f"{type(e).__name__}: {e}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the policy process of a PolicyProcess (started by it)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--factory", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--avoid-cpus", default="", help="CPUs to keep off (the control loop's clock's)")
    args = parser.parse_args(argv)
    if args.avoid_cpus:  # the threads numpy started at import move; torch's, started later, inherit it
        from agent.loop.realtime import keep_off

        keep_off([int(c) for c in args.avoid_cpus.split(",")], whole_process=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s policy-process %(levelname)s %(message)s")
    channel = Channel(socket.socket(fileno=args.fd))
    try:
        import torch

        torch.set_num_threads(args.threads)
        policy = _build(args.factory, json.loads(args.kwargs))
    except Exception as e:
        why = f"could not build the policy {args.factory}: {type(e).__name__}: {e}"
        channel.send({"ok": False, "error": why})
        return 1
    declared = {}
    for name in DECLARED:
        value = getattr(policy, name, None)
        if value is not None:
            declared[name] = value.tolist() if isinstance(value, np.ndarray) else value
    channel.send({"ok": True, "chunk_size": int(policy.chunk_size), "version": int(policy.version),
                  "pid": os.getpid(), "declared": declared})
    try:
        _serve(channel, policy)
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
