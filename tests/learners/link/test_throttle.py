"""``LogThrottle``: the first occurrence of each key is said at once, repeats once per interval with
the count left unsaid, and an overflow of keys forgets rather than grows."""

from __future__ import annotations

from learners.link.throttle import LogThrottle


def test_repeats_are_said_once_an_interval_with_the_count_left_unsaid():
    throttle = LogThrottle(every_s=30.0)
    assert throttle.due(("actor-0", "bad_spec"), now=100.0) == 0
    assert [throttle.due(("actor-0", "bad_spec"), now=100.0 + t) for t in (0.5, 1.0, 29.9)] == [None] * 3
    assert throttle.due(("actor-0", "bad_spec"), now=100.0) is None  # still inside the interval
    # another key is its own event: said at once
    assert throttle.due(("actor-1", "bad_spec"), now=101.0) == 0
    assert throttle.due(("actor-0", "bad_version"), now=101.0) == 0
    assert throttle.due(("actor-0", "bad_spec"), now=130.0) == 4  # four went unsaid in between
    assert throttle.due(("actor-0", "bad_spec"), now=131.0) is None
    assert throttle.due(("actor-0", "bad_spec"), now=160.5) == 1


def test_many_keys_are_forgotten_not_accumulated():
    throttle = LogThrottle(every_s=30.0, max_keys=8)
    for i in range(50):
        assert throttle.due(f"peer-{i}", now=0.0) == 0
    assert len(throttle._said) <= 8
