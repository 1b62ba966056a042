"""LeRobotDataset v3 out of a replay cache and back in: demonstrations recorded on the MuJoCo tabletop
arm are exported (`rill cache export --format lerobot`), checked file by file against the v3 layout
and schema, imported (`rill demos import`) and compared with what was recorded: states and actions
bit-exact, instructions, episode boundaries and success flags the same, frames within the video
tolerance. Damaged or mismatched datasets are refused by name and leave nothing behind. Where
scripts/setup_lerobot.sh made a LeRobot venv, LeRobot's own LeRobotDataset reads our export and
writes a dataset we import."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.demos.episodes import read_demos
from agent.demos.lerobot_export import export_lerobot
from agent.demos.lerobot_format import LeRobotFormatError
from agent.demos.lerobot_import import import_lerobot
from agent.demos.record import RecordConfig, open_demo_cache, record_demos
from agent.demos.video import FRAME_TOLERANCE
from hal.config import RobotConfig
from hal.registry import make_robot
from learners.cache import CacheConfig, ReplayCache
from learners.transition import Transition
from policies.base import ActionChunk, Policy

REPO = Path(__file__).resolve().parents[3]
STEPS = 20  # the time limit of an episode; a reach that gets there first ends it sooner
FPS = 50
LEROBOT_PY = Path(os.environ.get("RILL_LEROBOT_VENV", REPO / "build" / "lerobot-venv")) / "bin" / "python"
needs_lerobot = pytest.mark.skipif(
    not LEROBOT_PY.exists(), reason=f"no LeRobot venv at {LEROBOT_PY.parent.parent}: make it with "
                                    f"scripts/setup_lerobot.sh (the schema checks here still run)")
INFO_KEYS = {"codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
             "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
             "features"}
STATS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
VIDEO = "observation.images.front"


class ReachPolicy(Policy):
    """Drives the pusher straight at the goal block (``goal_dx, goal_dy`` of the relative state)."""

    action_dim, chunk_size = 2, 1

    def act(self, observation) -> ActionChunk:
        to_goal = np.asarray(observation["state"][23:25], np.float64)
        return ActionChunk(np.clip(20 * to_goal, -1, 1)[None].astype(np.float32), 1 / FPS)


def _record(path: Path, episodes: int = 3) -> None:
    params = {"task": "reach", "cameras": ["front"], "image_height": 32, "image_width": 32,
              "episode_steps": STEPS, "seed": 5, "max_delta": 0.5, "goal_in_state": "relative"}
    config = RecordConfig.from_dict({"robot": {"name": "a", "type": "sim-tabletop"}, "out": path,
                                     "policy": {"type": "class", "class_path": "policies.base:Policy"}})
    robot = make_robot(RobotConfig("demo-arm", "sim-tabletop", params))
    with robot, open_demo_cache(config) as cache:
        record_demos(robot, ReachPolicy(), cache, episodes, "human", max_ticks=episodes * STEPS * 3)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, Path]:
    """A real set (3 episodes, 32x32 frames; seed 5 gives one success, then two time-outs) and its export."""
    base = tmp_path_factory.mktemp("lerobot")
    _record(base / "demos")
    export_lerobot(base / "demos", base / "lerobot")
    return base / "demos", base / "lerobot"


def _copy(dataset: Path, tmp_path: Path) -> Path:
    shutil.copytree(dataset, tmp_path / "dataset")
    return tmp_path / "dataset"


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_the_export_has_the_v3_layout_and_schema(recorded):
    demos_dir, root = recorded
    demos = read_demos(demos_dir, require_success=False)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet",
                     "meta/info.json", "meta/stats.json", "meta/tasks.parquet",
                     f"videos/{VIDEO}/chunk-000/file-000.mp4"]
    info = json.loads((root / "meta/info.json").read_text())
    assert set(info) >= INFO_KEYS and info["codebase_version"] == "v3.0" and info["fps"] == FPS
    lengths = [e.length for e in demos.episodes]
    assert (info["total_episodes"], info["total_frames"]) == (3, sum(lengths))
    assert info["total_tasks"] == len({e.instruction for e in demos.episodes})
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["rill"] == {"control_hz": FPS, "fps_from": "cache"}  # the recorder kept the arm's rate
    features = info["features"]
    assert list(features) == ["observation.state", "action", VIDEO, "next.reward", "next.done",
                              "next.terminated", "next.success", "timestamp", "frame_index",
                              "episode_index", "index", "task_index"]
    assert features["observation.state"] == {"dtype": "float32", "shape": [29],
                                             "names": [f"state_{i}" for i in range(29)]}
    assert features["action"]["shape"] == [2] and len(features["action"]["names"]) == 2
    assert features[VIDEO]["dtype"] == "video" and features[VIDEO]["shape"] == [32, 32, 3]
    assert features[VIDEO]["names"] == ["height", "width", "channels"]
    assert features[VIDEO]["info"] == {"video.height": 32, "video.width": 32, "video.codec": "h264",
                                       "video.pix_fmt": "yuv444p", "video.is_depth_map": False,
                                       "video.fps": FPS, "video.channels": 3, "has_audio": False}
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index", "next.done"):
        assert features[name]["shape"] == [1] and features[name]["names"] is None

    # stats.json: every non-video feature and the camera; images per channel on [0, 1]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(features) and all(set(s) == STATS for s in stats.values())
    states = np.concatenate([e.states() for e in demos.episodes]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], states.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats["observation.state"]["std"], states.std(0), rtol=1e-6, atol=1e-9)
    assert stats["observation.state"]["min"] == states.min(0).tolist()
    assert stats["observation.state"]["count"] == [sum(lengths)]
    frames = np.concatenate([e.frames("front") for e in demos.episodes]) / 255.0
    image = {k: np.asarray(v) for k, v in stats[VIDEO].items()}
    assert image["mean"].shape == (3, 1, 1) and image["count"].tolist() == [sum(lengths)]
    np.testing.assert_allclose(image["mean"].ravel(), frames.reshape(-1, 3).mean(0), rtol=1e-9)
    assert 0 <= image["min"].min() <= image["max"].max() <= 1

    # tasks: LeRobot's pandas layout, the texts as the index
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column_names == ["task_index", "__index_level_0__"]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    texts = dict(zip(tasks.column("task_index").to_pylist(), tasks.column("__index_level_0__").to_pylist()))

    # episodes: lengths, where the rows and the frames are, their own stats
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    starts = np.cumsum([0, *lengths])
    for i, (ep, demo) in enumerate(zip(episodes, demos.episodes)):
        assert (ep["episode_index"], ep["length"], ep["tasks"]) == (i, demo.length, [demo.instruction])
        assert (ep["dataset_from_index"], ep["dataset_to_index"]) == (starts[i], starts[i + 1])
        assert (ep["data/chunk_index"], ep["data/file_index"], ep[f"videos/{VIDEO}/file_index"]) == (0, 0, 0)
        assert ep[f"videos/{VIDEO}/from_timestamp"] == pytest.approx(starts[i] / FPS)
        assert ep[f"videos/{VIDEO}/to_timestamp"] == pytest.approx(starts[i + 1] / FPS)
        assert ep["stats/observation.state/count"] == [demo.length] and ep["rill/source"] == "human"
        assert np.asarray(ep[f"stats/{VIDEO}/mean"]).shape == (3, 1, 1)
        assert ep["meta/episodes/chunk_index"] == 0 and ep["meta/episodes/file_index"] == 0

    # data: one column per non-video feature; vectors as fixed-size lists, the rest plain
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert data.column_names == [k for k in features if k != VIDEO]
    assert data.schema.field("observation.state").type == pa.list_(pa.float32(), 29)
    assert data.schema.field("timestamp").type == pa.float32()
    assert data.schema.field("next.success").type == pa.bool_()
    assert data.column("index").to_pylist() == list(range(sum(lengths)))
    frame_index = np.concatenate([np.arange(n) for n in lengths])
    assert data.column("frame_index").to_pylist() == frame_index.tolist()
    np.testing.assert_array_equal(data.column("timestamp").to_numpy(), (frame_index / FPS).astype(np.float32))
    assert [texts[i] for i in data.column("task_index").to_pylist()] == \
        [t.obs["instruction"] for e in demos.episodes for t in e.steps]


def test_import_gives_back_what_was_recorded(recorded, tmp_path):
    demos_dir, root = recorded
    summary = import_lerobot(root, tmp_path / "back")
    original = read_demos(demos_dir, require_success=False)
    back = read_demos(tmp_path / "back", require_success=False)
    assert summary.episodes == 3 and summary.sources == {"human": 3} and summary.cameras == ["front"]
    assert [e.length for e in back.episodes] == [e.length for e in original.episodes]
    assert [e.success for e in original.episodes] == [True, False, False]  # both outcomes are covered
    errors = []
    for a, b in zip(original.episodes, back.episodes):
        assert (b.actor_id, b.instruction, b.success, b.aborted) == \
            (a.actor_id, a.instruction, a.success, a.aborted)
        np.testing.assert_array_equal(b.states(), a.states())  # bit-exact
        np.testing.assert_array_equal(b.actions(), a.actions())
        assert b.states().dtype == np.float32 and b.actions().dtype == np.float32
        for x, y in zip(a.steps, b.steps):
            np.testing.assert_array_equal(y.next_obs["state"], x.next_obs["state"])
            assert (y.reward, y.terminated, y.truncated, y.extras["success"]) == \
                (np.float32(x.reward), x.terminated, x.truncated, x.extras["success"])
            assert y.obs["instruction"] == x.obs["instruction"]
        errors.append(np.abs(b.frames("front").astype(int) - a.frames("front").astype(int)))
    error = np.concatenate([e.ravel() for e in errors])
    assert error.max() <= FRAME_TOLERANCE and error.mean() < 1.0, (error.max(), error.mean())
    summary_a, summary_b = original.summary(), back.summary()
    assert {**summary_a, "path": ""} == {**summary_b, "path": ""}


def test_the_cli_exports_imports_and_summarises(recorded, tmp_path, capsys):
    from agent.cli import main

    demos_dir, _ = recorded
    assert main(["cache", "export", str(demos_dir), "--format", "lerobot", "--out", str(tmp_path / "lr"),
                 "--fps", "25"]) == 0
    # --fps is for caches that do not know their rate: this one was recorded at the arm's 50 Hz
    assert json.loads((tmp_path / "lr/meta/info.json").read_text())["fps"] == FPS
    assert main(["demos", "import", str(tmp_path / "lr"), "--out", str(tmp_path / "back"),
                 "--source", "expert"]) == 0
    capsys.readouterr()
    assert main(["demos", "info", str(tmp_path / "back"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 3 and summary["sources"] == {"expert": 3} and summary["successful"] == 1
    assert main(["demos", "import", str(tmp_path / "lr"), "--out", str(tmp_path / "back")]) == 2  # exists
    assert main(["cache", "export", str(demos_dir), "--out", str(tmp_path / "rows.parquet")]) == 0  # default
    assert pq.read_metadata(tmp_path / "rows.parquet").num_rows == summary["steps"]


def test_many_files_when_files_fill_up(recorded, tmp_path):
    demos_dir, _ = recorded
    export_lerobot(demos_dir, tmp_path / "lr", data_file_mb=1e-6, video_file_mb=1e-6)  # a file an episode
    root = tmp_path / "lr"
    names = sorted(p.name for p in (root / "data/chunk-000").iterdir())
    assert names == [f"file-00{i}.parquet" for i in range(3)]
    assert len(list((root / f"videos/{VIDEO}/chunk-000").iterdir())) == 3
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e[f"videos/{VIDEO}/from_timestamp"] for e in episodes] == [0.0, 0.0, 0.0]
    import_lerobot(root, tmp_path / "back")
    a, b = read_demos(demos_dir, require_success=False), read_demos(tmp_path / "back", require_success=False)
    for x, y in zip(a.episodes, b.episodes):
        np.testing.assert_array_equal(x.states(), y.states())
        assert np.abs(x.frames("front").astype(int) - y.frames("front").astype(int)).max() <= FRAME_TOLERANCE


def test_online_rollouts_export_too(tmp_path):
    """Vector observations, no instruction, no success flag, a control rate the writer left; the
    episode the log ends inside of is left out."""
    with ReplayCache(tmp_path / "cache", CacheConfig()) as cache:
        for i in range(25):
            episode, step = divmod(i, 10)
            cache.append(Transition(obs=np.full(3, i, np.float32), action=np.array([i / 10], np.float32),
                                    reward=float(i), next_obs=np.full(3, i + 1, np.float32),
                                    terminated=step == 9, truncated=False, actor_id="arm0", seq=i + 1,
                                    episode=episode, step=step, extras={"control_hz": 20}))
    summary = export_lerobot(tmp_path / "cache", tmp_path / "lr")
    assert (summary.episodes, summary.frames, summary.skipped_incomplete) == (2, 20, 1)
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["fps"] == 20 and info["rill"]["fps_from"] == "cache" and info["video_path"] is None
    assert "next.success" not in info["features"] and info["features"]["action"]["shape"] == [1]
    data = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet")
    assert data.column("next.reward").to_pylist() == list(range(20))
    assert data.schema.field("action").type == pa.float32()  # shape [1]: a plain column
    assert data.column("next.terminated").to_pylist() == [i % 10 == 9 for i in range(20)]
    import_lerobot(tmp_path / "lr", tmp_path / "back", source="policy")
    back = read_demos(tmp_path / "back", require_success=False)
    assert [e.length for e in back.episodes] == [10, 10] and back.episodes[0].instruction == ""
    assert back.episodes[1].steps[-1].terminated and back.features.cameras == {}
    np.testing.assert_array_equal(back.episodes[1].states()[:, 0], np.arange(10, 20))


@pytest.mark.parametrize("drop, named", [("observation.state", "'observation.state'"),
                                         ("action", "'action'")])
def test_a_dataset_without_state_or_action_is_refused(recorded, tmp_path, drop, named):
    root = _copy(recorded[1], tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    del info["features"][drop]
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match=f"has no {named} feature"):
        import_lerobot(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_camera_can_be_imported_under_another_name(recorded, tmp_path):
    """LeRobot's Meta-World datasets name their one camera ``observation.image``; rill's Meta-World
    robot calls it ``corner2``: ``--cameras image=corner2`` makes the two fit."""
    demos_dir, root = recorded
    summary = import_lerobot(root, tmp_path / "back", cameras=["front=corner2"])
    back = read_demos(tmp_path / "back", require_success=False)
    original = read_demos(demos_dir, require_success=False)
    assert summary.cameras == ["corner2"]
    assert back.features.cameras == {"corner2": original.features.cameras["front"]}
    frames = back.episodes[0].frames("corner2").astype(int)
    assert np.abs(frames - original.episodes[0].frames("front").astype(int)).max() <= FRAME_TOLERANCE
    for bad in (["front=a.b"], ["front="]):
        with pytest.raises(LeRobotFormatError, match="rill camera names must be distinct"):
            import_lerobot(root, tmp_path / "bad", cameras=bad)
    with pytest.raises(LeRobotFormatError, match=r"no camera 'image' \(its cameras: front\)"):
        import_lerobot(root, tmp_path / "bad", cameras=["image=corner2"])
    assert not (tmp_path / "bad").exists()


def test_mismatched_features_are_refused_by_name(recorded, tmp_path):
    root = _copy(recorded[1], tmp_path)
    with pytest.raises(LeRobotFormatError, match=r"no camera 'wrist' \(its cameras: front\)"):
        import_lerobot(root, tmp_path / "out", cameras=["wrist"])
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["observation.state"]["shape"] = [7]
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match=r"file-000.parquet: observation.state has 29 values a "
                                                 r"frame, meta/info.json says 7"):
        import_lerobot(root, tmp_path / "out")
    info["features"]["observation.state"]["shape"] = [29]
    info["features"][VIDEO]["shape"] = [48, 48, 3]
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match=r"camera front frames are \(32, 32, 3\), meta/info.json "
                                                 r"says \(48, 48, 3\)"):
        import_lerobot(root, tmp_path / "out")
    for fps in (0, -5, "fast"):  # timestamps frame_index / fps would be nan, inf or negative
        (root / "meta/info.json").write_text(json.dumps({**info, "fps": fps}))
        with pytest.raises(LeRobotFormatError, match=rf"fps must be a positive number, got {fps!r}"):
            import_lerobot(root, tmp_path / "out")
    info["codebase_version"] = "v2.1"
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match=r"codebase_version v2\.1"):
        import_lerobot(root, tmp_path / "out")
    for fps in (0, -5):
        with pytest.raises(LeRobotFormatError, match=rf"--fps must be a positive integer, got {fps}"):
            export_lerobot(recorded[0], tmp_path / "lr", fps=fps)
    assert not (tmp_path / "out").exists() and not (tmp_path / "lr").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_corrupt_parquet_is_named_and_nothing_is_kept(recorded, tmp_path, damage):
    root = _copy(recorded[1], tmp_path)
    path = root / "data/chunk-000/file-000.parquet"
    blob = path.read_bytes()
    zeroed = b"\0" * 64 + blob[64:-64] + b"\0" * 64
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncated" else zeroed)
    with pytest.raises(LeRobotFormatError, match=r"chunk-000/file-000.parquet: not a readable Parquet file"):
        import_lerobot(root, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "missing"])
def test_a_corrupt_or_missing_video_is_named_and_nothing_is_kept(recorded, tmp_path, damage):
    root = _copy(recorded[1], tmp_path)
    path = root / f"videos/{VIDEO}/chunk-000/file-000.mp4"
    blob = path.read_bytes()
    if damage == "missing":
        path.unlink()
    else:  # cut in half (no index), or a run of garbage over the frame data of the second episode
        mid = len(blob) // 2
        garbage = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
        path.write_bytes(blob[:mid] if damage == "truncated" else blob[:mid] + garbage + blob[mid + 2000:])
    with pytest.raises(LeRobotFormatError, match=r"camera front: .*file-000.mp4: (not a readable video|"
                                                 r"corrupt video data|no such video file)"):
        import_lerobot(root, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_empty_or_missing_datasets_are_refused(recorded, tmp_path):
    with pytest.raises(LeRobotFormatError, match="no such directory"):
        import_lerobot(tmp_path / "nothing", tmp_path / "out")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LeRobotFormatError, match=r"not a LeRobot dataset \(no meta/info.json\)"):
        import_lerobot(tmp_path / "plain", tmp_path / "out")
    root = _copy(recorded[1], tmp_path)
    episodes = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(episodes)
    pq.write_table(table.slice(0, 0), episodes)  # what a dataset with no saved episode holds
    with pytest.raises(LeRobotFormatError, match="the dataset is empty"):
        import_lerobot(root, tmp_path / "out")
    shutil.rmtree(root / "meta/episodes")
    with pytest.raises(LeRobotFormatError, match="no episodes"):
        import_lerobot(root, tmp_path / "out")
    with ReplayCache(tmp_path / "empty-cache", CacheConfig()):
        pass
    with pytest.raises(LeRobotFormatError, match="no complete episode to export"):
        export_lerobot(tmp_path / "empty-cache", tmp_path / "lr")
    assert not (tmp_path / "out").exists() and not (tmp_path / "lr").exists() and _leftovers(tmp_path) == []


def _lerobot(script: str, *args: str) -> None:
    done = subprocess.run([str(LEROBOT_PY), "-c", textwrap.dedent(script), *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]


@needs_lerobot
def test_lerobots_own_reader_loads_the_export(recorded, tmp_path):
    demos_dir, root = recorded
    _lerobot("""
        import json, sys
        import numpy as np
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        ds = LeRobotDataset("rill/export", root=sys.argv[1], video_backend="torchcodec")
        items = [ds[i] for i in range(len(ds))]
        np.savez(sys.argv[2], state=np.stack([it["observation.state"].numpy() for it in items]),
                 action=np.stack([it["action"].numpy() for it in items]),
                 frames=np.stack([(it["observation.images.front"].numpy() * 255).round() for it in items]),
                 episode=np.array([int(it["episode_index"]) for it in items]))
        bounds = [[int(e["dataset_from_index"]), int(e["dataset_to_index"])] for e in ds.meta.episodes]
        image_stats = ds.meta.stats["observation.images.front"]
        json.dump({"tasks": [it["task"] for it in items], "fps": ds.fps, "episodes": ds.num_episodes,
                   "bounds": bounds, "stats": {k: np.asarray(v).shape for k, v in image_stats.items()}},
                  open(sys.argv[3], "w"))
        """, str(root), str(tmp_path / "items.npz"), str(tmp_path / "meta.json"))
    demos = read_demos(demos_dir, require_success=False)
    items, meta = np.load(tmp_path / "items.npz"), json.loads((tmp_path / "meta.json").read_text())
    np.testing.assert_array_equal(items["state"], np.concatenate([e.states() for e in demos.episodes]))
    np.testing.assert_array_equal(items["action"], np.concatenate([e.actions() for e in demos.episodes]))
    frames = np.concatenate([e.frames("front") for e in demos.episodes]).transpose(0, 3, 1, 2)
    assert np.abs(items["frames"] - frames).max() <= FRAME_TOLERANCE
    assert meta["tasks"] == [t.obs["instruction"] for e in demos.episodes for t in e.steps]
    starts = np.cumsum([0, *[e.length for e in demos.episodes]]).tolist()
    assert meta["bounds"] == [list(pair) for pair in itertools.pairwise(starts)] and meta["episodes"] == 3
    assert items["episode"].tolist() == [i for i, e in enumerate(demos.episodes) for _ in range(e.length)]
    assert meta["fps"] == FPS and meta["stats"]["mean"] == [3, 1, 1]


@needs_lerobot
def test_a_dataset_lerobot_wrote_imports(tmp_path):
    """LeRobot's own writer in its common case: state, action, two cameras as AV1 video (its
    default codec, lossy at crf 30: flat test frames come back within a few levels), tasks."""
    _lerobot("""
        import sys
        import numpy as np
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        cams = {"top": (64, 96, 3), "wrist": (64, 64, 3)}  # SVT-AV1 wants 64 pixels a side
        features = {"observation.state": {"dtype": "float32", "shape": (4,), "names": list("abcd")},
                    "action": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
                    **{f"observation.images.{c}": {"dtype": "video", "shape": s,
                                                   "names": ["height", "width", "channels"]}
                       for c, s in cams.items()}}
        ds = LeRobotDataset.create("rill/made", fps=10, features=features, root=sys.argv[1])
        rng, kept = np.random.default_rng(0), {"state": [], "action": [], "top": [], "wrist": []}
        for e, n in enumerate([5, 7]):
            for i in range(n):
                frame = {"observation.state": rng.standard_normal(4).astype(np.float32),
                         "action": rng.standard_normal(2).astype(np.float32),
                         "observation.images.top": np.full(cams["top"], 20 * i + e, np.uint8),
                         "observation.images.wrist": np.full(cams["wrist"], 200 - 10 * i, np.uint8)}
                for k, v in (("state", "observation.state"), ("action", "action")):
                    kept[k].append(frame[v])
                kept["top"].append(frame["observation.images.top"])
                kept["wrist"].append(frame["observation.images.wrist"])
                ds.add_frame({**frame, "task": f"stack block {e}"})
            ds.save_episode(parallel_encoding=False)
        ds.finalize()
        np.savez(sys.argv[2], **{k: np.stack(v) for k, v in kept.items()})
        """, str(tmp_path / "made"), str(tmp_path / "kept.npz"))
    summary = import_lerobot(tmp_path / "made", tmp_path / "back", source="human", assume_success=True)
    assert summary.cameras == ["top", "wrist"] and summary.successful == 2
    kept, demos = np.load(tmp_path / "kept.npz"), read_demos(tmp_path / "back")
    assert [e.length for e in demos.episodes] == [5, 7]
    assert [e.instruction for e in demos.episodes] == ["stack block 0", "stack block 1"]
    np.testing.assert_array_equal(np.concatenate([e.states() for e in demos.episodes]), kept["state"])
    np.testing.assert_array_equal(np.concatenate([e.actions() for e in demos.episodes]), kept["action"])
    for cam in ("top", "wrist"):
        frames = np.concatenate([e.frames(cam) for e in demos.episodes]).astype(int)
        assert np.abs(frames - kept[cam]).max() <= 4, cam
