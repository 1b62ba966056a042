"""``rill cache export DIR --format lerobot``: a replay cache as a LeRobotDataset v3.

Every complete episode of the cache (demonstrations and online rollouts alike) becomes a LeRobot
episode, in the order the cache finished them. Per step (``lerobot_format`` has the layout):

- ``observation.state`` the step's ``obs["state"]`` (or ``obs`` itself when it is a vector),
  ``action`` the action sent, both float32 and written unchanged;
- ``observation.images.<camera>`` the ``image.<camera>`` frames, as H.264 video (``video``);
- ``next.reward``, ``next.done``, ``next.terminated`` and, when the first episode's steps carry
  one, ``next.success``: what the robot reported after the step;
- ``timestamp = frame_index / fps`` and LeRobot's index columns; ``task_index`` points at the
  step's instruction in ``meta/tasks.parquet`` (an empty task when there is none).

``fps`` is the control rate: the cache does not record it, so it is a step's ``extras["control_hz"]``
when a writer left one there and ``--fps`` (default 50) otherwise; ``info.json`` says which
(``rill.fps_from``). rill's own per-episode facts that LeRobot has no column for (actor, source,
aborted, the state after the last step) go in ``meta/episodes`` as ``rill/...`` columns, which
LeRobot's reader carries along and ``lerobot_import`` reads back. The dataset is written to a
sibling directory and renamed into place, so ``out`` is never left half-written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.demos import lerobot_format as v3
from agent.demos.episodes import IMAGE_PREFIX
from agent.demos.lerobot_format import LeRobotFormatError
from agent.demos.video import CODEC, PIX_FMT, VideoError, VideoWriter
from learners.cache import CacheConfig, ReplayCache
from learners.transition import Transition

log = logging.getLogger(__name__)

DEFAULT_FPS = 50


@dataclass
class LeRobotExportSummary:
    out: Path
    episodes: int = 0
    frames: int = 0
    tasks: int = 0
    fps: int = DEFAULT_FPS
    fps_from: str = "--fps"
    cameras: list[str] = field(default_factory=list)
    skipped_incomplete: int = 0  # episodes the log ends inside of, or missing a transition
    success_unknown: int = 0  # steps without a success flag in a set whose first episode had them


def _state(t: Transition) -> np.ndarray:
    return np.asarray(t.obs["state"] if isinstance(t.obs, dict) else t.obs).reshape(-1)


def _frames(t: Transition) -> dict[str, np.ndarray]:
    return {k.removeprefix(IMAGE_PREFIX): v for k, v in t.obs.items()
            if k.startswith(IMAGE_PREFIX)} if isinstance(t.obs, dict) else {}


def _task(t: Transition) -> str:
    return str(t.obs.get("instruction", "")) if isinstance(t.obs, dict) else ""


def _vector(dtype: str, n: int, names: list[str] | None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [n], "names": names}


def _fps(steps: list[Transition], fallback: int) -> tuple[int, str]:
    hz = steps[0].extras.get("control_hz")
    if hz is None:
        return int(fallback), "--fps"
    if float(hz) <= 0 or not float(hz).is_integer():
        raise LeRobotFormatError(f"control_hz {hz} of actor {steps[0].actor_id}: LeRobot needs a whole fps")
    return int(hz), "cache"


class _Exporter:
    def __init__(self, root: Path, fps: int, data_file_mb: float, video_file_mb: float) -> None:
        self.root, self.fps = root, fps
        self.data_files, self.data_limit_mb = v3.FileCursor(data_file_mb), data_file_mb
        self.video_limit_mb = video_file_mb
        self.features: dict[str, dict[str, Any]] = {}
        self.cameras: dict[str, tuple[int, int, int]] = {}
        self.has_success = False
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self.stats: list[dict[str, dict[str, np.ndarray]]] = []
        self.frames = self.success_unknown = 0
        self._writer = None
        self._schema = None
        self._data_bytes = 0
        self._videos: dict[str, tuple[v3.FileCursor, VideoWriter | None]] = {}

    def define(self, steps: list[Transition]) -> None:
        """The features, from the first episode's first step."""
        first = steps[0]
        action = np.asarray(first.action)
        action_dtype = "int64" if action.dtype.kind in "iub" else "float32"
        n_state, n_action = _state(first).size, action.size
        self.features = {v3.STATE: _vector("float32", n_state, [f"state_{i}" for i in range(n_state)]),
                         v3.ACTION: _vector(action_dtype, n_action, [f"action_{i}" for i in range(n_action)])}
        for cam, frame in sorted(_frames(first).items()):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise LeRobotFormatError(f"camera {cam}: frames are {frame.dtype} {frame.shape}, "
                                         f"not HxWx3 uint8")
            self.cameras[cam] = frame.shape
            h, w, _ = frame.shape
            self.features[v3.CAMERA_PREFIX + cam] = {
                "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                "info": {"video.height": h, "video.width": w, "video.codec": CODEC, "video.pix_fmt": PIX_FMT,
                         "video.is_depth_map": False, "video.fps": self.fps, "video.channels": 3,
                         "has_audio": False}}
            self._videos[cam] = (v3.FileCursor(self.video_limit_mb), None)
        self.has_success = all("success" in t.extras for t in steps)
        self.features["next.reward"] = _vector("float32", 1, None)
        self.features["next.done"] = _vector("bool", 1, None)
        self.features["next.terminated"] = _vector("bool", 1, None)
        if self.has_success:
            self.features["next.success"] = _vector("bool", 1, None)
        for name, dtype in v3.INDEX_FEATURES.items():
            self.features[name] = _vector(dtype, 1, None)

    def add(self, actor_id: str, episode: int, steps: list[Transition]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        where = f"actor {actor_id} episode {episode}"
        n, index = len(steps), len(self.episodes)
        columns = self._columns(steps, where)
        columns["episode_index"] = np.full(n, index, np.int64)
        columns["index"] = np.arange(self.frames, self.frames + n, dtype=np.int64)
        columns = {k: columns[k] for k in self.features if k in columns}  # the order info.json gives
        stats = {k: v3.feature_stats(v) for k, v in columns.items()}
        table = pa.table({k: self._arrow(k, v) for k, v in columns.items()}, schema=self._schema)
        if self._writer is not None and self.data_files.full(self._data_bytes):
            self._writer.close()
            self._writer, self._data_bytes = None, 0
            self.data_files.advance()
        if self._writer is None:
            files = self.data_files
            path = self.root / v3.DATA_PATH.format(chunk_index=files.chunk, file_index=files.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(str(path), self._schema, compression="snappy")
        self._writer.write_table(table)
        self._data_bytes += table.nbytes
        row: dict[str, Any] = {
            "episode_index": index, "tasks": list(dict.fromkeys(_task(s) for s in steps)),
            "length": n, "data/chunk_index": self.data_files.chunk, "data/file_index": self.data_files.file,
            "dataset_from_index": self.frames, "dataset_to_index": self.frames + n}
        for cam in self.cameras:
            if not all(cam in _frames(s) for s in steps):
                raise LeRobotFormatError(f"{where}: steps without a {cam!r} frame (the first has one)")
            frames = np.stack([_frames(s)[cam] for s in steps])
            stats[v3.CAMERA_PREFIX + cam] = v3.feature_stats(frames, image=True)
            row.update(self._video(cam, frames))
        row.update({f"stats/{k}/{s}": v.tolist() for k, st in stats.items() for s, v in st.items()})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                    "rill/actor_id": actor_id, "rill/episode": episode,
                    "rill/source": str(steps[0].extras.get("source", "")),
                    "rill/aborted": bool(steps[-1].extras.get("aborted", False)),
                    "rill/last_next_state": self._last_next_state(steps)})
        self.episodes.append(row)
        self.stats.append(stats)
        self.frames += n

    def _columns(self, steps: list[Transition], where: str) -> dict[str, np.ndarray]:
        n = len(steps)
        try:
            states = np.stack([_state(s) for s in steps]).astype(np.float32, copy=False)
            actions = np.stack([np.asarray(s.action).reshape(-1) for s in steps])
        except ValueError as e:
            raise LeRobotFormatError(f"{where}: steps of different shapes ({e})") from e
        for key, values in ((v3.STATE, states), (v3.ACTION, actions)):
            if values.shape[1] != self.features[key]["shape"][0]:
                raise LeRobotFormatError(f"{where}: {key} width {values.shape[1]}, the first episode's is "
                                         f"{self.features[key]['shape'][0]}")
        columns = {v3.STATE: states, v3.ACTION: actions.astype(self.features[v3.ACTION]["dtype"], copy=False),
                   "next.reward": np.array([s.reward for s in steps], np.float32),
                   "next.done": np.array([s.done for s in steps], bool),
                   "next.terminated": np.array([s.terminated for s in steps], bool)}
        if self.has_success:
            self.success_unknown += sum("success" not in s.extras for s in steps)
            columns["next.success"] = np.array([bool(s.extras.get("success", False)) for s in steps], bool)
        columns["timestamp"] = (np.arange(n) / self.fps).astype(np.float32)
        columns["frame_index"] = np.arange(n, dtype=np.int64)
        columns["task_index"] = np.array([self.tasks.setdefault(_task(s), len(self.tasks)) for s in steps],
                                         np.int64)
        return columns

    @staticmethod
    def _arrow(key: str, values: np.ndarray):
        import pyarrow as pa

        if values.ndim == 1 or values.shape[1] == 1:  # a feature of shape [1] is a plain column
            return pa.array(values.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])

    def _video(self, cam: str, frames: np.ndarray) -> dict[str, Any]:
        files, writer = self._videos[cam]
        if writer is not None and files.full(os.path.getsize(writer.path) if writer.path.exists() else 0):
            writer.close()
            files.advance()
            writer = None
        if writer is None:
            h, w, _ = self.cameras[cam]
            path = self.root / v3.VIDEO_PATH.format(video_key=v3.CAMERA_PREFIX + cam, chunk_index=files.chunk,
                                                 file_index=files.file)
            writer = VideoWriter(path, self.fps, h, w)
            self._videos[cam] = (files, writer)
        start = writer.duration_s
        for frame in frames:
            writer.write(frame)
        key = f"videos/{v3.CAMERA_PREFIX}{cam}"
        return {f"{key}/chunk_index": files.chunk, f"{key}/file_index": files.file,
                f"{key}/from_timestamp": start, f"{key}/to_timestamp": writer.duration_s}

    @staticmethod
    def _last_next_state(steps: list[Transition]) -> list[float]:
        nxt = steps[-1].next_obs
        value = nxt.get("state") if isinstance(nxt, dict) else nxt
        return [] if value is None else np.asarray(value, np.float32).reshape(-1).tolist()

    def close(self) -> None:
        """Finish the open data and video files."""
        writers = [self._writer, *(writer for _files, writer in self._videos.values())]
        self._writer, self._videos = None, {}
        for writer in writers:
            if writer is not None:
                writer.close()

    def finish(self, fps_from: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.close()
        tasks = sorted(self.tasks, key=self.tasks.get)
        v3.write_tasks(self.root / v3.TASKS_PATH, tasks)
        path = self.root / v3.EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.episodes), path, compression="snappy")
        v3.write_json(self.root / v3.STATS_PATH, v3.stats_json(v3.aggregate_stats(self.stats)))
        v3.write_json(self.root / v3.INFO_PATH, {
            "codebase_version": v3.CODEBASE_VERSION, "robot_type": None,
            "total_episodes": len(self.episodes), "total_frames": self.frames, "total_tasks": len(tasks),
            "chunks_size": v3.CHUNKS_SIZE, "data_files_size_in_mb": self.data_limit_mb,
            "video_files_size_in_mb": self.video_limit_mb, "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": v3.DATA_PATH,
            "video_path": v3.VIDEO_PATH if self.cameras else None, "features": self.features,
            "rill": {"control_hz": self.fps, "fps_from": fps_from}})


