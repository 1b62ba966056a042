"""Acknowledged means durable, across a power loss, not only across the death of the process.

A process that dies leaves the OS every byte it wrote; a power loss (or a kernel crash) keeps only
what was synced. The kill -9 tests (test_cache_crash.py) cannot tell the two apart: a cache that
never synced would pass them. Here a writer runs under an LD_PRELOAD shim (powerloss/writelog.c)
that records every write, truncation, sync and name change it makes under its directory, in order,
and writes an acknowledgement marker into the same log each time the cache says records are
durable (powerloss/workload.py). The replayer (powerloss/replay.py) then rebuilds, at many points
of that log, the directories a disk could hold after a power loss there: only what was synced,
and that plus random choices of the unsynced writes (reordered and torn at 512-byte sectors) and
of each directory's unsynced name changes. Each is opened as a restart after a reboot would open
it (recovery, then an append), and every record acknowledged before that point must read back
byte for byte; no record may read back wrong; a committed consumer position must hold. The same
is checked for an actor's spool (every batch offered to the link survives, no sequence number is
reused).

test_the_checker_finds_the_loss_when_syncs_are_dropped runs the same checker on writers that do
not sync what they acknowledge (the shim drops all syncs, only LMDB's data file's, only its meta
page's, or only directories'; or the cache acknowledges before syncing, "os-buffered" and "none")
and requires it to find lost acknowledged records: a checker that cannot fail proves nothing. To
watch the main tests fail by hand, set ``WRITELOG_NOSYNC=all`` (or ``data``, ``meta``, ``dirs``)
when running this file.

``RILL_POWERLOSS_SEED=SEED`` replays the workload and the choice of crash states of a run (the
seed is printed, and named in every failure); thread timing still varies the log a little, so a
failing run also keeps its event log and the failing directory under pytest's tmp_path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from learners.cache import (
    CacheConfig,
    CacheCorruptError,
    NoSuchRecordError,
    ReplayCache,
)
from learners.cache.batch import encode_batch
from learners.cache.files import boot_id
from learners.link.spool import ActorSpool

HERE = Path(__file__).resolve().parent / "powerloss"
REPO = Path(__file__).resolve().parents[3]
SEED_ENV = "RILL_POWERLOSS_SEED"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"powerloss_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


replay = _load("replay")
workload = _load("workload")


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """writelog.c, compiled for this machine."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the write-recording shim is an LD_PRELOAD library for Linux (glibc)")
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build the write-recording shim")
    out = tmp_path_factory.mktemp("shim") / "writelog.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out), str(HERE / "writelog.c"), "-ldl",
         "-lpthread"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


@pytest.fixture
def powerloss_seed(request: pytest.FixtureRequest) -> int:
    value = os.environ.get(SEED_ENV, "").strip()
    seed = int(value) if value else random.SystemRandom().randrange(2**32)
    print(f"power-loss seed {seed}; replay: {SEED_ENV}={seed} pytest {request.node.nodeid}")
    request.node.user_properties.append(("powerloss_seed", seed))
    return seed


@dataclass
class Recording:
    """A recorded run: its event log, the disk model before it, and what it acknowledged."""

    root: Path
    log: Path
    events: list[replay.Event]
    disk: replay.Disk  # before any event
    acks: list[tuple[int, str, list[int]]] = field(default_factory=list)  # (event, kind, values)


