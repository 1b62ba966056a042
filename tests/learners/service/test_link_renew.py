"""An actor's connection wedges where ZeroMQ does not recover by itself, and the link replaces its
socket: the learner is restarted on the same port (a new identity) while the actor's reconnect
lands on a peer that accepts the TCP connection and never answers (a half-open connection, a hung
host or middlebox: ZeroMQ alone waits out its 30 s handshake timeout). Hellos go unanswered, the
link opens a fresh socket, reaches the new learner, and every transition arrives and is applied
exactly once; the transitions in flight at the cut are sent a second time, once, and no others."""

from __future__ import annotations

import collections
import socket
import threading
import time

from agent.actor import ActorConfig, ActorRunner
from learners.link.client import RENEW_AFTER_S
from learners.link.wire import TRANSITIONS
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from tests.ports import free_port

ZMQ_HANDSHAKE_S = 30.0  # ZeroMQ's default ZMQ_HANDSHAKE_IVL: how long it waits on a deaf peer


class Proxy:
    """A TCP proxy on loopback forwarding each connection to ``upstream``. ``swallow(n)``: the next
    ``n`` connections are accepted and then never answered (what they send is read and dropped);
    ``cut()`` closes every connection forwarded so far."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._swallow = 0
        self._forwarded: list[socket.socket] = []
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self.swallowed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def swallow(self, n: int) -> None:
        with self._lock:
            self._swallow = n

    def cut(self) -> None:
        with self._lock:
            doomed, self._forwarded = self._forwarded, []
        for s in doomed:
            _close(s)

    def close(self) -> None:
        self._stop.set()
        self.cut()
        for s in [*self._held, self.listener]:
            _close(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                deaf = self._swallow > 0
                self._swallow -= deaf
            if deaf:
                self.swallowed += 1
                self._held.append(conn)
                threading.Thread(target=_drain, args=(conn,), daemon=True).start()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._forwarded += [conn, up]
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    _close(src)
    _close(dst)


def _drain(conn: socket.socket) -> None:
    try:
        while conn.recv(1 << 16):
            pass
    except OSError:
        pass


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def _spy_on_transitions(link) -> list[tuple[int, int]]:
    """Record ``(first_seq, last_seq)`` of every transitions message ``link`` sends."""
    sends: list[tuple[int, int]] = []
    send = link._send

    def spy(sock, kind: str, fields: dict, frames=()) -> bool:
        sent = send(sock, kind, fields, frames)
        if sent and kind == TRANSITIONS:
            sends.append((fields["first_seq"], fields["last_seq"]))
        return sent

    link._send = spy
    return sends


def test_a_wedged_connection_gets_a_fresh_socket_and_nothing_is_lost_or_applied_twice(tmp_path, settles):
    port = free_port()
    run = tmp_path / "run"
    config = LearnerConfig(bind=f"tcp://127.0.0.1:{port}", run_dir=run, obs_dim=12, action_dim=3)
    proxy = Proxy(port)
    service = LearnerService(config).start()
    actor = ActorRunner(ActorConfig(learner=f"tcp://127.0.0.1:{proxy.port}", env="Hopper-v5", actor_id="edge",
                                    run_dir=run, control_hz=400, durability="os-buffered"))
    sends = _spy_on_transitions(actor.link)
    done = threading.Event()
    thread = threading.Thread(target=actor.run, kwargs={"should_stop": done.is_set})
    thread.start()
    try:
        # (once the learner learns, and so has compiled its kernels: its stop is then prompt)
        assert settles(lambda: actor.link.acked_seq >= 300 and service.algo.updates > 0, timeout=120)
        first_identity = service.server.learner_id
        proxy.swallow(1)  # the actor's next connection reaches a peer that never answers
        proxy.cut()
        cut_at = time.monotonic()
        service.stop()  # and the learner restarts on the same port, with a new identity
        service = LearnerService(config).start()
        assert service.server.learner_id != first_identity
        assert settles(lambda: not actor.link.connected, timeout=30)
        in_flight = range(actor.link.acked_seq + 1, max(last for _, last in sends) + 1)  # to resend
        assert settles(lambda: actor.link.connected, timeout=ZMQ_HANDSHAKE_S - 10), "never reconnected"
        recovered = time.monotonic() - cut_at
        print(f"reconnected {recovered:.1f} s after the cut, on fresh socket #{actor.link.renewals}")
        assert proxy.swallowed == 1 and actor.link.renewals >= 1
        assert RENEW_AFTER_S < recovered < ZMQ_HANDSHAKE_S
        more = actor.seq + 300
        assert settles(lambda: actor.link.acked_seq >= more, timeout=60)  # streaming on

        done.set()
        thread.join(timeout=60)
        assert not thread.is_alive()
        actor.link.stop(drain_s=60)
        steps = actor.seq
        assert actor.link.acked_seq == steps and actor.link.backlog == 0
        times = collections.Counter(seq for first, last in sends for seq in range(first, last + 1))
        assert set(times) == set(range(1, steps + 1)) and max(times.values()) <= 2
        resent = sorted(seq for seq, n in times.items() if n == 2)
        assert set(resent) <= set(in_flight), (resent[:3], resent[-3:], in_flight)
        print(f"{len(resent)} transitions in flight at the cut were sent again, once")
        assert settles(lambda: service.updater.applied.get("edge") == steps, timeout=120)
        stored = [t.seq for _, t in service.cache.iter_transitions("edge")]
        assert stored == list(range(1, steps + 1)), "the cache lost or doubled a transition"
        assert not service.server.rejected, service.server.rejected
    finally:
        thread.join(timeout=30)
        actor.close()
        service.stop()
        proxy.close()
    assert read_journal(run / "applied.log") == [("edge", seq) for seq in range(1, steps + 1)]
