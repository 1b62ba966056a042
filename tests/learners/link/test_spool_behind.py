"""An actor spool that writes behind the link (``durability="behind"``), on real files and processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from learners.cache.batch import decode_batch, encode_batch
from learners.cache.errors import RecordTooLargeError
from learners.link.behind import RESERVATION_FILE, RESERVE_BLOCK, UNWRITTEN, WRITE_BEHIND_S, read_reservation
from learners.link.spool import ActorSpool
from learners.transition import Transition

REPO = Path(__file__).resolve().parents[3]


def rows(first: int, last: int, actor: str = "a") -> list[Transition]:
    frame = np.zeros((8, 8, 3), np.uint8)
    return [Transition({"state": np.full(3, s, np.float32), "image.cam": frame + s % 255},
                       np.zeros(2, np.float32), float(s), np.zeros(3, np.float32), False, False, actor, s)
            for s in range(first, last + 1)]


def on_disk(spool: ActorSpool) -> list[tuple[int, int]]:
    return [spool.cache.read_span(o)[1:] for o in spool.cache.offsets(0)]


def test_a_record_goes_out_at_once_and_is_never_written_once_acknowledged(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "behind")
    for first in (1, 5, 9):
        spool.append(rows(first, first + 3))
    assert [o for _, _, o in spool.pending()] == [UNWRITTEN] * 3 and spool.behind_bytes > 0
    sent = [spool.take_unsent(window=1000) for _ in range(3)]  # nothing waits on the disk
    assert [(o.first_seq, o.last_seq, o.after) for o in sent] == [(1, 4, 0), (5, 8, 4), (9, 12, 8)]
    assert [t.reward for t in decode_batch(sent[1].payload, max_size=1 << 20)] == [5.0, 6.0, 7.0, 8.0]
    # the numbers sent are inside a reservation made durable before they went out
    assert read_reservation(tmp_path / "spool") == spool.reserved >= 12
    spool.acked(12)
    assert spool.spill(time.monotonic() + 10 * WRITE_BEHIND_S) == 0  # nothing left to write
    assert (spool.backlog, spool.behind_bytes, on_disk(spool)) == (0, 0, [])
    spool.close()


def test_what_stays_unacknowledged_is_written_when_due_and_resent_after_reopening(tmp_path):
    path = tmp_path / "spool"
    spool = ActorSpool(path, "a", "behind")
    for first in (1, 5, 9):
        spool.append(rows(first, first + 3))
    spool.take_unsent(window=1000)
    spool.take_unsent(window=1000)  # 1-4 and 5-8 in flight, 9-12 queued
    spool.acked(4)
    assert spool.spill(time.monotonic()) == 0  # not due yet: the learner may still acknowledge it
    assert spool.spill(time.monotonic() + WRITE_BEHIND_S) == 2
    assert spool.flush() and on_disk(spool) == [(5, 8), (9, 12)] and spool.behind_bytes == 0
    spool.resend_unacked()  # a lost connection: 5-8 is read back from the spool
    again = spool.take_unsent(window=1000)
    assert (again.first_seq, again.last_seq) == (5, 8)
    assert [t.seq for t in decode_batch(again.payload, max_size=1 << 20)] == [5, 6, 7, 8]
    reserved = spool.reserved
    spool.close()

    spool = ActorSpool(path, "a", "behind")
    assert [(f, t) for f, t, _ in spool.pending()] == [(5, 8), (9, 12)]
    assert spool.kept_seq == 12 and spool.next_seq() == reserved + 1  # never a number that may have gone out
    spool.append(rows(reserved + 1, reserved + 2))
    out = [spool.take_unsent(window=1000) for _ in range(3)]
    # 5-8 is the first the spool has (1-4 was never written: nothing before it can come), and the
    # new numbers follow 12: the learner, holding 4, takes 5-12 and then skips to them
    assert [(o.first_seq, o.after) for o in out] == [(5, 0), (9, 8), (reserved + 1, 12)]
    spool.close()


def test_a_record_appended_past_the_reservation_waits_for_the_next_reservation(tmp_path):
    """The batcher may append between the link's reservation and its taking the record: that
    record must not go out until its numbers are reserved (a restart would reuse them)."""
    spool = ActorSpool(tmp_path / "spool", "a", "behind")
    spool.append(rows(1, 4))
    assert spool.take_unsent(window=1000).first_seq == 1
    first = spool.reserved + 1
    spool.append(rows(5, 8))  # (within the reservation)
    spool.reserve = lambda seq: None  # the race: this call's check saw nothing new to reserve
    spool.append(rows(first - 1, first + 2))  # (numbered past a floor: it crosses the reservation)
    assert spool.take_unsent(window=1000).first_seq == 5
    assert spool.take_unsent(window=1000) is None and spool.pending()[-1][:2] == (first - 1, first + 2)
    del spool.reserve  # the next call reserves it, then sends it
    out = spool.take_unsent(window=1000)
    assert (out.first_seq, out.last_seq) == (first - 1, first + 2) and spool.reserved >= first + 2
    assert read_reservation(tmp_path / "spool") == spool.reserved
    spool.close()


def test_bytes_are_accounted_through_every_move(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "behind")
    for first in range(1, 25, 4):
        spool.append(rows(first, first + 3))
    size = spool.behind_bytes
    taken = [spool.take_unsent(window=1000) for _ in range(3)]  # 1-12 in flight
    spool.put_back()  # 9-12 could not be sent
    assert spool.behind_bytes == size and spool.held_bytes == 0
    assert spool.spill(time.monotonic() + WRITE_BEHIND_S) == 6  # all six handed to the spool
    unsent = sum(len(encode_batch(rows(f, f + 3))) for f in (9, 13, 17, 21))  # held to send
    assert spool.behind_bytes == 0 and spool.held_bytes == unsent and spool.flush()
    spool.resend_unacked()  # 1-8 back to the front: their bytes are read back from disk
    again = [spool.take_unsent(window=1000) for _ in range(6)]
    assert [o.first_seq for o in again] == [1, 5, 9, 13, 17, 21]
    assert [o.payload for o in again[:2]] == [o.payload for o in taken[:2]]
    spool.acked(24)
    assert (spool.backlog, spool.behind_bytes, spool.held_bytes) == (0, 0, 0)
    spool.close()


def test_a_record_too_large_to_write_is_refused_at_append(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "behind", segment_bytes=1 << 20)
    # 1.5 MB of noise (zeros would compress to nothing): past what a 1 MiB segment holds
    frame = np.random.default_rng(0).integers(0, 256, (700, 700, 3), np.uint8)
    big = [Transition(frame, np.zeros(2, np.float32), 0.0, np.zeros(3, np.float32), False, False, "a", 1)]
    with pytest.raises(RecordTooLargeError, match="exceeds max_record_bytes"):
        spool.append(big)
    assert spool.pending() == [] and spool.behind_bytes == 0
    spool.close()


def test_close_writes_what_the_learner_has_not_acknowledged(tmp_path):
    path = tmp_path / "spool"
    spool = ActorSpool(path, "a", "behind")
    spool.append(rows(1, 4))
    spool.append(rows(5, 6))
    spool.take_unsent(window=1000)
    spool.acked(4)
    spool.close()
    spool = ActorSpool(path, "a", "behind")
    assert [(f, t) for f, t, _ in spool.pending()] == [(5, 6)]
    spool.close()


def test_past_the_memory_budget_records_are_written_at_once(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "behind", memory_bytes=1)
    spool.append(rows(1, 4))
    spool.append(rows(5, 8))
    assert spool.spill(time.monotonic()) == 2 and spool.behind_bytes == 0
    assert spool.flush() and on_disk(spool) == [(1, 4), (5, 8)]
    spool.close()


def test_a_killed_actor_never_reuses_a_number_it_may_have_sent(tmp_path):
    """SIGKILL after sending from memory and before anything was written: those transitions are
    gone (never acknowledged), and the restarted spool numbers on past the reservation."""
    path = tmp_path / "spool"
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(REPO)!r})
from tests.learners.link.test_spool_behind import rows
from learners.link.spool import ActorSpool
spool = ActorSpool({str(path)!r}, "a", "behind")
for first in range(1, 200, 4):
    spool.append(rows(first, first + 3))
    assert spool.take_unsent(window=10**6) is not None
print(spool.reserved, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reserved = int(proc.stdout.split()[0])
    assert reserved >= 200 and (path / RESERVATION_FILE).exists()
    spool = ActorSpool(path, "a", "behind")
    assert spool.pending() == [] and spool.kept_seq == 0
    assert spool.next_seq() == reserved + 1
    spool.close()


def test_a_write_through_spool_honours_a_reservation_left_by_writing_behind(tmp_path):
    path = tmp_path / "spool"
    spool = ActorSpool(path, "a", "behind")
    spool.append(rows(1, 4))
    spool.take_unsent(window=1000)
    spool.close()  # (written at close: not acknowledged)
    spool = ActorSpool(path, "a", "fsync")
    assert spool.next_seq() == RESERVE_BLOCK + 5 and spool.kept_seq == 4
    spool.close()


def test_a_damaged_reservation_is_refused_by_name(tmp_path):
    path = tmp_path / "spool"
    ActorSpool(path, "a", "behind").close()
    (path / RESERVATION_FILE).write_bytes(b"\x81\xa3seq\x05garbage")
    with pytest.raises(ValueError, match=f"{RESERVATION_FILE} is damaged"):
        ActorSpool(path, "a", "behind")


def test_an_unknown_durability_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"durability must be one of .*'behind'.*got 'later'"):
        ActorSpool(tmp_path / "spool", "a", "later")


@pytest.mark.parametrize("durability", ["fsync", "behind"])
def test_a_number_at_or_below_one_the_spool_used_is_refused_by_name(tmp_path, durability):
    """A caller numbering transitions itself cannot make the spool give a number twice: not in one
    life, not after a reopening (where the learner would otherwise be told ``after`` >= first)."""
    path = tmp_path / "spool"
    spool = ActorSpool(path, "a", durability)
    spool.append(rows(1, 4))
    with pytest.raises(ValueError, match=r"actor a: spool .*transitions 3..6 do not follow seq 4"):
        spool.append(rows(3, 6))
    assert [(r[0], r[1]) for r in spool.pending()] == [(1, 4)]  # nothing of the refused rows queued
    spool.close()
    spool = ActorSpool(path, "a", durability)
    floor = spool.next_seq() - 1  # 4, or past the reservation when written behind
    with pytest.raises(ValueError, match=rf"transitions 1..4 do not follow seq {floor}\b"):
        spool.append(rows(1, 4))
    spool.append(rows(floor + 1, floor + 2))
    spool.close()
