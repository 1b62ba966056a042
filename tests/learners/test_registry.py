"""One table of the stream-x algorithms: names, classes, configs, action spaces, acting networks."""

from __future__ import annotations

import pytest

from learners.service.config import LearnerConfig
from learners.streamx import (
    ALGORITHMS,
    ConfigError,
    StreamAC,
    StreamQ,
    StreamSARSA,
    StreamTD,
    algorithm_config,
    algorithm_names,
    algorithm_spec,
    build_algorithm,
    spec_of,
)

LAYOUTS = {"stream-ac": [{"action_dim": 2}, {"n_actions": 3}], "stream-q": [{"n_actions": 3}],
           "stream-sarsa": [{"n_actions": 3}], "stream-td": [{}]}


def test_names_in_table_order_and_control_only_drops_prediction():
    assert algorithm_names() == ["stream-ac", "stream-q", "stream-sarsa", "stream-td"]
    assert algorithm_names(control_only=True) == ["stream-ac", "stream-q", "stream-sarsa"]
    assert list(ALGORITHMS) == algorithm_names()


def test_each_entry_names_its_classes_and_needs():
    ac, q, sarsa, td = (algorithm_spec(n) for n in algorithm_names())
    assert (ac.algorithm, q.algorithm, sarsa.algorithm, td.algorithm) == (StreamAC, StreamQ, StreamSARSA,
                                                                           StreamTD)
    assert [s.config.name for s in (ac, q, sarsa, td)] == algorithm_names()
    assert (ac.discrete, ac.continuous, q.discrete, q.continuous) == (True, True, True, False)
    assert not td.controls and td.acting_module is None
    assert [s.policy_weighted for s in (ac, q, sarsa, td)] == [True, False, False, False]
    for spec in ALGORITHMS.values():
        fast = spec.fast_class()
        assert fast is not None and issubclass(fast, spec.algorithm) and fast.update_path == "fast"


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("name", ["stream-ac", "stream-q", "stream-sarsa"])
def test_acting_module_is_the_network_actors_need(name, fast):
    for layout in LAYOUTS[name]:
        algo = build_algorithm(name, 4, fast=fast, **layout)
        assert spec_of(algo).name == name  # FastStreamSARSA is a StreamQ too, but a SARSA first
        module_name, module = algo.acting_module()
        assert module_name == ("actor" if name == "stream-ac" else "q")
        assert module is algo.modules()[module_name]


@pytest.mark.parametrize("fast", [False, True])
def test_prediction_only_has_no_acting_module(fast):
    algo = build_algorithm("stream-td", 4, fast=fast)
    assert spec_of(type(algo)).name == "stream-td"
    with pytest.raises(NotImplementedError, match="stream-td predicts values"):
        algo.acting_module()


def test_unknown_names_and_unregistered_classes_are_refused():
    with pytest.raises(ConfigError, match="did you mean stream-sarsa"):
        algorithm_spec("stream-sarza")
    with pytest.raises(ConfigError, match=r"needs a discrete action space.*use stream-ac"):
        build_algorithm("stream-q", 4, action_dim=2)

    class Unregistered(StreamTD):
        pass

    assert spec_of(Unregistered).name == "stream-td"  # a subclass is its base's algorithm
    with pytest.raises(KeyError, match="not a registered"):
        spec_of(object)
    assert type(algorithm_config("stream-sarsa")) is algorithm_spec("stream-sarsa").config


def test_learner_accepts_exactly_the_control_algorithms(tmp_path):
    for name in algorithm_names(control_only=True):
        LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=4, n_actions=2, algo=name)
    with pytest.raises(ConfigError, match="stream-ac, stream-q or stream-sarsa, got 'stream-td'"):
        LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=4, n_actions=2, algo="stream-td")
