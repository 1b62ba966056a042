"""Replay cache benchmark: this cache (on LMDB) against raw LMDB, SQLite and the raw disk.

    python -m bench.cache [--quick] [--crash [--trials N]] --json OUT [--dir DIR]

Measures durable appends/s for 1 KB and 100 KB records (everyone syncs once per group of
``--group-bytes``): this cache with its defaults, LMDB used directly (sync on commit), SQLite
(WAL, synchronous=FULL, batched transactions), and the raw sequential write + fdatasync rate of
the disk. Then, on a 1 GB cache of 1 KB records: open times (clean, after a SIGKILL, without its
seal markers), the first read of every segment (each passes its trust check then), random reads/s,
a full ``verify``; and the record codec's microseconds per state-sized transition.
``--crash`` runs the SIGKILL crash campaign (200 trials by default) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lmdb
import numpy as np
from rich.console import Console
from rich.table import Table

from learners.cache import CacheConfig, ReplayCache
from learners.cache.campaign import crash_trial
from learners.cache.records import decode_transition, encode_transition
from learners.cache.verify import verify_cache
from learners.transition import Transition

MiB = 1024 * 1024
SIZES = {"1KB": 1024, "100KB": 100 * 1024}
SYSTEMS = ("cache", "cache_batch", "lmdb", "sqlite")
LABELS = {
    "cache": "this cache (on LMDB)",
    "cache_batch": "same, append_many x1024",
    "lmdb": "LMDB, direct",
    "sqlite": "SQLite",
}
_REPO = Path(__file__).resolve().parents[1]


def payloads(size: int, count: int = 64) -> list[bytes]:
    rng = random.Random(size)
    return [rng.randbytes(size) for _ in range(count)]


def raw_disk(directory: Path, total: int, group: int) -> float:
    """Sequential write + fdatasync per group, in bytes/s."""
    chunk = os.urandom(group)
    fd = os.open(directory / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    for _ in range(total // group):
        os.write(fd, chunk)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return (total // group) * group / elapsed


def bench_cache(directory: Path, size: int, n: int, group: int) -> float:
    data = payloads(size)
    config = CacheConfig(commit_bytes=group, commit_interval_ms=5.0, durability="fsync")
    with ReplayCache(directory, config) as cache:
        append = cache.append
        start = time.perf_counter()
        for i in range(n):
            offset = append(data[i & 63])
        cache.wait_durable(offset)
        elapsed = time.perf_counter() - start
    return n / elapsed


def bench_cache_batch(directory: Path, size: int, n: int, group: int) -> float:
    """Batches of 1024 records, as the learner's server appends what an actor sent."""
    data = payloads(size)
    batches = [[data[(i + j) & 63] for j in range(1024)] for i in range(0, 64 * 1024, 1024)]
    config = CacheConfig(commit_bytes=group, commit_interval_ms=5.0, durability="fsync")
    with ReplayCache(directory, config) as cache:
        append_many = cache.log.append_many
        start = time.perf_counter()
        for i in range(0, n, 1024):
            offsets = append_many(batches[(i >> 10) & 63][: n - i])
        cache.wait_durable(offsets[-1])
        elapsed = time.perf_counter() - start
    return n / elapsed


