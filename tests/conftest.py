"""Fixtures every test package shares."""

from __future__ import annotations

import pytest


@pytest.fixture
def kill_seed(request) -> int:
    """The seed of this test's random kill times: ``RILL_KILL_SEED=SEED`` replays a run. Printed
    (pytest shows it with a failure) and kept in the test report's ``user_properties``."""
    from learners.cache.campaign import KILL_SEED_ENV, kill_seed

    seed = kill_seed()
    print(f"kill times drawn from seed {seed}; replay: {KILL_SEED_ENV}={seed} pytest {request.node.nodeid}")
    request.node.user_properties.append(("kill_seed", seed))
    return seed
