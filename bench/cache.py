"""Replay cache benchmark: the hand-written log against SQLite and LMDB, on the same disk.

    python -m bench.cache [--quick] [--crash [--trials N]] --json OUT [--dir DIR]

Measures durable appends/s for 1 KB and 100 KB records (everyone fsyncs once per group of
``--group-bytes``), the raw sequential write + fdatasync rate of the disk, recovery time of a
1 GB cache, and random reads/s; then applies the issue's rule: keep the hand-written log only if
it is >= 2x the better library on small records and >= 0.7 of raw disk on large ones.
``--crash`` runs the SIGKILL crash campaign (200 trials by default) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lmdb
from rich.console import Console
from rich.table import Table

from learners.cache import CacheConfig, ReplayCache
from learners.cache.campaign import crash_trial

MiB = 1024 * 1024
SIZES = {"1KB": 1024, "100KB": 100 * 1024}


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
            offsets = list(cache.log.offsets())
            picks = [rng.choice(offsets) for _ in range(count)]
            read = cache.read_raw
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


def recovery(directory: Path, total: int, size: int) -> dict[str, float]:
    """Open times of a cache of ``total`` bytes: clean, with a torn tail, without indexes."""
    record = os.urandom(size)
    path = directory / "big"
    with ReplayCache(path, CacheConfig()) as cache:
        for _ in range(total // (size * 1024)):
            cache.append_many([record] * 1024)
    out: dict[str, float] = {"bytes": sum(p.stat().st_size for p in path.glob("*.log"))}

    def timed_open() -> float:
        start = time.perf_counter()
        cache = ReplayCache(path, CacheConfig())
        elapsed = time.perf_counter() - start
        cache.close()
        return elapsed

    out["open_s"] = timed_open()
    active = sorted(path.glob("*.log"))[-1]
    with open(active, "r+b") as f:
        f.truncate(active.stat().st_size - size // 2)  # tear the last record
    out["open_torn_tail_s"] = timed_open()
    for index in path.glob("*.idx"):
        index.unlink()
    out["open_without_indexes_s"] = timed_open()
    with ReplayCache(path, CacheConfig(read_only=True)) as cache:
        offsets = list(cache.log.offsets())
        picks = [random.Random(2).choice(offsets) for _ in range(20000)]
        start = time.perf_counter()
        for o in picks:
            cache.read_raw(o)
        out["random_reads_per_s"] = len(picks) / (time.perf_counter() - start)
    shutil.rmtree(path)
    return out


def median_of(reps: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(reps))


def run_throughput(root: Path, quick: bool, group: int, console: Console) -> dict:
    total = (32 if quick else 256) * MiB
    reps = 1 if quick else 3
    results: dict = {"raw_disk_MBps": [], "appends_per_s": {}, "random_reads_per_s": {}}
    benches = {"cache": bench_cache, "sqlite": bench_sqlite, "lmdb": bench_lmdb}
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
                if label == "1KB" and rep == reps - 1:
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


def decide(results: dict) -> dict:
    small = results["appends_per_s"]["1KB"]
    large = results["appends_per_s"]["100KB"]
    best_lib = max(("sqlite", "lmdb"), key=lambda s: small[s])
    small_ratio = small["cache"] / small[best_lib]
    large_MBps = large["cache"] * SIZES["100KB"] / 1e6
    raw_ratio = large_MBps / results["raw_disk_MBps"]
    keep = small_ratio >= 2.0 and raw_ratio >= 0.7
    return {
        "better_library_small": best_lib,
        "small_ratio_vs_better_library": small_ratio,
        "large_fraction_of_raw_disk": raw_ratio,
        "cache_100KB_MBps": large_MBps,
        "keep_hand_written_log": keep,
        "verdict": "keep the hand-written log" if keep else f"build the cache on {best_lib}",
    }


def print_tables(console: Console, results: dict) -> None:
    table = Table(title="durable appends/s (fsync per group commit)")
    table.add_column("record")
    for s in ("cache", "sqlite", "lmdb", "raw disk"):
        table.add_column(s, justify="right")
    raw = results["raw_disk_MBps"] * 1e6
    for label, size in SIZES.items():
        row = results["appends_per_s"][label]
        table.add_row(label, *(f"{row[s]:,.0f}" for s in ("cache", "sqlite", "lmdb")), f"{raw / size:,.0f}")
    console.print(table)
    rec = results["recovery"]
    other = Table(title="reads and recovery")
    other.add_column("measure")
    other.add_column("value", justify="right")
    for s, rate in results["random_reads_per_s"].items():
        other.add_row(f"random reads/s, 1KB, {s}", f"{rate:,.0f}")
    other.add_row("cache size for recovery (bytes)", f"{rec['bytes']:,.0f}")
    for key in ("open_s", "open_torn_tail_s", "open_without_indexes_s"):
        other.add_row(key, f"{rec[key]:.3f}")
    other.add_row("random reads/s on it (cache)", f"{rec['random_reads_per_s']:,.0f}")
    console.print(other)
    d = results["decision"]
    console.print(
        f"cache / {d['better_library_small']} on 1KB: {d['small_ratio_vs_better_library']:.2f}x "
        f"(need >= 2); cache 100KB / raw disk: {d['large_fraction_of_raw_disk']:.2f} (need >= 0.7)"
        f" -> [bold]{d['verdict']}[/bold]"
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
                {
                    "trial": trial,
                    "missing": r.missing[:10],
                    "bad": r.bad_records,
                    "append_ok": r.append_ok,
                }
            )
        if (trial + 1) % 20 == 0:
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
            results["decision"] = decide(results)
            print_tables(console, results)
        results["meta"] = {
            "quick": args.quick,
            "group_bytes": args.group_bytes,
            "dir": str(root),
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
