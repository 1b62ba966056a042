"""Real processes, really killed: the crash campaign, consumer offsets, and a full disk."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from learners.cache import CacheConfig, ReplayCache
from learners.cache.campaign import crash_trial
from learners.cache.verify import verify_cache

REPO = Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def test_sigkilled_writers_lose_no_acknowledged_record(tmp_path: Path, kill_seed: int) -> None:
    rng = random.Random(kill_seed)  # the kill times
    trials = 24
    acked_total = 0
    for trial in range(trials):
        directory = tmp_path / f"cache{trial // 8}"  # a few trials share a cache, then a fresh one
        # Mostly after it opened, sometimes while it may still be opening (recovering).
        delay = rng.uniform(0.0, 0.4) if trial % 4 else -rng.uniform(0.05, 0.5)
        result = crash_trial(directory, seed=trial, delay_s=delay, segment_bytes=64 * 1024)
        where = f"trial {trial} (kill seed {kill_seed})"
        assert result.missing == [], f"{where}: acked records lost: {result.missing[:5]}"
        assert result.bad_records == 0, f"{where}: a corrupt record was returned"
        assert result.append_ok, f"{where}: appends did not continue"
        assert result.records >= result.acked
        acked_total += result.acked
    assert acked_total > 0  # the kills did land after some records were acknowledged
    for directory in sorted(tmp_path.iterdir()):
        assert verify_cache(directory).ok


CONSUMER = textwrap.dedent(
    """
    import sys, time
    from learners.cache import CacheConfig, ReplayCache
    with ReplayCache(sys.argv[1], CacheConfig()) as cache:
        reader = cache.consumer("learner")
        while True:
            batch = reader.poll(max_records=7)
            if not batch:
                break
            reader.commit(batch[-1][0])
            print(reader.committed, flush=True)
            time.sleep(0.002)
    print("done", flush=True)
    """
)


def test_consumer_offsets_survive_sigkill(tmp_path: Path, kill_seed: int) -> None:
    with ReplayCache(tmp_path, CacheConfig()) as cache:
        offsets = cache.append_many([i.to_bytes(4, "little") * 50 for i in range(1500)])
        cache.consumer("learner")
    rng = random.Random(kill_seed)  # the kill times
    last_printed = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", CONSUMER, str(tmp_path)],
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=ENV,
        )
        time.sleep(rng.uniform(0.3, 0.8))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        printed = [int(x) for x in out.split(b"\n")[:-1] if x.isdigit()]
        if printed:
            assert printed == sorted(printed) and printed[0] > last_printed
            last_printed = printed[-1]
        with ReplayCache(tmp_path, CacheConfig()) as cache:
            reader = cache.consumer("learner")
            assert reader.committed >= last_printed  # nothing committed is forgotten
            assert reader.committed == 0 or reader.committed - 1 in offsets  # a real record
            resumed = reader.poll(max_records=1)
            if resumed:  # the next record is exactly the one after the committed one
                after = offsets.index(reader.committed - 1) + 1 if reader.committed else 0
                assert resumed[0][0] == offsets[after]
            last_printed = reader.committed
    assert last_printed > offsets[0]


DISK_FULL = textwrap.dedent(
    """
    import json, resource, signal, sys, time
    from pathlib import Path
    from learners.cache import CacheConfig, CacheFullError, ReplayCache

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of a signal
    directory, n, name = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]  # record size, file it goes to
    report = {}
    with ReplayCache(directory, CacheConfig(commit_interval_ms=1.0)) as cache:
        durable = [cache.append(bytes([i]) * n) for i in range(50)]
        assert cache.wait_durable(durable[-1], timeout=10)
        size = max(p.stat().st_size for p in directory.glob(f"*.lmdb/{name}"))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 20 * n, hard))
        accepted, error = [], None
        deadline = time.monotonic() + 20
        while error is None and time.monotonic() < deadline:
            try:
                accepted.append(cache.append(b"p" * n))
            except CacheFullError as exc:
                error = exc
            time.sleep(0.0005)
        report["error"] = str(error)
        report["errno"] = error.errno
        report["error_path"] = error.path
        try:
            cache.wait_durable(accepted[-1], timeout=5)
            report["wait"] = "durable"
        except CacheFullError as exc:
            report["wait"] = type(exc).__name__
        report["intact"] = all(cache.read(o) == bytes([i]) * n for i, o in enumerate(durable))
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        deadline = time.monotonic() + 20
        while True:
            try:
                after = cache.append(b"after")
                break
            except CacheFullError:
                assert time.monotonic() < deadline, "appends never recovered"
                time.sleep(0.01)
        report["after_durable"] = cache.wait_durable(after, timeout=10)
        report["accepted_durable"] = all(cache.wait_durable(o, timeout=10) for o in accepted)
        report["accepted_intact"] = all(cache.read(o) == b"p" * n for o in accepted)
        report["durable"], report["accepted"], report["after"] = durable, accepted, after
    print(json.dumps(report))
    """
)


# Small records live in LMDB's data.mdb; large ones (at least external_bytes) in the blob file:
# the error names whichever file refused.
@pytest.mark.parametrize(("size", "name"), [(1000, "data.mdb"), (300 * 1024, "blobs.dat")])
def test_disk_full_raises_a_specific_error_and_recovers(tmp_path: Path, size: int, name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(tmp_path), str(size), name],
        capture_output=True,
        cwd=REPO,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["errno"] == 27  # EFBIG: a real OS error from the lowered RLIMIT_FSIZE
    assert "file size limit reached" in report["error"]
    assert report["error_path"].endswith(name) and report["error_path"] in report["error"]
    assert report["wait"] == "CacheFullError"
    assert report["intact"] and report["after_durable"]
    assert report["accepted_durable"] and report["accepted_intact"]
    with ReplayCache(tmp_path, CacheConfig(read_only=True)) as cache:
        stored = dict(cache.iter_records())
    assert all(stored[o] == bytes([i]) * size for i, o in enumerate(report["durable"]))
    assert all(stored[o] == b"p" * size for o in report["accepted"])
    assert stored[report["after"]] == b"after"
    assert verify_cache(tmp_path).ok


KILLED_WRITER = textwrap.dedent(
    """
    import sys, threading
    from learners.cache import CacheConfig, ReplayCache
    from learners.cache.segment import Segment
    if sys.argv[2] == "stalled-sealer":  # a sealer that has not written its marker when the kill comes
        Segment._write_sealed_marker = lambda self, sync: threading.Event().wait()
    cache = ReplayCache(sys.argv[1], CacheConfig(segment_bytes=64 * 1024))
    offsets = cache.append_many([i.to_bytes(4, "little") * 100 for i in range(400)])
    cache.wait_durable(offsets[-1])
    print(offsets[-1], flush=True)
    sys.stdin.read()
    """
)


def kill_a_writer(directory: Path, sealer: str = "sealer") -> int:
    """Run a writer until 400 records are durable, SIGKILL it; return its last offset."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(directory), sealer],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=ENV,
    )
    assert proc.stdout is not None
    last = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return last


