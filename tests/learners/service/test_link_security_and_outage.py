"""CurveZMQ admits only allow-listed actors; plain text stays on loopback; an actor keeps stepping
while its learner is down, spools, and drains when it returns."""

from __future__ import annotations

import logging
import shutil
import threading
import time

import pytest

from agent.actor import ActorConfig, ActorRunner
from learners.link.client import ActorLink
from learners.link.security import CurveClient, CurveServer, InsecureEndpointError, generate_keys
from learners.service import LearnerConfig, LearnerService
from tests.ports import free_port


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_curve_admits_allow_listed_actor_and_rejects_others(tmp_path):
    keys, allow = tmp_path / "keys", tmp_path / "allow"
    allow.mkdir()
    _, learner_secret = generate_keys(keys, "learner")
    good_public, good_secret = generate_keys(keys, "good")
    _, bad_secret = generate_keys(keys, "intruder")
    shutil.copy(good_public, allow)
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           curve=CurveServer(learner_secret, allow), durability="os-buffered")
    with LearnerService(config) as service:
        learner_public = keys / "learner.key"

        def actor(actor_id: str, secret) -> ActorRunner:
            return ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id=actor_id,
                                           run_dir=tmp_path / "run", durability="os-buffered",
                                           curve=CurveClient(secret, learner_public)))

        good, bad = actor("good", good_secret), actor("intruder", bad_secret)
        try:
            good.run(steps=300)
            bad.run(steps=300)
            assert _wait(lambda: good.link.acked_seq == 300, 30)
            assert _wait(lambda: service.updater.applied.get("good") == 300, 60)
            assert bad.steps == 300, "a refused actor still steps its robot"
            assert bad.link.acked_seq == 0 and not bad.link.connected
            assert "intruder" not in service.server.sessions and "intruder" not in service.updater.applied
        finally:
            good.close()
            bad.close()


def test_plain_text_beyond_loopback_needs_insecure(tmp_path, caplog):
    with pytest.raises(InsecureEndpointError, match=r"0\.0\.0\.0"):
        LearnerConfig(bind="tcp://0.0.0.0:5999", run_dir=tmp_path / "r", obs_dim=3, action_dim=1)
    assert not (tmp_path / "r").exists()
    with caplog.at_level(logging.WARNING):
        LearnerConfig(bind="tcp://0.0.0.0:5999", run_dir=tmp_path / "r", obs_dim=3, action_dim=1,
                      insecure=True)
    assert "INSECURE" in caplog.text
    with pytest.raises(InsecureEndpointError, match=r"192\.0\.2\.7"):
        ActorLink("tcp://192.0.2.7:5555", "a", {}, spool=None, weight_shapes={})


def test_actor_keeps_stepping_while_learner_is_down_then_drains(tmp_path):
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    actor = ActorRunner(ActorConfig(learner=endpoint, env="Hopper-v5", actor_id="edge", control_hz=250,
                                    run_dir=tmp_path / "run"))
    thread = threading.Thread(target=actor.run, kwargs={"steps": 1500})
    thread.start()
    service = None
    try:
        assert _wait(lambda: actor.steps >= 400, 60)
        backlog_while_down = actor.link.backlog
        spool_bytes = sum(f.stat().st_size for f in (actor.dir / "spool").rglob("*") if f.is_file())
        assert actor.link.acked_seq == 0 and backlog_while_down >= 400 and spool_bytes > 100_000
        config = LearnerConfig(bind=endpoint, run_dir=tmp_path / "run", obs_dim=12, action_dim=3)
        service = LearnerService(config).start()
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert _wait(lambda: actor.link.backlog == 0, 60), actor.link.backlog
        assert actor.link.acked_seq == actor.seq == 1500
        assert _wait(lambda: service.updater.applied.get("edge") == 1500, 120)
        assert actor.summary()["link_errors"] == {}
    finally:
        thread.join(timeout=30)
        actor.close()
        if service is not None:
            service.stop()


def test_a_refused_hello_is_named_and_not_resent_in_a_loop(tmp_path, caplog):
    """An actor whose spec the learner refuses (here: a learner configured for another observation
    size) keeps stepping, says why once, and asks again every HELLO_EVERY_S, not as fast as the
    refusals come back (that loop once wrote 184 MB of warnings in 40 minutes)."""
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=10, action_dim=3,
                           durability="os-buffered")
    caplog.set_level(logging.WARNING)
    with LearnerService(config) as service:
        runner = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="mismatched",
                                         run_dir=tmp_path / "run", durability="os-buffered"))
        try:
            started = time.monotonic()
            runner.run(steps=200)
            assert _wait(lambda: runner.link.errors["bad_spec"] >= 3, 10)
            time.sleep(1.0)
            elapsed, refusals = time.monotonic() - started, runner.link.errors["bad_spec"]
            assert runner.steps == 200 and not runner.link.connected and runner.link.acked_seq == 0
            assert runner.link.refused is not None
            refused = runner.link.refused
            assert "bad_spec" in refused and "obs_dim: actor 12 vs learner 10" in refused
            assert refusals <= elapsed / 0.5 + 3, f"{refusals} refused hellos in {elapsed:.1f} s"
        finally:
            runner.close()
    said = [r for r in caplog.records if "refuses this actor's hello" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR and "obs_dim" in said[0].getMessage()
    # the learner counts every refusal and says it once for this actor and reason (then every 30 s)
    assert service.server.rejected["bad_spec"] >= refusals >= 3
    logged = [r.getMessage() for r in caplog.records
              if r.name == "learners.link.server" and "rejected a message" in r.getMessage()]
    assert len(logged) == 1 and "mismatched" in logged[0] and "bad_spec" in logged[0]
