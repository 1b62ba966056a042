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

An arena's file is removed as soon as the other process has mapped it, so nothing is left in
``/dev/shm`` when either process is killed; its space is reserved when it is made, so a full
``/dev/shm`` is an error here, not a ``SIGBUS`` later.

    policy = PolicyProcess("agent.loop.policy_process:load_vla_policy", {"path": "pretrained:tabletop-reach"})
    loop = ControlLoop(robot, policy, LoopConfig(control_hz=50))
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import logging
import math
import mmap
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from policies.base import ActionChunk, Observation

log = logging.getLogger(__name__)

#: What a policy declares that a ``PolicyProcess`` shows as its own attributes (when the policy has them).
DECLARED = ("state_dim", "action_dim", "feature_dim", "action_low", "action_high", "period_s", "cameras")
ARENA_BYTES = 4 << 20  # grown (a new arena) when a message's arrays need more
MAX_HEADER = 64 << 20
OVERHEAD_KEPT = 100_000  # round-trip overheads a PolicyProcess keeps (the newest)
_KINDS = "biuf"  # array dtypes that cross: bool, signed, unsigned, float
_LEN = struct.Struct(">I")


class PolicyProcessError(RuntimeError):
    """The policy process failed to answer (its exception, its death, its silence)."""


class _ChannelBroken(PolicyProcessError):
    """The channel between the processes cannot be read on."""


# -- shared arrays ---------------------------------------------------------------------------------
class Arena:
    """A file in shared memory, mapped, that carries one message's arrays at a time. The writer
    lays them out (``put``) and sends the layout; the reader copies them out (``get``)."""

    def __init__(self, path: Path, size: int, create: bool) -> None:
        self.path, self.size = Path(path), size
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if create:
                try:
                    os.posix_fallocate(fd, 0, size)
                except OSError as e:
                    os.close(fd)
                    fd = -1
                    self.path.unlink(missing_ok=True)
                    raise PolicyProcessError(f"shared-memory arena {self.path} ({size} bytes): "
                                             f"{e.strerror or e} (is {self.path.parent} full?)") from None
            else:
                self.size = size = os.fstat(fd).st_size
            self.map = mmap.mmap(fd, size)
        finally:
            if fd >= 0:
                os.close(fd)

    @classmethod
    def create(cls, size: int) -> Arena:
        root = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
        return cls(root / f"rill-policy-{os.getpid()}-{uuid.uuid4().hex[:8]}", size, create=True)

    def put(self, arrays: dict[str, np.ndarray]) -> list[list] | None:
        """Write ``arrays``; their layout, or None when they do not fit (the caller grows)."""
        layout, offset = [], 0
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            offset = (offset + 63) & ~63
            if offset + array.nbytes > self.size:
                return None
            self.map[offset : offset + array.nbytes] = array.tobytes() if array.nbytes else b""
            layout.append([name, array.dtype.str, list(array.shape), offset])
            offset += array.nbytes
        return layout

    def get(self, layout: Any) -> dict[str, np.ndarray]:
        """The arrays ``layout`` names, copied out; a layout that does not fit the arena is refused."""
        out = {}
        if not isinstance(layout, list):
            raise PolicyProcessError(f"array layout must be a list, got {type(layout).__name__}")
        for entry in layout:
            try:
                name, dtype, shape, offset = entry
                dtype, shape = np.dtype(dtype), tuple(int(d) for d in shape)
            except (TypeError, ValueError) as e:
                raise PolicyProcessError(f"bad array layout entry {entry!r}: {e}") from None
            if dtype.kind not in _KINDS or any(d < 0 for d in shape):
                raise PolicyProcessError(f"array {name!r}: dtype {dtype} / shape {shape} cannot cross")
            nbytes = dtype.itemsize * math.prod(shape)
            if not 0 <= offset <= self.size - nbytes:
                raise PolicyProcessError(f"array {name!r}: {nbytes} bytes at {offset} outside the arena")
            out[name] = np.frombuffer(self.map, dtype, math.prod(shape), offset).reshape(shape).copy()
        return out

    def close(self, unlink: bool = False) -> None:
        self.map.close()
        if unlink:
            self.path.unlink(missing_ok=True)


