"""kill -9 of the learner or an actor loses no acknowledged transition and applies none twice."""

from __future__ import annotations

import collections
import csv
import itertools
import json
import signal
import time

import numpy as np

from learners.cache import CacheConfig, ReplayCache
from learners.service.journal import read_journal


def _assert_exactly_once(run, expected: dict[str, int]) -> None:
    applied = read_journal(run / "applied.log")
    counts = collections.Counter(applied)
    dupes = [k for k, n in counts.items() if n > 1]
    assert not dupes, f"applied twice: {dupes[:5]}"
    for actor_id, last in expected.items():
        seqs = [s for a, s in applied if a == actor_id]
        assert seqs == list(range(1, last + 1)), f"{actor_id}: applied {len(seqs)} of 1..{last}, in order"
    assert {a for a, _ in applied} == set(expected)


def test_learner_killed_ten_times_while_two_actors_stream(tmp_path, procs, kill_seed):
    run, port = tmp_path / "run", procs.port()
    rng = np.random.default_rng(kill_seed)  # the kill times
    steps = 6000
    learner = procs.learner(run, port)
    actors = {aid: procs.actor(run, port, aid, steps, "--seed", str(i), "--control-hz", "1000")
              for i, aid in enumerate(("a0", "a1"))}
    kills = 0
    while kills < 10:
        procs.wait_for(lambda: (run / "applied.log").exists(), 60, "the learner to start")
        time.sleep(float(rng.uniform(0.3, 1.2)))
        learner.send_signal(signal.SIGKILL)
        learner.wait()
        kills += 1
        learner = procs.learner(run, port)
    for proc in actors.values():
        assert proc.wait(timeout=180) == 0
    procs.wait_for(lambda: procs.updates(run) >= 2 * steps, 240, "the learner to apply everything")
    assert procs.stop(learner) == 0
    for aid in actors:
        summary = procs.summary(aid)
        assert summary["backlog"] == 0 and summary["acked_seq"] == summary["seq"] == steps
    _assert_exactly_once(run, {aid: steps for aid in actors})


def test_actor_killed_then_restarted_resends_and_continues_its_sequence(tmp_path, procs):
    run, port = tmp_path / "run", procs.port()
    learner = procs.learner(run, port)
    victim = procs.actor(run, port, "a0", 100_000, "--control-hz", "500")
    spool = run / "actors" / "a0" / "spool"
    def spooled() -> int:
        return sum(f.stat().st_size for f in spool.rglob("*") if f.is_file()) if spool.exists() else 0

    procs.wait_for(lambda: spooled() > 200_000, 60, "the actor to spool transitions")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    restarted = procs.actor(run, port, "a0", 1500)
    assert restarted.wait(timeout=120) == 0
    summary = procs.summary("a0")
    assert summary["backlog"] == 0 and summary["acked_seq"] == summary["seq"]
    kept = summary["resumed_after_seq"]
    assert kept > 0, "the restarted actor started its sequence over instead of continuing it"
    # the transitions its spool kept count toward the 1,500 steps: the stream holds the budget
    assert summary["seq"] == summary["steps"] == max(kept, 1500)
    procs.wait_for(lambda: procs.updates(run) >= summary["seq"], 240, "the learner to apply everything")
    assert procs.stop(learner) == 0
    _assert_exactly_once(run, {"a0": summary["seq"]})


def test_an_actor_writing_behind_killed_and_restarted_skips_what_it_lost_repeating_nothing(tmp_path, procs):
    """``--durability behind``: transitions go out before the actor's spool writes them, so a kill
    -9 may lose the ones not yet acknowledged; the restarted actor numbers on past its reservation,
    the learner skips the numbers that never come, and nothing is applied twice or out of order."""
    run, port = tmp_path / "run", procs.port()
    learner = procs.learner(run, port)
    victim = procs.actor(run, port, "a0", 100_000, "--control-hz", "200", "--durability", "behind")
    procs.wait_for(lambda: procs.updates(run) > 300, 120, "the learner to apply the actor's transitions")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    restarted = procs.actor(run, port, "a0", 8000, "--durability", "behind")  # past the saved steps
    assert restarted.wait(timeout=120) == 0
    done_at = time.time()
    summary = procs.summary("a0")
    assert summary["backlog"] == 0 and summary["acked_seq"] == summary["seq"]

    def status() -> dict:
        path = run / "metrics" / "learner_status.json"
        return json.loads(path.read_text()) if path.exists() else {"time": 0}

    # (``seq`` no longer counts transitions: wait until the learner has applied all it received)
    procs.wait_for(lambda: (s := status())["time"] > done_at and s["updates"] >= s["received"] > 0, 240,
                   "the learner to apply everything it received")
    assert status()["skipped"]["a0"] > 0
    assert procs.stop(learner) == 0
    seqs = [s for a, s in read_journal(run / "applied.log") if a == "a0"]
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), "applied twice or out of order"
    jumps = [(a, b) for a, b in itertools.pairwise(seqs) if b != a + 1]
    assert len(jumps) == 1, f"one skip, at the restart: {jumps}"
    (before, after), = jumps
    assert seqs[0] == 1 and before > 300 and after > before and seqs[-1] == summary["seq"]
    # The episode under way at the kill never sends its last transition: the learner starts the
    # actor's traces afresh at the restarted actor's first transition, and says so.
    with ReplayCache(run / "cache", CacheConfig(read_only=True)) as cache:
        cut = next(t for _, t in cache.iter_transitions() if t.actor_id == "a0" and t.seq == before)
    with open(run / "metrics" / "learner.csv") as f:
        last_row = list(csv.DictReader(f))[-1]
    assert int(last_row["interrupted"]) == (0 if cut.done else 1), (cut.done, last_row)
    assert int(last_row["skipped"]) == after - before - 1
    assert status()["interrupted"] == int(last_row["interrupted"])