def bench_sqlite(directory: Path, size: int, n: int, group: int) -> float:
    data = payloads(size)
    db = sqlite3.connect(directory / "bench.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    batch = max(group // size, 1)
    start = time.perf_counter()
    for first in range(0, n, batch):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO records (data) VALUES (?)",
            ((data[i & 63],) for i in range(first, min(first + batch, n))),
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return n / elapsed


def bench_lmdb(directory: Path, size: int, n: int, group: int) -> float:
    data = payloads(size)
    env = lmdb.open(str(directory / "bench.lmdb"), map_size=64 << 30, sync=True, metasync=True)
    batch = max(group // size, 1)
    start = time.perf_counter()
    for first in range(0, n, batch):
        with env.begin(write=True) as txn:
            put = txn.put
            for i in range(first, min(first + batch, n)):
                put(i.to_bytes(8, "big"), data[i & 63], append=True)
    elapsed = time.perf_counter() - start
    env.close()
    return n / elapsed


def random_reads(directory: Path, system: str, n: int, count: int) -> float:
    rng = random.Random(1)
    if system == "cache":
        with ReplayCache(directory, CacheConfig(read_only=True)) as cache:
            picks = [rng.randrange(n) for _ in range(count)]
            read = cache.read_raw
            for o in picks[:100]:
                read(o)  # the first read of a segment checks it before LMDB maps it
            start = time.perf_counter()
            for o in picks:
                read(o)
            return count / (time.perf_counter() - start)
    if system == "sqlite":
        db = sqlite3.connect(directory / "bench.db")
        picks = [rng.randint(1, n) for _ in range(count)]
        start = time.perf_counter()
        for i in picks:
            db.execute("SELECT data FROM records WHERE id = ?", (i,)).fetchone()
        rate = count / (time.perf_counter() - start)
        db.close()
        return rate
    env = lmdb.open(str(directory / "bench.lmdb"), readonly=True, lock=False)
    picks = [rng.randrange(n).to_bytes(8, "big") for _ in range(count)]
    with env.begin(buffers=False) as txn:
        get = txn.get
        start = time.perf_counter()
        for k in picks:
            get(k)
        rate = count / (time.perf_counter() - start)
    env.close()
    return rate


_KILLED_WRITER = """
import sys
from learners.cache import CacheConfig, ReplayCache
cache = ReplayCache(sys.argv[1], CacheConfig())
cache.wait_durable(cache.append_many([b"x" * 1024] * 1000)[-1])
print("durable", flush=True)
sys.stdin.read()
"""


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def recovery(directory: Path, total: int, size: int) -> dict[str, float]:
    """A cache of ``total`` payload bytes: open times, first reads, random reads, verify."""
    record = os.urandom(size)
    path = directory / "big"
    with ReplayCache(path, CacheConfig()) as cache:
        for _ in range(total // (size * 1024)):
            last = cache.append_many([record] * 1024)[-1]
        cache.wait_durable(last)
    files = list(path.glob("*.lmdb/data.mdb"))
    out: dict[str, float] = {"bytes": sum(p.stat().st_size for p in files), "segments": len(files)}

    def open_close() -> None:
        ReplayCache(path, CacheConfig()).close()

    out["open_s"] = _timed(open_close)
    # A writer killed by SIGKILL after a durable append: its active segment was not closed
    # cleanly, so the next open checks its structure before LMDB maps it.
    env = dict(os.environ, PYTHONPATH=str(_REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"durable\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out["open_after_sigkill_s"] = _timed(open_close)
    with ReplayCache(path, CacheConfig(read_only=True)) as cache:
        firsts = [s.base for s in cache.log.segments()]
        out["first_read_of_every_segment_s"] = _timed(lambda: [cache.read_raw(o) for o in firsts])
        n = cache.durable_offset
        picks = [random.Random(2).randrange(n) for _ in range(20000)]
        out["random_reads_per_s"] = len(picks) / _timed(lambda: [cache.read_raw(o) for o in picks])
    for marker in (*path.glob("*.lmdb/SEALED"), *path.glob("*.lmdb/CLOSED")):
        marker.unlink()
    out["open_without_markers_s"] = _timed(open_close)
    with ReplayCache(path, CacheConfig(read_only=True)) as cache:
        firsts = [s.base for s in cache.log.segments()]
        out["first_read_of_every_segment_without_markers_s"] = _timed(
            lambda: [cache.read_raw(o) for o in firsts]
        )
    out["verify_s"] = _timed(lambda: verify_cache(path))
    shutil.rmtree(path)
    return out


def codec_speed(reps: int = 5, n: int = 20000) -> dict[str, float]:
    """Microseconds to encode / decode one state-sized transition (as the actor and learner do)."""
    rng = np.random.default_rng(0)
    t = Transition(
        rng.standard_normal(17).astype(np.float32),
        rng.standard_normal(6).astype(np.float32),
        0.5,
        rng.standard_normal(17).astype(np.float32),
        False,
        False,
        actor_id="actor-0",
        seq=12345,
        episode=7,
        step=99,
        policy_version=42,
        behavior_logp=-1.5,
        timestamp=1.7e9,
        extras={"raw_reward": 0.25},
    )
    record = encode_transition(t)

    def best(run: Callable[[], object]) -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            for _ in range(n):
                run()
            times.append((time.perf_counter() - start) / n * 1e6)
        return min(times)

    return {
        "record_bytes": len(record),
        "encode_us": best(lambda: encode_transition(t)),
        "decode_us": best(lambda: decode_transition(record, max_size=1 << 20)),
    }


def run_throughput(root: Path, quick: bool, group: int, console: Console) -> dict:
    total = (32 if quick else 256) * MiB
    reps = 1 if quick else 3
    results: dict = {"raw_disk_MBps": [], "appends_per_s": {}, "random_reads_per_s": {}}
    benches = {
        "cache": bench_cache,
        "cache_batch": bench_cache_batch,
        "lmdb": bench_lmdb,
        "sqlite": bench_sqlite,
    }
    samples: dict = {label: {s: [] for s in benches} for label in SIZES}
    raw_disk(root, 64 * MiB, group)  # warm-up: the first writes of a process run slow here
    for rep in range(reps):  # interleaved, so a slow spell of the disk hits everyone alike
        results["raw_disk_MBps"].append(raw_disk(root, total, group) / 1e6)
        for label, size in SIZES.items():
            n = total // size
            for system, bench in benches.items():
                work = root / f"{system}-{label}-{rep}"
                work.mkdir()
                samples[label][system].append(bench(work, size, n, group))
                if label == "1KB" and rep == reps - 1 and system != "cache_batch":
                    reads = random_reads(work, system, n, 50_000 if not quick else 10_000)
                    results["random_reads_per_s"][system] = reads
                shutil.rmtree(work)
            console.log(
                f"rep {rep + 1}/{reps} {label}: "
                + ", ".join(f"{s} {samples[label][s][-1]:,.0f}/s" for s in benches)
            )
    results["raw_disk_MBps_samples"] = results["raw_disk_MBps"]
    results["raw_disk_MBps"] = statistics.median(results["raw_disk_MBps"])
    for label in SIZES:
        results["appends_per_s"][label] = {s: statistics.median(v) for s, v in samples[label].items()}
    results["samples"] = samples
    return results


def ratios(results: dict) -> dict:
    small = results["appends_per_s"]["1KB"]
    large = results["appends_per_s"]["100KB"]
    large_MBps = large["cache"] * SIZES["100KB"] / 1e6
    return {
        "cache_vs_lmdb_1KB": small["cache"] / small["lmdb"],
        "cache_vs_lmdb_100KB": large["cache"] / large["lmdb"],
        "cache_batch_vs_lmdb_1KB": small["cache_batch"] / small["lmdb"],
        "cache_100KB_MBps": large_MBps,
        "cache_100KB_fraction_of_raw_disk": large_MBps / results["raw_disk_MBps"],
    }


def print_tables(console: Console, results: dict) -> None:
    table = Table(title="durable appends/s (sync per group commit)")
    table.add_column("record")
    for s in (*SYSTEMS, "raw disk"):
        table.add_column(LABELS.get(s, s), justify="right")
    raw = results["raw_disk_MBps"] * 1e6
    for label, size in SIZES.items():
        row = results["appends_per_s"][label]
        table.add_row(label, *(f"{row[s]:,.0f}" for s in SYSTEMS), f"{raw / size:,.0f}")
    console.print(table)
    rec = results["recovery"]
    other = Table(title=f"reads and recovery ({rec['bytes'] / 1e9:.2f} GB cache, {rec['segments']} segments)")
    other.add_column("measure")
    other.add_column("value", justify="right")
    for s, rate in results["random_reads_per_s"].items():
        other.add_row(f"random reads/s, 1KB, {LABELS[s]}", f"{rate:,.0f}")
    for key, value in rec.items():
        if key.endswith("_s"):
            other.add_row(key, f"{value:.3f}")
    other.add_row("random reads/s on it (cache)", f"{rec['random_reads_per_s']:,.0f}")
    codec = results["codec"]
    other.add_row(f"encode / decode a {codec['record_bytes']} B transition (us)",
                  f"{codec['encode_us']:.2f} / {codec['decode_us']:.2f}")  # fmt: skip
    console.print(other)
    r = results["ratios"]
    console.print(
        f"cache / LMDB direct: 1KB {r['cache_vs_lmdb_1KB']:.2f}x (append_many "
        f"{r['cache_batch_vs_lmdb_1KB']:.2f}x), 100KB {r['cache_vs_lmdb_100KB']:.2f}x; "
        f"cache 100KB / raw disk: {r['cache_100KB_fraction_of_raw_disk']:.2f}"
    )


def run_crash(root: Path, trials: int, console: Console) -> dict:
    rng = random.Random(42)
    failures, acked, records = [], 0, 0
    start = time.perf_counter()
    for trial in range(trials):
        directory = root / f"crash{trial // 20}"
        delay = rng.uniform(0.0, 0.4) if trial % 4 else -rng.uniform(0.05, 0.5)
        r = crash_trial(directory, seed=trial, delay_s=delay, segment_bytes=64 * 1024)
        acked += r.acked
        records = r.records
        if r.missing or r.bad_records or not r.append_ok:
            failures.append(
                {"trial": trial, "missing": r.missing[:10], "bad": r.bad_records, "append_ok": r.append_ok}
            )
        if (trial + 1) % 20 == 0:
            report = verify_cache(directory)
            if not report.ok:
                failures.append({"trial": trial, "verify": [p.problem for p in report.problems][:5]})
            console.log(f"{trial + 1}/{trials} trials, {len(failures)} failed, {acked} acked")
            shutil.rmtree(directory)
    return {
        "trials": trials,
        "failed": len(failures),
        "failures": failures,
        "acked_records_checked": acked,
        "last_cache_records": records,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--crash", action="store_true", help="run the SIGKILL crash campaign")
    parser.add_argument("--trials", type=int, default=200, help="crash trials (default 200)")
    parser.add_argument("--json", type=Path, required=True, help="write the results here")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to write (default: a temp dir under /tmp); the same disk for every system",
    )
    parser.add_argument("--group-bytes", type=int, default=MiB, help="bytes per group commit")
    args = parser.parse_args()
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="rill-bench-", dir=args.dir))
    try:
        if args.crash:
            results = {"crash": run_crash(root, args.trials, console)}
            c = results["crash"]
            console.print(
                f"crash campaign: {c['trials']} SIGKILL trials, {c['failed']} failed, "
                f"{c['acked_records_checked']:,} acknowledged records checked"
            )
        else:
            results = run_throughput(root, args.quick, args.group_bytes, console)
            size = (128 if args.quick else 1024) * MiB
            results["recovery"] = recovery(root, size, 1024)
            results["codec"] = codec_speed(reps=2 if args.quick else 5)
            results["ratios"] = ratios(results)
            print_tables(console, results)
        results["meta"] = {
            "quick": args.quick,
            "group_bytes": args.group_bytes,
            "dir": str(root),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
        args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