def record(
    shim: Path,
    tmp: Path,
    mode: str,
    seed: int,
    groups: int,
    nosync: str = "",
    durability: str = "fsync",
    *,
    cache_dir_exists: bool = True,
) -> Recording:
    """Run the workload under the shim in ``tmp/disk`` (its cache in ``tmp/disk/cache``).
    ``nosync`` drops syncs (see writelog.c); ``$WRITELOG_NOSYNC`` does the same to every run, to
    watch this file's tests fail by hand.

    The cache's directory exists, durably, before the run, as a deployment's would (``runs/<name>``
    made by ``rill run``): the cache does not make its own ``mkdir`` durable (see
    test_a_cache_that_made_its_own_directory_survives_power_loss)."""
    root = (tmp / "disk").resolve()
    root.mkdir(parents=True)
    if cache_dir_exists:
        (root / "cache").mkdir()
    disk = replay.Disk(root)  # the state before the run, all of it durable
    log = tmp / "events.bin"
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        LD_PRELOAD=str(shim),
        WRITELOG_ROOT=str(root),
        WRITELOG_OUT=str(log),
        WRITELOG_NOSYNC=nosync or os.environ.get("WRITELOG_NOSYNC", ""),
    )
    args = [sys.executable, str(HERE / "workload.py"), mode, str(root / "cache"), str(root / "acks")]
    proc = subprocess.run(
        [*args, str(seed), str(groups), durability], env=env, cwd=REPO, capture_output=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr.decode()[-4000:]
    events = replay.read_log(log)
    recording = Recording(root, log, events, disk)
    ack_path = str(root / "acks")
    ack_fds: set[int] = set()
    for e in events:
        if e.type == replay.OPEN:
            (ack_fds.add if e.path1 == ack_path else ack_fds.discard)(e.fd)
        elif e.type == replay.WRITE and e.fd in ack_fds:
            kind, *values = e.data.decode().split()
            recording.acks.append((e.index, kind, [int(v) for v in values]))
    return recording


def crash_points(recording: Recording, rng: random.Random, budget: int) -> list[int]:
    """Where to cut the log (``k``: events before ``k`` happened): just after every
    acknowledgement (the most it may demand), just after syncs, synced writes and name changes
    (where durable state moves), in the middle of syncs, and random points."""
    events = recording.events
    acks = [i + 1 for i, _, _ in recording.acks]
    moves = [
        e.index + 1
        for e in events
        if e.type in (replay.SYNC_END, replay.SYNC_BEGIN, replay.RENAME, replay.MKDIR, replay.UNLINK)
        or (e.type == replay.WRITE and e.flags & 1)
    ]
    points = set(rng.sample(acks, min(len(acks), budget // 2)))
    points.update(rng.sample(moves, min(len(moves), budget // 3)))
    while len(points) < budget:
        points.add(rng.randrange(len(events) + 1))
    points.add(len(events))  # the end: a clean close
    return sorted(points)


def reboot(cache_dir: Path) -> None:
    """A power loss is followed by a reboot: the LOCK file a writer left names another boot, so
    that recovery takes the path for a machine crash, not the one for a process killed on this
    boot (which may trust the OS to have kept every page)."""
    lock = cache_dir / "LOCK"
    me = boot_id()
    if me and lock.exists():
        text = lock.read_bytes()
        lock.write_bytes(text.replace(me.encode(), b"0" * len(me)))


@dataclass
class StateResult:
    problems: list[str] = field(default_factory=list)


def open_recovered(cache_dir: Path, open_cache, anything_acked: bool, result: StateResult):
    """Open what a restart finds (recovery runs); None, with the finding noted, if it fails."""
    try:
        return open_cache()
    except Exception as exc:  # any failure to restart is a finding
        result.problems.append(f"the cache does not open: {type(exc).__name__}: {exc}")
        return None


class Payloads(dict):
    """Record bytes by offset, made once per run (many states read the same records)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def __missing__(self, offset: int) -> bytes:
        data = self[offset] = workload.payload(self.seed, offset)
        return data


def check_cache_state(cache_dir: Path, payloads: Payloads, acks: list) -> StateResult:
    """What is wrong with the cache a restart finds at ``cache_dir``, given the acknowledgements
    the writer made before the power loss."""
    acked = max((v[0] for _, kind, v in acks if kind == "A"), default=-1)
    committed = max((v[0] for _, kind, v in acks if kind == "C"), default=0)
    result = StateResult()
    problems = result.problems
    config = CacheConfig(segment_bytes=workload.SEGMENT_BYTES)
    cache = open_recovered(cache_dir, lambda: ReplayCache(cache_dir, config), bool(acks), result)
    if cache is None:
        return result
    try:
        present = set(cache.offsets())
        for offset in range(acked + 1):
            if offset not in present:
                problems.append(f"acknowledged record {offset} is missing")
                continue
            try:
                data = cache.read(offset)
            except (CacheCorruptError, NoSuchRecordError) as exc:
                problems.append(f"acknowledged record {offset} does not read back: {exc}")
                continue
            if data != payloads[offset]:
                problems.append(f"acknowledged record {offset} reads back different bytes")
        for offset in sorted(present):  # records past the acknowledged ones may be lost, never wrong
            if offset <= acked:
                continue
            try:
                data = cache.read(offset)
            except CacheCorruptError:
                continue  # reported as corrupt, not returned: allowed for an unacknowledged one
            if data != payloads[offset]:
                problems.append(f"record {offset} (not acknowledged) reads back wrong bytes")
        position = cache.consumer("learner").committed
        if position < committed:
            problems.append(f"consumer 'learner' resumes at {position}, it had committed {committed}")
        after = cache.append(b"after the power loss")
        if after <= acked:
            problems.append(f"a new record got offset {after}, which an acknowledged one holds")
        if not cache.flush(timeout=10):
            problems.append("a record appended after recovery never became durable")
    except Exception as exc:
        problems.append(f"reading the recovered cache failed: {type(exc).__name__}: {exc}")
    finally:
        try:
            cache.close()
        except Exception as exc:
            problems.append(f"closing the recovered cache failed: {type(exc).__name__}: {exc}")
    return result


def check_spool_state(cache_dir: Path, payloads: Payloads, acks: list) -> StateResult:
    """The same for an actor's spool: every batch offered to the link is there, byte for byte;
    no sequence number the learner may have seen is handed out again; the acknowledged position
    committed on disk holds."""
    offered = [v for _, kind, v in acks if kind == "S"]
    committed = max((v[0] for _, kind, v in acks if kind == "K"), default=0)
    result = StateResult()
    problems = result.problems

    def open_spool():
        return ActorSpool(cache_dir, workload.ACTOR, "fsync", keep_bytes=None,
                          segment_bytes=workload.SEGMENT_BYTES)

    spool = open_recovered(cache_dir, open_spool, bool(acks), result)
    if spool is None:
        return result
    try:
        for first, last, offset in offered:
            try:
                data = spool.cache.read_raw(offset)
            except (CacheCorruptError, NoSuchRecordError) as exc:
                problems.append(f"offered batch {first}..{last} at offset {offset} is lost: {exc}")
                continue
            if data != payloads[(first, last)]:
                problems.append(f"offered batch {first}..{last} at offset {offset} reads back wrong")
        highest = max((last for _, last, _ in offered), default=0)
        following = spool.next_seq()
        if following <= highest:
            problems.append(f"next_seq {following} reuses a sequence number offered ({highest})")
        position = spool.cache.consumers().get(workload.ACKED, 0)
        if position < committed:
            problems.append(f"the spool's acked position is {position}, it had committed {committed}")
    except Exception as exc:
        problems.append(f"reading the recovered spool failed: {type(exc).__name__}: {exc}")
    finally:
        try:
            spool.close()
        except Exception as exc:
            problems.append(f"closing the recovered spool failed: {type(exc).__name__}: {exc}")
    return result


class BatchPayloads(Payloads):
    """The batch bytes the spool stored for transitions ``first..last``."""

    def __missing__(self, key: tuple[int, int]) -> bytes:
        first, last = key
        rows = workload.transitions(workload.ACTOR, first, last - first + 1, self.seed)
        data = self[key] = encode_batch(rows)
        return data


class DamageCounter(logging.Handler):
    """Counts recoveries that found an LMDB file damaged and salvaged it: evidence that the
    random crash states reach the salvage path, not only clean states."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "LMDB structure damaged" in record.getMessage():
            self.count += 1


@dataclass
class Verdict:
    states: int = 0
    with_acks: int = 0  # states checked against at least one acknowledgement
    salvaged: int = 0  # states whose recovery salvaged a damaged segment
    failures: list[str] = field(default_factory=list)
    kept: Path | None = None


@contextlib.contextmanager
def scratch_dir(tmp: Path) -> Iterator[Path]:
    """Where the crash states are written: tmpfs when the machine has one (hundreds of small
    directories are written, opened, synced and removed; on a real disk the removals alone take
    seconds), else ``tmp``."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp
    path = Path(tempfile.mkdtemp(prefix="rill-powerloss-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def check_recording(
    recording: Recording,
    seed: int,
    tmp: Path,
    *,
    budget: int,
    random_states: int,
    check,
    payloads: Payloads,
    stop_at_first: bool = False,
) -> Verdict:
    """Replay ``recording`` and check the states a power loss at each crash point could leave:
    the durable-only one and ``random_states`` random ones per point."""
    rng = random.Random(seed)
    disk = recording.disk
    verdict = Verdict()
    acks = recording.acks
    counter = DamageCounter()
    logging.getLogger("learners.cache").addHandler(counter)
    try:
        with scratch_dir(tmp) as scratch:
            for n, k in enumerate(crash_points(recording, rng, budget)):
                disk.replay(recording.events, k)
                before = [a for a in acks if a[0] < k]
                for variant in range(random_states + 1):
                    state_rng = None if variant == 0 else random.Random(f"{seed}:{k}:{variant}")
                    state = scratch / f"{n}.{variant}"
                    disk.materialize(state, state_rng, skip=frozenset({"acks"}))
                    reboot(state / "cache")
                    salvaged = counter.count
                    result = check(state / "cache", payloads, before)
                    shutil.rmtree(state)
                    verdict.states += 1
                    verdict.with_acks += bool(before)
                    verdict.salvaged += counter.count > salvaged
                    if not result.problems:
                        continue
                    kind = "durable-only" if variant == 0 else f"random #{variant}"
                    where = f"power loss before event {k} of {len(recording.events)} ({kind} state)"
                    verdict.failures.append(f"{where}: {'; '.join(result.problems[:3])}")
                    if verdict.kept is None:
                        verdict.kept = tmp / f"failed-at-{k}-{variant}"
                        state_rng = None if variant == 0 else random.Random(f"{seed}:{k}:{variant}")
                        disk.materialize(verdict.kept, state_rng, skip=frozenset({"acks"}))
                    if stop_at_first:
                        return verdict
    finally:
        logging.getLogger("learners.cache").removeHandler(counter)
    return verdict


def report(verdict: Verdict, recording: Recording, seed: int, started: float) -> str:
    return (
        f"seed {seed}: {verdict.states} crash states of {len(recording.events)} events checked in "
        f"{time.monotonic() - started:.1f} s ({verdict.with_acks} after acknowledgements, "
        f"{verdict.salvaged} salvaged a damaged segment)"
    )


def assert_no_loss(verdict: Verdict, recording: Recording, seed: int) -> None:
    assert not verdict.failures, (
        f"seed {seed}: {len(verdict.failures)} of {verdict.states} crash states lose or damage "
        f"acknowledged data; first: {verdict.failures[0]} (that state is kept at {verdict.kept}, "
        f"the event log at {recording.log})"
    )


def test_acknowledged_records_survive_power_loss(shim: Path, tmp_path: Path, powerloss_seed: int) -> None:
    started = time.monotonic()
    recording = record(shim, tmp_path, "cache", powerloss_seed, groups=120)
    assert any(kind == "A" for _, kind, _ in recording.acks), "the workload acknowledged nothing"
    # Its few-pages records went to blob files (direct I/O, O_DSYNC): those writes are checked too.
    assert list((recording.root / "cache").glob("*.lmdb/blobs.dat")), "no external record was written"
    verdict = check_recording(
        recording, powerloss_seed, tmp_path, budget=120, random_states=2, check=check_cache_state,
        payloads=Payloads(powerloss_seed),
    )
    print(report(verdict, recording, powerloss_seed, started))
    assert_no_loss(verdict, recording, powerloss_seed)
    assert verdict.with_acks >= verdict.states // 2  # the crash points are not all before any ack


def test_batches_an_actor_offered_survive_power_loss(shim: Path, tmp_path: Path, powerloss_seed: int) -> None:
    started = time.monotonic()
    recording = record(shim, tmp_path, "spool", powerloss_seed, groups=80)
    assert any(kind == "S" for _, kind, _ in recording.acks), "the actor offered nothing"
    verdict = check_recording(
        recording, powerloss_seed, tmp_path, budget=60, random_states=1, check=check_spool_state,
        payloads=BatchPayloads(powerloss_seed),
    )
    print(report(verdict, recording, powerloss_seed, started))
    assert_no_loss(verdict, recording, powerloss_seed)


@pytest.mark.parametrize(
    ("nosync", "durability"),
    [
        ("all", "fsync"),
        ("data", "fsync"),
        ("meta", "fsync"),
        ("dirs", "fsync"),
        ("", "os-buffered"),
        ("", "none"),
    ],
)
def test_the_checker_finds_the_loss_when_syncs_are_dropped(
    shim: Path, tmp_path: Path, powerloss_seed: int, nosync: str, durability: str
) -> None:
    """The same checker on writers that do not sync what they acknowledge: the shim drops their
    syncs (all of them; LMDB's data file's, keeping its synced meta page; the meta page's, as
    LMDB's NOMETASYNC would; directories'), or the cache runs in a mode that acknowledges before a
    sync ("os-buffered": at commit, "none": at append). Each must be caught losing acknowledged
    records."""
    recording = record(shim, tmp_path, "cache", powerloss_seed, groups=60, nosync=nosync,
                       durability=durability)
    verdict = check_recording(
        recording, powerloss_seed, tmp_path, budget=40, random_states=0, check=check_cache_state,
        payloads=Payloads(powerloss_seed), stop_at_first=True,
    )
    assert verdict.failures and "acknowledged record" in verdict.failures[0], (
        f"seed {powerloss_seed}: with WRITELOG_NOSYNC={nosync!r}, durability={durability!r} no "
        f"acknowledged record was lost in {verdict.states} crash states: the checker cannot fail"
    )
    print(f"caught: {verdict.failures[0]}")


def test_a_cache_that_made_its_own_directory_survives_power_loss(
    shim: Path, tmp_path: Path, powerloss_seed: int
) -> None:
    """The cache creates its directory (and its missing parents) itself: each new entry is synced
    into its parent, or a power loss could drop the directory and everything acknowledged under it
    (POSIX; ext4 and XFS journal the mkdir with the first fsync inside, which hides it)."""
    recording = record(shim, tmp_path, "cache", powerloss_seed, groups=30, cache_dir_exists=False)
    verdict = check_recording(
        recording, powerloss_seed, tmp_path, budget=20, random_states=0, check=check_cache_state,
        payloads=Payloads(powerloss_seed), stop_at_first=True,
    )
    assert_no_loss(verdict, recording, powerloss_seed)


def test_a_cache_whose_creation_was_cut_short_opens(tmp_path: Path) -> None:
    """A crash between creating ``.CACHE.tmp`` and renaming it to CACHE (kill -9 is enough) leaves
    a directory holding only that temporary: nothing was ever stored, so it opens as a new cache."""
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / ".CACHE.tmp").write_bytes(b'{"magic": "rill-replay-cache"')
    with ReplayCache(directory, CacheConfig()) as cache:
        assert cache.wait_durable(cache.append(b"first"), timeout=10)