@pytest.mark.parametrize("sealer", ["sealer", "stalled-sealer"])
def test_after_a_sigkill_the_active_segment_opens_without_a_structural_check(
    tmp_path: Path, monkeypatch, sealer: str
) -> None:
    """Nor do the segments it sealed whose SEALED markers its sealer had not yet written (under
    load the sealer lags: then the next open finishes its work)."""
    last = kill_a_writer(tmp_path, sealer)
    assert (tmp_path / "LOCK").read_text().split()[0].isdigit()  # it never closed
    segments = sorted(tmp_path.glob("*.lmdb"))
    assert len(segments) >= 3
    if sealer == "stalled-sealer":
        assert not any((p / "SEALED").exists() for p in segments[:-1])

    def no_check(*args, **kwargs):
        raise AssertionError("the pages of a process killed on this boot need no check")

    monkeypatch.setattr("lmdb.verify.verify", no_check)
    with ReplayCache(tmp_path, CacheConfig(segment_bytes=64 * 1024)) as cache:
        assert [o for o, _ in cache.iter_records()] == list(range(last + 1))
        assert cache.append(b"next") == last + 1
    assert (tmp_path / "LOCK").read_text() == ""  # closed cleanly this time
    assert all((p / "SEALED").exists() for p in segments[:-1])
    monkeypatch.undo()
    assert verify_cache(tmp_path).ok


def test_a_truncated_file_after_a_sigkill_is_still_caught(tmp_path: Path) -> None:
    last = kill_a_writer(tmp_path)
    active = sorted(tmp_path.glob("*.lmdb"))[-1] / "data.mdb"
    os.truncate(active, active.stat().st_size // 2)  # LMDB would fault reading past the end
    with ReplayCache(tmp_path, CacheConfig(segment_bytes=64 * 1024)) as cache:
        kept = [o for o, _ in cache.iter_records()]
        assert kept == sorted(kept) and len(kept) < last + 1
        offset = cache.append(b"next")
        assert offset > last and cache.wait_durable(offset, timeout=10)
    assert not verify_cache(tmp_path).ok  # the damage stays reported
