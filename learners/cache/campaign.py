"""The crash campaign: SIGKILL a writing process at random moments and check what survived.

A writer process appends records and prints each offset once it is durable; after the kill,
reopening the cache must show every printed offset, byte-identical, return nothing corrupt, and
accept appends. Used by the test suite (a few dozen trials) and ``bench.cache --crash`` (hundreds).
Run as ``python -m learners.cache.campaign writer DIR SEED SEGMENT_BYTES``.

Crash tests draw their kill times from :func:`kill_seed`: a fresh seed each run, reported by the
test, and the same one again with ``RILL_KILL_SEED=SEED`` to replay a failure.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from learners.cache.cache import ReplayCache
from learners.cache.config import CacheConfig

_REPO = Path(__file__).resolve().parents[2]
KILL_SEED_ENV = "RILL_KILL_SEED"


def kill_seed() -> int:
    """The seed a crash test draws its kill times from: ``$RILL_KILL_SEED`` if set (to replay a
    run), else a fresh random one. The caller reports it, so that a failure can be replayed."""
    value = os.environ.get(KILL_SEED_ENV, "").strip()
    if not value:
        return random.SystemRandom().randrange(2**32)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{KILL_SEED_ENV}={value!r}: expected an integer seed") from None


def payload(seed: int, i: int) -> bytes:
    """The deterministic record ``i`` of writer ``seed``: a readable key, then random bytes."""
    rng = random.Random(seed * 1_000_003 + i)
    return f"{seed}:{i}|".encode() + rng.randbytes(rng.randint(0, 3000))


def check_payload(data: bytes) -> bool:
    """True if ``data`` is exactly a record some writer of this campaign produced."""
    head, sep, _ = data.partition(b"|")
    try:
        seed, i = (int(x) for x in head.split(b":"))
    except ValueError:
        return False
    return sep == b"|" and payload(seed, i) == data


def campaign_config(segment_bytes: int) -> CacheConfig:
    # external_bytes: about a third of the records (2-3 KB) go to the segments' blob files.
    return CacheConfig(segment_bytes=segment_bytes, commit_interval_ms=2.0, commit_bytes=64 * 1024,
                       external_bytes=2048)


def run_writer(directory: str, seed: int, segment_bytes: int) -> None:
    """Append batches forever; print ``offset seed:i`` for each record once it is durable."""
    rng = random.Random(seed)
    out = sys.stdout
    i = 0
    with ReplayCache(directory, campaign_config(segment_bytes)) as cache:
        out.write("ready\n")
        out.flush()
        while True:
            batch = []
            for _ in range(rng.randint(1, 16)):
                batch.append((cache.append(payload(seed, i)), i))
                i += 1
            cache.wait_durable(batch[-1][0])
            out.write("".join(f"{offset} {seed}:{n}\n" for offset, n in batch))
            out.flush()


@dataclass
class TrialResult:
    acked: int  # records printed as durable before the kill
    records: int  # records in the cache after recovery
    missing: list[int]  # acked offsets absent or different after recovery (must be empty)
    bad_records: int  # records returned that no writer wrote (must be 0)
    append_ok: bool  # an append after recovery became durable and read back


def crash_trial(directory: Path, seed: int, delay_s: float, segment_bytes: int) -> TrialResult:
    """Start a writer, SIGKILL it ``delay_s`` after it opened the cache, and check the cache.

    A negative ``delay_s`` kills it ``-delay_s`` after it started, which may fall while it is
    still opening (recovering) the cache.
    """
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learners.cache.campaign",
            "writer",
            str(directory),
            str(seed),
            str(segment_bytes),
        ],
        stdout=subprocess.PIPE,
        cwd=_REPO,
        env=env,
    )
    assert proc.stdout is not None
    if delay_s >= 0:
        ready = proc.stdout.readline()
        if ready != b"ready\n":
            proc.kill()
            proc.wait()
            raise RuntimeError(f"writer failed to start (exit {proc.returncode}): {ready!r}")
    time.sleep(abs(delay_s))
    proc.send_signal(signal.SIGKILL)
    output, _ = proc.communicate()
    lines = output.split(b"\n")[:-1]  # the part after the last newline was cut by the kill
    acked = {}
    for line in lines:
        if line == b"ready":
            continue
        offset, key = line.split(b" ")
        s, n = (int(x) for x in key.split(b":"))
        acked[int(offset)] = payload(s, n)
    with ReplayCache(directory, campaign_config(segment_bytes)) as cache:
        missing = []
        for offset, data in acked.items():
            try:
                if cache.read_raw(offset) != data:
                    missing.append(offset)
            except Exception:
                missing.append(offset)
        records = bad = 0
        for _offset, data in cache.iter_records(raw=True):
            records += 1
            bad += not check_payload(data)
        probe = payload(seed, 10**9)
        offset = cache.append(probe)
        append_ok = cache.wait_durable(offset, timeout=30) and cache.read_raw(offset) == probe
    return TrialResult(len(acked), records, missing, bad, append_ok)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "writer":
        run_writer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: python -m learners.cache.campaign writer DIR SEED SEGMENT_BYTES")