def export_lerobot(cache_path: str | Path, out: str | Path, *, fps: int = DEFAULT_FPS,
                   data_file_mb: float = v3.DATA_FILE_MB, video_file_mb: float = v3.VIDEO_FILE_MB,
                   on_episode: Callable[[int], None] | None = None) -> LeRobotExportSummary:
    """Write the complete episodes of the cache at ``cache_path`` as a LeRobotDataset v3 at ``out``.

    ``out`` must not exist. Raises ``LeRobotFormatError`` for a cache with no complete episode or
    whose episodes differ in shape, naming the episode. ``on_episode(frames)`` follows progress.
    """
    cache_path, out = Path(cache_path), Path(out)
    if type(fps) is not int or fps < 1:  # timestamps are frame_index / fps
        raise LeRobotFormatError(f"--fps must be a positive integer, got {fps!r}")
    if out.exists():
        raise LeRobotFormatError(f"{out} exists: export into a new directory")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    summary = LeRobotExportSummary(out)
    exporter: _Exporter | None = None
    try:
        with ReplayCache(cache_path, CacheConfig(read_only=True)) as cache:
            for ep in cache.iter_episodes():
                if not ep.complete:
                    summary.skipped_incomplete += 1
                    continue
                if exporter is None:
                    summary.fps, summary.fps_from = _fps(ep.transitions, fps)
                    exporter = _Exporter(tmp, summary.fps, data_file_mb, video_file_mb)
                    exporter.define(ep.transitions)
                exporter.add(ep.actor_id, ep.episode, ep.transitions)
                if on_episode is not None:
                    on_episode(len(ep.transitions))
        if exporter is None:
            raise LeRobotFormatError(f"{cache_path}: no complete episode to export "
                                     f"({summary.skipped_incomplete} incomplete)")
        exporter.finish(summary.fps_from)
        tmp.rename(out)
    except BaseException as e:
        if exporter is not None:
            with contextlib.suppress(Exception):
                exporter.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, VideoError):
            raise LeRobotFormatError(f"export to {out}: {e}") from e
        raise
    summary.episodes, summary.frames = len(exporter.episodes), exporter.frames
    summary.tasks = len(exporter.tasks)
    summary.cameras, summary.success_unknown = list(exporter.cameras), exporter.success_unknown
    if summary.skipped_incomplete:
        log.warning("%s: %d incomplete episodes left out", cache_path, summary.skipped_incomplete)
    if summary.success_unknown:
        log.warning("%s: %d steps had no success flag; exported as next.success = false",
                    cache_path, summary.success_unknown)
    log.info("exported %d episodes (%d frames) to %s", summary.episodes, summary.frames, out)
    return summary
