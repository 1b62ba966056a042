"""``weights_dtype``: weights travel in float16 at half the bytes, rounded and nothing worse; a
weight past float16's range makes that publication travel exactly, in float32; an actor acts on them."""

from __future__ import annotations

import logging
import threading

import pytest
import torch

from agent.actor import ActorConfig, ActorRunner
from hal.errors import ConfigError
from learners.link.tensors import decode
from learners.service import LearnerConfig, LearnerService
from tests.ports import free_port


def _config(tmp_path, **kw) -> LearnerConfig:
    return LearnerConfig(bind=f"tcp://127.0.0.1:{free_port()}", run_dir=tmp_path / "run", obs_dim=12,
                         action_dim=3, **kw)


def _shipped(service) -> dict[str, torch.Tensor]:
    return decode(service.weights.latest().blob)[0]


def test_float16_weights_are_the_learners_rounded_at_half_the_bytes(tmp_path, caplog):
    exact = LearnerService(_config(tmp_path / "a")).start()
    half = LearnerService(_config(tmp_path / "b", weights_dtype="float16")).start()
    try:
        name, module = half.algo.acting_module()
        live = {f"{name}.{k}": v.detach().clone() for k, v in module.state_dict().items()}
        assert half.updater.publisher.publish()
        shipped = _shipped(half)
        assert set(shipped) == set(live)
        for key, value in live.items():
            assert shipped[key].dtype == torch.float16 and torch.equal(shipped[key], value.half())
        assert len(half.weights.latest().blob) < 0.55 * len(exact.weights.latest().blob)
        assert all(v.dtype == torch.float32 for v in _shipped(exact).values())

        caplog.set_level(logging.WARNING)
        pname, param = next(iter(module.named_parameters()))
        with torch.no_grad():
            param.view(-1)[0] = 1e6  # finite, but float16 tops out at 65,504
        assert half.updater.publisher.publish()
        shipped = _shipped(half)
        assert shipped[f"{name}.{pname}"].dtype == torch.float32
        assert shipped[f"{name}.{pname}"].view(-1)[0].item() == 1e6
        assert "exceed" in caplog.text and "published as float32" in caplog.text
        assert half.updater.publisher.range_fallbacks == 1
    finally:
        half.stop()
        exact.stop()


def test_an_actor_acts_on_float16_weights(tmp_path, settles):
    service = LearnerService(_config(tmp_path, weights_dtype="float16", publish_every_updates=50)).start()
    actor = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="edge",
                                    run_dir=tmp_path / "run", control_hz=400, durability="os-buffered"))
    done = threading.Event()
    thread = threading.Thread(target=actor.run, kwargs={"should_stop": done.is_set})
    thread.start()
    try:
        assert settles(lambda: service.algo.updates >= 300 and actor.version > 0, timeout=120)
        assert all(v.dtype == torch.float16 for v in _shipped(service).values() if v.is_floating_point())
    finally:
        done.set()
        thread.join(60)
        service.stop()
    assert not thread.is_alive()


def test_an_unknown_weights_dtype_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"weights_dtype.*float8"):
        _config(tmp_path, weights_dtype="float8")
