"""The edge-cloud link, measured as ratios within one run on loopback.

    python -m bench.link [--quick] --json OUT

1. Acknowledged, durable transitions/s actor -> learner (state-sized ~300 B and image-sized
   96x96x3 transitions, built before the clock starts): a real actor side (column batches,
   local fsync'd spool, link thread) against a learner ingest process (decode and check every
   batch, append it to its fsync'd cache, ack once durable). Next to it, raw ZeroMQ moving
   precomputed bytes with no encoding, no checks and no disk, two ways: each transition's own
   record as a frame, 1024 frames a message (what shipping transitions one by one costs the
   transport), and the actor's own batch bytes, one frame a message (the bandwidth ceiling).
   On one machine every transition is also written durably twice (the actor's spool, the
   learner's cache) to the same disk; across machines each side has a disk of its own. So for
   image-sized transitions the physical limit is the disk, measured in the same run: two
   writers at once, 4 MiB direct synced writes (``disk_limit``). Full runs repeat the link and
   raw ZeroMQ three times and report the median run's ratio, and every run's. Image-sized
   transitions run a second actor side too, its spool writing behind the link
   (``durability="behind"``, ``learners/link/behind.py``: sent at once, written only if not
   acknowledged within a second), so the learner's cache holds the one durable copy.
   Image-sized transitions come twice: frames of random bytes (``image``: nothing compresses, the
   worst case, bound by the disk) and frames rendered by Meta-World's ``corner2`` camera
   (``camera``), which the actor's spool compresses (zstd, ``learners/cache/compression.py``) so
   the spool, the wire and the cache each carry a fraction of the bytes. Raw ZeroMQ moves the
   same transitions uncompressed in both.
2. Weight delivery latency for a 10M-parameter head: publish -> loaded into the actor's network,
   in float32 (exact) and float16 (``weights_dtype``); next to it, what the weights codec costs
   against the safetensors library (encode vs ``save``, decode vs ``load``, the chunked digest vs
   one SHA-256), the reason ``learners.link.tensors`` exists.
3. Learner update rate with 1, 2 and 4 actor processes streaming Hopper-v5.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine, print_table, write_json

REPO = Path(__file__).resolve().parents[1]


_TEMPLATES: dict[str, list] = {}


def camera_frames(n: int = 64) -> list[np.ndarray]:
    """``n`` consecutive 96x96 frames of Meta-World's ``corner2`` camera (reach-v3, the arm moved at
    random), rendered offscreen: what a camera-carrying actor records."""
    import gymnasium as gym

    import sim.tasks  # noqa: F401  registers the ids

    env = gym.make("rill/MetaWorld-reach-v3")
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        frames = []
        for _ in range(n):
            obs = env.step(env.action_space.sample())[0]
            frames.append(np.ascontiguousarray(obs["image.corner2"]))
        return frames
    finally:
        env.close()


def _record(seq: int, image: str | None) -> object:
    """A transition like an actor's (varied content, from 64 templates; only ``seq`` changes);
    ``image``: None (state only), ``"noise"`` (frames of random bytes: nothing to compress, the
    worst case) or ``"camera"`` (rendered camera frames, ``camera_frames``)."""
    import dataclasses

    from learners.transition import Transition

    if image not in _TEMPLATES:
        rng = np.random.default_rng(0)
        frames = camera_frames(64) if image == "camera" else None
        out = []
        for i in range(64):
            state = rng.normal(size=12).astype(np.float32)
            frame = frames[i] if frames else rng.integers(0, 255, (96, 96, 3), np.uint8)
            obs = {"state": state, "image.cam": frame} if image else state
            next_obs = {"state": state} if image else state
            out.append(
                Transition(
                    obs,
                    rng.normal(size=3).astype(np.float32),
                    0.5,
                    next_obs,
                    False,
                    False,
                    actor_id="bench",
                    behavior_logp=-1.0,
                    extras={"raw_reward": 0.5},
                )
            )
        _TEMPLATES[image] = out
    return dataclasses.replace(_TEMPLATES[image][seq % 64], seq=seq)


# -- learner side (a process of its own) --------------------------------------------------------
def _serve_ingest(endpoint: str, run_dir: str, ready) -> None:
    from learners.cache import CacheConfig, ReplayCache
    from learners.link.server import LearnerServer
    from learners.link.weights import WeightsBox
    from learners.service.config import LearnerConfig

    config = LearnerConfig(bind=endpoint, run_dir=Path(run_dir), obs_dim=12, action_dim=3)
    cache = ReplayCache(Path(run_dir) / "cache", CacheConfig(durability="fsync"))
    server = LearnerServer(config, cache, WeightsBox(), {})
    ready.set()
    try:
        server.serve()
    finally:
        cache.close()


def _serve_raw(endpoint: str, ready) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(endpoint)
    ready.set()
    while True:
        frames = sock.recv_multipart(copy=False)
        sock.send_multipart([frames[0], b"ack"])


def _spawn(target, *args):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready), daemon=True)
    proc.start()
    if not ready.wait(60):  # a child that died importing would otherwise leave the bench waiting forever
        proc.kill()
        proc.join(5)
        raise RuntimeError(f"bench.link: {target.__name__} did not start within 60 s "
                           f"(its process exited with {proc.exitcode})")
    return proc


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _transitions(n: int, image: str | None) -> list:
    return [_record(seq, image) for seq in range(1, n + 1)]


def link_throughput(transitions: list, tmp: Path, durability: str = "fsync") -> float:
    """Acked durable transitions/s through the real actor side (``TransitionStream``: batch encode,
    spool with ``durability``, link thread) into a learner ingest process (fsync'd cache)."""
    from learners.link.stream import TransitionStream

    n = len(transitions)
    image = isinstance(transitions[0].obs, dict)
    endpoint = f"tcp://127.0.0.1:{_port()}"
    # A fresh learner and a fresh spool for every run: the transitions are numbered 1..n.
    where = Path(tempfile.mkdtemp(prefix=f"{'img' if image else 'state'}-{durability}-", dir=tmp))
    proc = _spawn(_serve_ingest, endpoint, str(where / "learner"))
    spec = {"obs_dim": 12, "action_dim": 3, "n_actions": None, "algo": "stream-ac"}
    stream = TransitionStream(where / "actor", "bench", endpoint, spec, {}, durability=durability).start()
    link = stream.link
    try:
        while not link.connected:
            time.sleep(0.01)
        start = time.perf_counter()
        for t in transitions:  # numbered 1..n already, as a fresh spool would number them
            stream.emit(t)
        stream.flush()
        while link.acked_seq < n:
            time.sleep(0.0005)
        return n / (time.perf_counter() - start)
    finally:
        stream.close()
        proc.terminate()
        proc.join()
        shutil.rmtree(where, ignore_errors=True)


def _median_entry(runs: list[tuple[float, float]], raw_batch: float, n: int) -> dict:
    """The median run's figures (by its ratio to raw ZeroMQ), with every run's ratio."""
    ratios = sorted(link / raw for link, raw in runs)
    link, raw = runs[[link / raw for link, raw in runs].index(ratios[len(ratios) // 2])]
    return {
        "acked_durable_per_s": round(link, 1),
        "raw_zmq_per_s": round(raw, 1),
        "ratio": round(link / raw, 4),
        "ratio_runs": [round(r, 4) for r in ratios],
        "raw_zmq_batch_frames_per_s": round(raw_batch, 1),
        "ratio_to_batch_frames": round(link / raw_batch, 4),
        "n": n,
    }


def raw_zmq_throughput(transitions: list, framing: str, batch: int = 1024, window: int = 16) -> float:
    """The same transitions' bytes, precomputed, DEALER -> ROUTER -> one ack per message, nothing
    else: ``framing="record"`` sends each transition's own record as a frame, ``batch`` per
    message (how an application without batch encoding would ship them); ``framing="batch"`` sends
    the column batches the actor sends, one frame per message (the bandwidth ceiling)."""
    import zmq

    from learners.cache.batch import encode_batch
    from learners.cache.records import encode_transition

    n = len(transitions)
    if framing == "record":
        messages = [[b"h", *[encode_transition(t) for t in transitions[:batch]]]]
        per = len(messages[0]) - 1
    else:
        from learners.link.batcher import MAX_BYTES, _nbytes

        rows = max(1, min(batch, MAX_BYTES // _nbytes(transitions[0])))
        messages = [[b"h", encode_batch(transitions[:rows])]]
        per = rows
    endpoint = f"tcp://127.0.0.1:{_port()}"
    proc = _spawn(_serve_raw, endpoint)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.RCVTIMEO, 60_000)  # a dead server raises zmq.Again instead of hanging the bench
    sock.connect(endpoint)
    try:
        total, in_flight, done = -(-n // per), 0, 0
        start = time.perf_counter()
        sent = 0
        while done < total:
            while sent < total and in_flight < window:
                sock.send_multipart(messages[0], copy=False)
                sent += 1
                in_flight += 1
            sock.recv_multipart()
            in_flight -= 1
            done += 1
        return total * per / (time.perf_counter() - start)
    finally:
        sock.close(0)
        ctx.term()
        proc.terminate()
        proc.join()


def disk_limit(tmp: Path, transition_bytes: float, total_bytes: int = 512 * 1024 * 1024) -> float:
    """The disk's ceiling for durable transitions/s on one machine: two writers at once (the
    actor's spool and the learner's cache each keep a durable copy), each writing
    ``total_bytes`` in 4 MiB direct, synced writes (what the caches' blob files do), ``dd
    oflag=direct,dsync`` in two threads. Transitions/s = both copies' bytes/s / 2 / bytes each."""
    import mmap
    import threading

    block = 4 * 1024 * 1024
    buffer = mmap.mmap(-1, block)
    buffer.write(os.urandom(block))
    paths = [tmp / f"disk-limit-{i}" for i in range(2)]

    def write(path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0) | os.O_DSYNC)
        try:
            for at in range(0, total_bytes, block):
                os.pwrite(fd, buffer, at)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=write, args=(p,)) for p in paths]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for p in paths:
        p.unlink()
    buffer.close()
    return 2 * total_bytes / elapsed / 2 / transition_bytes


def weight_latency(params: int, repeats: int, dtype: str = "float32") -> list[float]:
    """Seconds from publishing a ``params``-float head (sent as ``dtype``) to the actor's copy being
    loaded."""
    import torch

    from learners.link.server import LearnerServer
    from learners.link.stream import TransitionStream
    from learners.link.weights import WeightsBox
    from learners.link.wire import pack_weights
    from learners.service.config import LearnerConfig

    tmp = Path(tempfile.mkdtemp(prefix="rill-wlat-"))
    box = WeightsBox()
    head = torch.nn.Linear(params // 1000, 1000, bias=False)
    shapes = {"actor.weight": tuple(head.weight.shape)}
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp, obs_dim=12, action_dim=3)
    from learners.cache import CacheConfig, ReplayCache

    cache = ReplayCache(tmp / "cache", CacheConfig(durability="none"))
    server = LearnerServer(config, cache, box, {})
    import threading

    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    spec = {"obs_dim": 12, "action_dim": 3, "n_actions": None, "algo": "stream-ac"}
    stream = TransitionStream(tmp / "actor", "w", server.endpoint, spec, shapes, durability="none").start()
    link = stream.link
    replica = torch.nn.Linear(params // 1000, 1000, bias=False)
    out = []
    try:
        while not link.connected:
            time.sleep(0.01)
        for version in range(1, repeats + 1):
            with torch.no_grad():
                head.weight.add_(1.0)
            published = time.monotonic()
            fields, blob = pack_weights({"actor.weight": head.weight.to(getattr(torch, dtype))}, version)
            box.put(version, fields["digest"], blob)
            while True:
                item = stream.take_weights()
                if item is not None and item[0] == version:
                    replica.load_state_dict({"weight": item[1]["actor.weight"]})
                    out.append(time.monotonic() - published)
                    break
                time.sleep(0.0005)
        assert torch.equal(replica.weight, head.weight.to(getattr(torch, dtype)).float())
    finally:
        stream.close()
        server.stop.set()
        thread.join(5)
        cache.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def codec_costs(params: int, repeats: int = 5) -> dict:
    """Milliseconds (best of ``repeats``) of rill's weights codec and the safetensors library's."""
    import hashlib

    import torch
    from safetensors.torch import load, save

    from learners.link.tensors import decode, encode
    from learners.link.wire import weights_digest

    state = {"actor.weight": torch.randn(params // 1000, 1000)}
    blob = encode(state)

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return round(1e3 * min(times), 2)

    frame = memoryview(blob)  # what the link hands over: the received frame's memory
    return {
        "encode_ms": best(lambda: encode(state)), "library_save_ms": best(lambda: save(state)),
        "decode_ms": best(lambda: decode(frame)), "library_load_ms": best(lambda: load(bytes(frame))),
        "digest_ms": best(lambda: weights_digest(frame)),
        "sha256_ms": best(lambda: hashlib.sha256(frame).hexdigest()),
    }


def update_rate(actors: int, seconds: float, tmp: Path) -> float:
    """Learner updates/s while ``actors`` actor processes stream Hopper-v5 into it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = _port()
    run = tmp / f"rate-{actors}"
    cli = [sys.executable, "-m", "agent.cli"]
    learner = subprocess.Popen(
        [*cli, "learner", "--bind", f"tcp://127.0.0.1:{port}", "--run", str(run), "--env", "Hopper-v5"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs = [
        subprocess.Popen(
            [
                *cli,
                "actor",
                "--learner",
                f"tcp://127.0.0.1:{port}",
                "--run",
                str(run),
                "--env",
                "Hopper-v5",
                "--actor-id",
                f"a{i}",
                "--seed",
                str(i),
                "--drain",
                "0",
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(actors)
    ]
    stats = run / "metrics" / "learner.csv"

    def updates() -> tuple[float, int]:
        lines = stats.read_text().strip().splitlines() if stats.exists() else []
        if len(lines) < 2:
            return 0.0, 0
        row = lines[-1].split(",")
        return float(row[1]), int(row[0])

    try:
        deadline = time.monotonic() + 120
        while updates()[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        t0, u0 = updates()
        while updates()[0] < t0 + seconds and time.monotonic() < deadline + seconds:
            time.sleep(0.2)
        t1, u1 = updates()
        return (u1 - u0) / max(t1 - t0, 1e-9)
    finally:
        for p in [*procs, learner]:
            p.terminate()
        for p in [*procs, learner]:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:  # a loaded machine: do not let cleanup fail the run
                p.kill()
                p.wait()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    n_state, n_image = (5_000, 300) if args.quick else (200_000, 20_000)
    repeats = 1 if args.quick else 3
    tmp = Path(tempfile.mkdtemp(prefix="rill-bench-link-"))
    results: dict = {}
    try:
        for name, n, image in (("state", n_state, None), ("image", n_image, "noise"),
                               ("camera", n_image, "camera")):
            transitions = _transitions(n, image)
            modes = ("fsync", "behind") if image else ("fsync",)
            runs: dict[str, list] = {mode: [] for mode in modes}
            for _ in range(repeats):  # each run: raw ZeroMQ, then the link, back to back
                for mode in modes:
                    raw = raw_zmq_throughput(transitions, "record")
                    runs[mode].append((link_throughput(transitions, tmp, mode), raw))
            raw_batch = raw_zmq_throughput(transitions, "batch")
            entry = _median_entry(runs["fsync"], raw_batch, n)
            if image:
                entry["spool_behind"] = _median_entry(runs["behind"], raw_batch, n)
            if image:  # large transitions are bound by the disk: both durable copies on one disk
                from learners.cache.batch import encode_batch

                rows = transitions[:150]
                per = len(encode_batch(rows, "zstd")) / len(rows)  # as the actor sends them
                ceiling = disk_limit(tmp, per, 64 * 1024 * 1024 if args.quick else 512 * 1024 * 1024)
                entry.update(transition_bytes=round(per), disk_limit_per_s=round(ceiling, 1),
                             ratio_to_disk_limit=round(entry["acked_durable_per_s"] / ceiling, 4))
            results[f"{name}_transitions"] = entry
            del transitions
        for key, dtype in (("weights_10M", "float32"), ("weights_10M_float16", "float16")):
            lat = weight_latency(10_000_000, 2 if args.quick else 10, dtype)
            results[key] = {
                "dtype": dtype,
                "latency_ms_min": round(1e3 * min(lat), 1),
                "latency_ms_median": round(1e3 * float(np.median(lat)), 1),
                "latency_ms_max": round(1e3 * max(lat), 1),
                "repeats": len(lat),
            }
        results["weights_codec_10M"] = codec_costs(10_000_000, 2 if args.quick else 5)
        # --quick (CI) runs 1 and 2 actors: starting four actor processes alone took 30 s of CI's time.
        actors = (1, 2) if args.quick else (1, 2, 4)
        results["learner_updates_per_s"] = {
            str(k): round(update_rate(k, 2 if args.quick else 15, tmp), 1) for k in actors  # rows: every 2 s
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        [name, v["acked_durable_per_s"], v["raw_zmq_per_s"], f"{100 * v['ratio']:.1f}%",
         " ".join(f"{100 * r:.0f}%" for r in v["ratio_runs"]),
         v["raw_zmq_batch_frames_per_s"], f"{100 * v['ratio_to_batch_frames']:.1f}%",
         v.get("disk_limit_per_s", "-"),
         f"{100 * v['ratio_to_disk_limit']:.1f}%" if "ratio_to_disk_limit" in v else "-"]
        for k, entry in results.items() if k.endswith("_transitions")
        for name, v in ((k, entry), (f"{k}, spool behind", entry.get("spool_behind"))) if v
    ]
    print_table("actor -> learner, loopback (median run)",
                ["records", "acked durable/s", "raw ZeroMQ/s (record frames)", "ratio", "ratio, each run",
                 "raw ZeroMQ/s (batch frames)", "ratio", "disk limit/s (2 copies)", "ratio"], rows)
    print_table(
        "weights, 10M parameters, publish -> loaded", ["dtype", "min ms", "median ms", "max ms"],
        [[w["dtype"], w["latency_ms_min"], w["latency_ms_median"], w["latency_ms_max"]]
         for w in (results["weights_10M"], results["weights_10M_float16"])],
    )
    c = results["weights_codec_10M"]
    print_table("weights codec, 10M parameters (ms)", ["", "rill", "safetensors library"],
                [["encode / save", c["encode_ms"], c["library_save_ms"]],
                 ["decode / load", c["decode_ms"], c["library_load_ms"]],
                 ["digest / one SHA-256", c["digest_ms"], c["sha256_ms"]]])
    print_table(
        "learner update rate (Hopper-v5)",
        ["actors", "updates/s"],
        [[k, v] for k, v in results["learner_updates_per_s"].items()],
    )
    write_json(args.json, {**results, "_meta": {"quick": args.quick, **machine()}})
    return results


if __name__ == "__main__":
    main()
