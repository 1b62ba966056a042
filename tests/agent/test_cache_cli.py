"""``rill cache info|verify|export`` on real caches."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from agent.cache_cli import add_cache_commands, main
from learners.cache import CacheConfig, ReplayCache
from learners.transition import Transition

REPO = Path(__file__).resolve().parents[2]


def image(i: int) -> np.ndarray:
    return np.full((6, 8, 3), i, np.uint8)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "cache"
    with ReplayCache(directory, CacheConfig(segment_bytes=64 * 1024)) as cache:
        for i in range(40):
            obs = {"state": np.full(3, i, np.float32), "image.front": image(i)}
            cache.append(
                Transition(
                    obs=obs,
                    action=np.ones(2, np.float32),
                    reward=float(i),
                    next_obs=obs,
                    terminated=i % 10 == 9,
                    truncated=False,
                    actor_id="arm0",
                    seq=i,
                    episode=i // 10,
                    step=i % 10,
                )
            )
        cache.append(b"an opaque record")
        cache.consumer("learner").commit(100)
    return directory


def test_the_commands_register_on_a_parent_parser() -> None:
    parser = argparse.ArgumentParser(prog="rill")
    add_cache_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cache", "export", "runs/x/cache", "--out", "x.parquet"])
    assert args.cache_command == "export" and args.images == "png" and callable(args.handler)


def test_info_shows_records_segments_and_consumers(cache_dir: Path, capsys) -> None:
    assert main(["cache", "info", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert "records" in out and " 41 " in out
    assert "learner" in out and "101" in out


def test_verify_passes_a_healthy_cache_and_pinpoints_damage(cache_dir: Path, capsys) -> None:
    assert main(["cache", "verify", str(cache_dir)]) == 0
    assert "OK: 41 records" in capsys.readouterr().out
    with ReplayCache(cache_dir, CacheConfig(read_only=True)) as cache:
        payload = cache.read_raw(7)
    segment = sorted(cache_dir.glob("*.lmdb"))[0]
    raw = bytearray((segment / "data.mdb").read_bytes())
    at = raw.find(payload)
    while at >= 0:  # every copy: LMDB's copy-on-write leaves stale ones in freed pages
        raw[at + 100] ^= 0x40
        at = raw.find(payload, at + 1)
    (segment / "data.mdb").write_bytes(bytes(raw))
    assert main(["cache", "verify", str(cache_dir)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and segment.name in out and " 7 " in out
    assert "checksum mismatch" in out


def test_verify_counts_a_damaged_consumer_position_among_the_problems(cache_dir: Path, capsys) -> None:
    position = next((cache_dir / "consumers").iterdir())
    position.write_bytes(b"\x00" * len(position.read_bytes()))
    assert main(["cache", "verify", str(cache_dir)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "DAMAGED: 41 records in 1 segments, 1 problem(s)" in out, out  # it said 0 problem(s)


@pytest.mark.parametrize("images", ["png", "array"])
def test_export_writes_one_row_per_transition(
    cache_dir: Path, tmp_path: Path, images: str, capsys
) -> None:
    out = tmp_path / "out.parquet"
    assert main(["cache", "export", str(cache_dir), "--out", str(out), "--images", images]) == 0
    assert "40" in capsys.readouterr().out
    table = pq.read_table(out).to_pylist()
    assert len(table) == 40
    row = table[7]
    assert row["seq"] == 7 and row["reward"] == 7.0 and row["obs.state"] == [7.0] * 3
    if images == "png":
        assert row["obs.image.front"].startswith(b"\x89PNG")
        decoded = np.asarray(Image.open(io.BytesIO(row["obs.image.front"])))
        np.testing.assert_array_equal(decoded, image(7))
    else:
        assert row["obs.image.front"] == image(7).ravel().tolist()
        assert row["obs.image.front.shape"] == [6, 8, 3]


def test_errors_are_clear_and_leave_the_directory_alone(tmp_path: Path, capsys) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    assert main(["cache", "info", str(tmp_path)]) == 2
    assert "CacheFormatError" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]


def test_runs_as_a_module(cache_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cache_cli", "verify", str(cache_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    )
    assert proc.returncode == 0 and "OK" in proc.stdout


def test_export_never_overwrites_and_leaves_nothing_half_written(cache_dir: Path, tmp_path: Path,
                                                                 capsys) -> None:
    kept = tmp_path / "notes.txt"
    kept.write_text("mine")
    before = (cache_dir / "CACHE").read_bytes()
    for out in (kept, cache_dir / "CACHE", tmp_path):  # someone's file, the cache's own, a directory
        assert main(["cache", "export", str(cache_dir), "--out", str(out)]) == 2
        assert f"{out} exists; export into a new file" in " ".join(capsys.readouterr().err.split())
    assert kept.read_text() == "mine" and (cache_dir / "CACHE").read_bytes() == before
    empty = tmp_path / "empty"
    with ReplayCache(empty, CacheConfig(durability="none")):
        pass
    assert main(["cache", "export", str(empty), "--out", str(tmp_path / "none.parquet")]) == 2
    assert "no transitions to export" in " ".join(capsys.readouterr().err.split())
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob(".*.partial"))
