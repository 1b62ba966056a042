"""The stream-x kernels' disk cache: a process that compiled the kernels and one that loaded them
from the cache compute the same bits (bit-exact resume across processes depends on it), and the
cache is named by the kernel sources, so an edited kernel never runs stale code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learners.streamx.fast.kernels import jit

REPO = Path(__file__).resolve().parents[2]

# Continuous Stream AC and discrete Stream Q on seeded streams; prints the digest of each state
# and whether the update kernels came from numba's cache.
SCRIPT = r"""
import hashlib, json
import numpy as np
from learners.streamx import algorithm_config, build_algorithm
from learners.streamx.fast.kernels import jit, updates
from learners.transition import Transition

out = {"cache_dir": str(jit.CACHE_DIR)}
for name, layout in (("stream-ac", {"action_dim": 3}), ("stream-q", {"n_actions": 2})):
    algo = build_algorithm(name, 8, config=algorithm_config(name, {}), seed=0, fast=True, **layout)
    rng = np.random.default_rng(1)
    obs = rng.standard_normal(8).astype(np.float32)
    for step in range(400):
        acted = algo.act(obs)
        action = np.asarray(getattr(acted, "action", acted))
        nxt = rng.standard_normal(8).astype(np.float32)
        done = step % 97 == 96
        algo.update(Transition(obs, action, float(rng.standard_normal()), nxt, done, False))
        obs = nxt
    digest = hashlib.sha256()
    for key, value in sorted(algo.state_dict().items()):
        digest.update(key.encode() + value.numpy().tobytes())
    out[name] = digest.hexdigest()
stats = updates.stream_ac_update.stats
out["hits"], out["misses"] = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
print(json.dumps(out))
"""


def _run(cache: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RILL_KERNEL_CACHE": cache}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_process_that_compiled_and_one_that_loaded_the_cache_compute_the_same_bits(tmp_path):
    fresh = _run(str(tmp_path))  # an empty cache: this process compiles, and writes the cache
    assert fresh["misses"] > 0 and fresh["hits"] == 0, fresh
    assert Path(fresh["cache_dir"]).parent == tmp_path and any(Path(fresh["cache_dir"]).iterdir())
    cached = _run(str(tmp_path))  # this one loads what the first wrote
    assert cached["hits"] > 0 and cached["misses"] == 0, cached
    assert cached["stream-ac"] == fresh["stream-ac"] and cached["stream-q"] == fresh["stream-q"]


def test_the_cache_is_named_by_the_kernel_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("RILL_KERNEL_CACHE", str(tmp_path / "cache"))
    shipped = jit.kernel_cache_dir()
    assert shipped is not None and shipped.parent == tmp_path / "cache" and shipped.is_dir()
    sources = tmp_path / "kernels"
    shutil.copytree(jit.KERNEL_SOURCES, sources, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(jit, "KERNEL_SOURCES", sources)
    same = jit.kernel_cache_dir()
    assert same == shipped  # the same sources, wherever they are: the same cache
    mlp = sources / "mlp.py"
    mlp.write_text(mlp.read_text() + "\n# an edited callee\n")
    edited = jit.kernel_cache_dir()
    assert edited is not None and edited != same  # its callers' cached code is not reused


@pytest.mark.parametrize("setting", ["off", "a file"])
def test_caching_off_or_unwritable_compiles_in_the_process(tmp_path, monkeypatch, setting):
    if setting == "a file":
        (tmp_path / "taken").write_text("not a directory")
        setting = str(tmp_path / "taken")
    monkeypatch.setenv("RILL_KERNEL_CACHE", setting)
    assert jit.kernel_cache_dir() is None


def test_caches_of_other_kernel_versions_unused_for_two_weeks_are_deleted(tmp_path, monkeypatch):
    old, recent, other = tmp_path / ("a" * 20), tmp_path / ("b" * 20), tmp_path / "notes"
    for path in (old, recent, other):
        path.mkdir()
        (path / "kernel.nbi").write_bytes(b"x")
    month_ago = os.stat(old).st_mtime - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    os.utime(other, (month_ago, month_ago))  # not named like a cache: never touched
    monkeypatch.setenv("RILL_KERNEL_CACHE", str(tmp_path))
    current = jit.kernel_cache_dir()
    assert current is not None and current.parent == tmp_path
    assert not old.exists()
    assert recent.exists() and other.exists() and current.exists()
    # the current cache is never pruned, however old its mark
    os.utime(current, (month_ago, month_ago))
    assert jit.prune_kernel_caches(tmp_path, keep=current) == []
    assert current.exists()
