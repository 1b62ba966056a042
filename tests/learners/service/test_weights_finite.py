"""A parameter of a real learner's algorithm turns NaN while a real actor streams: the learner
never ships those weights (refused, counted, logged with the parameter's name), the box keeps the
last good ones, the actor acts on with them, learning stops and no checkpoint holds the NaN;
the learner restarted on the same port resumes from its last good checkpoint and applies every
transition exactly once."""

from __future__ import annotations

import logging
import threading

import torch

from agent.actor import ActorConfig, ActorRunner
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from tests.ports import free_port


def _finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if torch.is_floating_point(v))


def test_nonfinite_weights_are_never_shipped_and_a_restart_resumes_from_the_last_good_checkpoint(
        tmp_path, settles, caplog):
    caplog.set_level(logging.WARNING)
    run = tmp_path / "run"
    config = LearnerConfig(bind=f"tcp://127.0.0.1:{free_port()}", run_dir=run, obs_dim=12, action_dim=3,
                           publish_every_updates=50, checkpoint_every_updates=200)
    service = LearnerService(config).start()
    actor = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="edge", run_dir=run,
                                    control_hz=400, durability="os-buffered"))
    done = threading.Event()
    thread = threading.Thread(target=actor.run, kwargs={"should_stop": done.is_set})
    thread.start()
    try:
        updater, publisher = service.updater, service.updater.publisher
        assert settles(lambda: service.algo.updates >= 450 and actor.version > 0, timeout=120)
        name, module = service.algo.acting_module()
        pname, param = next(iter(module.named_parameters()))

        def poison() -> bool:  # (again until it sticks: the update thread writes the weights too)
            with torch.no_grad():
                param.view(-1)[0] = float("nan")
            return updater.halted is not None

        assert settles(poison, timeout=30), "the learner never noticed its NaN weights"
        last_good = service.weights.latest()
        assert publisher.refused >= 1 and last_good.version == publisher.version
        assert f"{name}.{pname} (" in caplog.text and "not published" in caplog.text
        assert "learning stopped" in updater.halted
        status = service.status()  # what rill status and learner_status.json say
        assert status["learning"].startswith("stopped: non-finite weights") and status["weights_refused"] >= 1
        halted_at = service.algo.updates
        assert settles(lambda: service.algo.updates == halted_at and service.weights.latest() is last_good,
                       timeout=2)

        # The actor acts on with the last good weights; the learner stores and acknowledges on.
        stepped, acked = actor.steps, actor.link.acked_seq
        assert settles(lambda: actor.steps > stepped + 300 and actor.link.acked_seq > acked + 200, 60)
        assert actor.version <= last_good.version and _finite(actor.policy.state_dict())
        assert actor.summary()["weights_refused"] == 0 and not actor.link.errors

        service.stop()  # no checkpoint of the NaN weights at stop either
        assert "no checkpoint written after update" in caplog.text
        _, tensors, state = service.updater.store.load_latest()
        assert state["updates"] < halted_at and _finite(tensors), state["updates"]

        caplog.set_level(logging.INFO, logger="learners.service.checkpoints")
        service = LearnerService(config).start()  # the cause "fixed": the same learner, restarted
        assert f"learner resumed from step_{state['updates']:012d}" in caplog.text
        assert service.updater.halted is None
        more = actor.seq + 300
        assert settles(lambda: actor.link.acked_seq >= more, timeout=60)
        done.set()
        thread.join(timeout=60)
        assert not thread.is_alive()
        actor.link.stop(drain_s=60)
        last = actor.seq
        assert actor.link.acked_seq == last and actor.link.backlog == 0
        assert settles(lambda: service.updater.applied.get("edge") == last, timeout=120)
        assert service.algo.updates > halted_at and _finite(service.algo.state_dict())
        assert settles(lambda: service.weights.latest().version > last_good.version, timeout=10)
    finally:
        done.set()
        thread.join(timeout=30)
        actor.close()
        service.stop()
    assert read_journal(run / "applied.log") == [("edge", seq) for seq in range(1, last + 1)]