class _Channel:
    """Length-prefixed msgpack messages over a stream socket, with this side's arena for arrays."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.arena: Arena | None = None
        self.peer: Arena | None = None

    def send(self, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        if arrays:
            if self.arena is None:
                self.arena = Arena.create(ARENA_BYTES)
            layout = self.arena.put(arrays)
            if layout is None:  # too big for this arena: a larger one, named in the header
                need = sum(a.nbytes + 64 for a in arrays.values())
                old = self.arena
                self.arena = Arena.create(max(2 * old.size, 2 * need))
                old.close(unlink=True)
                layout = self.arena.put(arrays)
            header = {**header, "arena": str(self.arena.path), "arrays": layout}
        body = msgpack.packb(header, use_bin_type=True)
        self.sock.sendall(_LEN.pack(len(body)) + body)

    def recv(self) -> tuple[dict, dict[str, np.ndarray]]:
        """One message; ``_ChannelBroken`` when the stream cannot be read on (the caller gives the
        channel up: a message cut short leaves the next one unreadable)."""
        (size,) = _LEN.unpack(self._exact(_LEN.size))
        if size > MAX_HEADER:
            raise _ChannelBroken(f"message of {size} bytes, over {MAX_HEADER}")
        try:
            header = msgpack.unpackb(self._exact(size), raw=False)
        except (ValueError, msgpack.UnpackException) as e:
            raise _ChannelBroken(f"unreadable message: {e}") from None
        if not isinstance(header, dict):
            raise _ChannelBroken(f"message is a {type(header).__name__}, not a map")
        arrays = {}
        if "arrays" in header:
            path = str(header.get("arena", ""))
            if self.peer is None or str(self.peer.path) != path:
                if self.peer is not None:
                    self.peer.close()
                try:
                    self.peer = Arena(Path(path), 0, create=False)
                except OSError as e:
                    raise _ChannelBroken(f"arena {path}: {e.strerror or e}") from None
                self.peer.path.unlink(missing_ok=True)  # both have it mapped: no name left to leak
            arrays = self.peer.get(header["arrays"])
        return header, arrays

    def _exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            part = self.sock.recv(min(n - got, 1 << 20))
            if not part:
                raise EOFError("the other process closed the channel")
            chunks.append(part)
            got += len(part)
        return b"".join(chunks)

    def close(self, unlink_peer: bool = False) -> None:
        """Close both arenas (unlinking this side's, and the peer's when it cannot any more)."""
        for arena, unlink in ((self.arena, True), (self.peer, unlink_peer)):
            if arena is not None:
                arena.close(unlink=unlink)
        self.sock.close()


def _split(values: dict[str, Any], where: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays to the arena, scalars and strings to the header; anything else is refused by name."""
    arrays, scalars = {}, {}
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in _KINDS:
                raise PolicyProcessError(f"{where} {key!r}: arrays of dtype {value.dtype} cannot cross")
            arrays[key] = value
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        elif value is None or isinstance(value, (bool, int, float, str)):
            scalars[key] = value
        else:
            raise PolicyProcessError(f"{where} {key!r}: a {type(value).__name__} cannot cross to the policy "
                                     "process (arrays, numbers, strings only)")
    return arrays, scalars


# -- the parent's side -----------------------------------------------------------------------------
class PolicyProcess:
    """A ``Policy`` whose ``act`` runs in a child process (see the module's docstring)."""

    def __init__(self, factory: str, kwargs: dict[str, Any] | None = None, *, threads: int = 1,
                 act_timeout_s: float = 30.0, start_timeout_s: float = 300.0,
                 restart_backoff_s: float = 1.0) -> None:
        self.factory, self.kwargs = factory, dict(kwargs or {})
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
             "--factory", self.factory, "--kwargs", json.dumps(self.kwargs), "--threads", str(self.threads)],
            pass_fds=[child.fileno()], env=env)
        child.close()
        self._started_at = time.monotonic()
        self.channel = _Channel(parent)
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
        except (EOFError, OSError, _ChannelBroken) as e:  # died, silent past the timeout, or garbled
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
        arrays, scalars = _split(dict(observation), "observation")
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


def _serve(channel: _Channel, policy: Any) -> None:
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
                extra_arrays, extra_values = _split(chunk.extras, "chunk extra")
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s policy-process %(levelname)s %(message)s")
    channel = _Channel(socket.socket(fileno=args.fd))
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
