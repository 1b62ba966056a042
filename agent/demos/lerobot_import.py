"""``rill demos import DIR --out CACHE``: a LeRobotDataset v3 as a demonstration cache.

Reads what ``lerobot_export`` writes and what LeRobot itself writes in the common case (a state,
an action, cameras as video or as images in the data files, tasks) and writes each episode as
rill demonstrations (``agent.demos.episodes``): ``obs`` = ``state``, ``image.<camera>``,
``instruction`` (the frame's task); ``action``; ``next_obs`` = the next frame's state (after the
last frame: rill's own ``rill/last_next_state`` when the dataset has it, else the last state);
``reward`` and ``success`` from ``next.reward`` / ``next.success`` where the dataset has them
(else 0 and false, or true on the last step with ``assume_success``); the last step ends the
episode (``terminated`` when ``next.terminated`` says so, else truncated).

Everything is checked before it is kept: features the import needs (``observation.state``,
``action``, each asked-for camera), episode lengths and boundaries against the data, frames
against their declared size. A missing, unreadable or corrupt Parquet or MP4 file raises
``LeRobotFormatError`` naming it. The cache is built in a sibling directory and renamed into
place only when whole, so a failed import leaves nothing at ``out``.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.demos.episodes import IMAGE_PREFIX, SOURCES, demo_actor
from agent.demos.lerobot_format import (
    ACTION,
    EPISODES_DIR,
    STATE,
    TASKS_PATH,
    LeRobotFormatError,
    camera_name,
    frame_shape,
    is_visual,
    read_info,
    read_parquet,
    read_tasks,
)
from agent.demos.video import FrameReader, VideoError
from learners.cache import CacheConfig, ReplayCache
from learners.transition import Transition

log = logging.getLogger(__name__)

_EPISODE_COLUMNS = ("episode_index", "length", "dataset_from_index", "dataset_to_index")


@dataclass
class LeRobotImportSummary:
    out: Path
    episodes: int = 0
    frames: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # episodes by who acted
    cameras: list[str] = field(default_factory=list)
    tasks: int = 0
    successful: int = 0


class _Dataset:
    """One LeRobot dataset on disk: its info, tasks, episodes, and the data rows of an episode."""

    def __init__(self, root: Path, cameras: list[str] | None) -> None:
        self.root = root
        self.info = read_info(root)
        self.fps = self.info["fps"]
        features: dict[str, dict[str, Any]] = self.info["features"]
        where = f"{root}: meta/info.json"
        for key in (STATE, ACTION):
            ft = features.get(key)
            if ft is None:
                raise LeRobotFormatError(f"{where} has no {key!r} feature, which a demonstration needs "
                                         f"(features: {', '.join(sorted(features))})")
            if ft.get("dtype") in ("video", "image", "string") or len(ft.get("shape", ())) != 1:
                raise LeRobotFormatError(f"{where}: {key!r} must be a numeric vector, got "
                                         f"{ft.get('dtype')} of shape {ft.get('shape')}")
        visual = {camera_name(k): k for k, ft in features.items() if is_visual(ft)}
        if cameras is None:
            cameras = sorted(visual)
        # "NAME" keeps the dataset's camera name; "NAME=RILL" renames it (LeRobot's Meta-World
        # datasets call the corner2 camera "observation.image": image=corner2).
        renamed = dict(c.split("=", 1) if "=" in c else (c, c) for c in cameras)
        unknown = [c for c in renamed if c not in visual]
        if unknown:
            raise LeRobotFormatError(f"{where}: no camera {', '.join(map(repr, unknown))} "
                                     f"(its cameras: {', '.join(sorted(visual)) or 'none'})")
        bad = [n for n in renamed.values() if not n or "." in n or "=" in n]
        if bad or len(set(renamed.values())) != len(renamed):
            raise LeRobotFormatError(f"cameras {cameras}: rill camera names must be distinct, non-empty and "
                                     f"without '.' or '='")
        self.cameras = {new: visual[old] for old, new in renamed.items()}  # rill name -> LeRobot key
        self.shapes = {c: frame_shape(k, features[k]) for c, k in self.cameras.items()}
        for c, shape in self.shapes.items():
            if shape[2] != 3:
                raise LeRobotFormatError(f"{where}: camera {c!r} has {shape[2]} channels; "
                                         f"rill frames are RGB")
        self.next = {k for k in ("next.reward", "next.terminated", "next.success") if k in features}
        self.tasks = read_tasks(root / TASKS_PATH)
        self.episodes = self._episodes()
        self._table: tuple[Path, Any] | None = None
        self._readers: dict[str, FrameReader] = {}

    def _episodes(self) -> list[dict[str, Any]]:
        paths = sorted((self.root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
        if not paths:
            raise LeRobotFormatError(f"{self.root}: no episodes ({EPISODES_DIR} has no Parquet file)")
        rows: list[dict[str, Any]] = []
        for path in paths:
            table = read_parquet(path)
            needed = [*_EPISODE_COLUMNS, "data/chunk_index", "data/file_index"]
            needed += [f"videos/{k}/{c}" for cam, k in self.cameras.items()
                       if self.info["features"][k]["dtype"] == "video"
                       for c in ("chunk_index", "file_index", "from_timestamp")]
            missing = [c for c in needed if c not in table.column_names]
            if missing:
                raise LeRobotFormatError(f"{path}: missing episode columns {', '.join(missing)}")
            rows += table.select([c for c in table.column_names if not c.startswith("stats/")]).to_pylist()
        if not rows:
            raise LeRobotFormatError(f"{self.root}: the dataset is empty (no episode)")
        rows.sort(key=lambda r: r["episode_index"])
        return rows

    def rows(self, ep: dict[str, Any]) -> dict[str, np.ndarray]:
        """The episode's data columns, in frame order, checked against its metadata."""
        path = self.root / self.info["data_path"].format(chunk_index=ep["data/chunk_index"],
                                                         file_index=ep["data/file_index"])
        if self._table is None or self._table[0] != path:
            self._table = (path, read_parquet(path))
        table = self._table[1]
        index = ep["episode_index"]
        keys = [STATE, ACTION, "timestamp", "frame_index", "episode_index", "task_index", *sorted(self.next)]
        keys += [k for k in self.cameras.values() if self.info["features"][k]["dtype"] == "image"]
        missing = [k for k in keys if k not in table.column_names]
        if missing:
            raise LeRobotFormatError(f"{path}: missing columns {', '.join(missing)} "
                                     f"that meta/info.json declares")
        import pyarrow as pa

        sub = table.filter(pa.array(_numpy(table.column("episode_index"), str(path)) == index))
        cols = {k: sub.column(k).to_pylist() if self._is_image(k) else _numpy(sub.column(k), f"{path} {k}")
                for k in keys}
        order = np.argsort(cols["frame_index"], kind="stable")
        cols = {k: [v[i] for i in order] if isinstance(v, list) else v[order] for k, v in cols.items()}
        n, length = len(order), ep["length"]
        if n != length or not np.array_equal(cols["frame_index"], np.arange(n)):
            raise LeRobotFormatError(f"{path}: episode {index} has {n} rows (frame_index "
                                     f"{cols['frame_index'][:3].tolist()}...), meta/episodes says {length}")
        for key in (STATE, ACTION):
            width = self.info["features"][key]["shape"][0]
            cols[key] = cols[key].reshape(n, -1)
            if cols[key].shape[1] != width:
                raise LeRobotFormatError(f"{path}: {key} has {cols[key].shape[1]} values a frame, "
                                         f"meta/info.json says {width}")
        return cols

    def _is_image(self, key: str) -> bool:
        return self.info["features"].get(key, {}).get("dtype") == "image"

    def frames(self, ep: dict[str, Any], cols: dict[str, Any], cam: str) -> np.ndarray:
        key = self.cameras[cam]
        if self._is_image(key):
            where = f"{self.root} {key} episode {ep['episode_index']}"
            frames = np.stack([_png(v, where) for v in cols[key]])
        else:
            path = self.root / self.info["video_path"].format(video_key=key,
                                                              chunk_index=ep[f"videos/{key}/chunk_index"],
                                                              file_index=ep[f"videos/{key}/file_index"])
            reader = self._readers.get(key)
            if reader is None or reader.path != path:
                if reader is not None:
                    reader.close()
                reader = self._readers[key] = FrameReader(path)
            start = float(ep[f"videos/{key}/from_timestamp"])
            try:
                frames = reader.at(start + cols["timestamp"].astype(np.float64))
            except VideoError as e:
                raise LeRobotFormatError(f"episode {ep['episode_index']}, camera {cam}: {e}") from e
        if frames.shape[1:] != self.shapes[cam]:
            raise LeRobotFormatError(f"{self.root}: camera {cam} frames are {frames.shape[1:]}, "
                                     f"meta/info.json says {self.shapes[cam]}")
        return frames

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()


def _numpy(column, where: str) -> np.ndarray:
    """A column as numpy in its own dtype: scalars as ``[n]``, lists as ``[n, width]``."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        raise LeRobotFormatError(f"{where}: {array.null_count} missing values")
    if not (pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type)
            or pa.types.is_large_list(array.type)):
        return array.to_numpy(zero_copy_only=False)
    values = array.flatten().to_numpy(zero_copy_only=False)
    if len(array) and values.size % len(array):
        raise LeRobotFormatError(f"{where}: rows of different lengths")
    return values.reshape(len(array), -1)


def _png(value: Any, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    data = value.get("bytes") if isinstance(value, dict) else value
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except (UnidentifiedImageError, OSError, TypeError) as e:
        raise LeRobotFormatError(f"{where}: an image that does not decode ({e})") from e


def _steps(data: _Dataset, ep: dict[str, Any], cols: dict[str, Any], frames: dict[str, np.ndarray],
           source: str, assume_success: bool, seq: int, episode: int) -> list[Transition]:
    n = len(cols["frame_index"])
    states = cols[STATE].astype(np.float32, copy=False)
    last_next = np.asarray(ep.get("rill/last_next_state") or [], np.float32)
    last_next = last_next if last_next.shape == states[-1].shape else states[-1]
    success = cols["next.success"].astype(bool) if "next.success" in cols else np.zeros(n, bool)
    if assume_success and "next.success" not in cols:
        success[-1] = True
    terminated_last = bool(cols["next.terminated"][-1]) if "next.terminated" in cols else False
    steps = []
    for i in range(n):
        task = data.tasks.get(int(cols["task_index"][i]))
        if task is None:
            raise LeRobotFormatError(f"{data.root}: episode {ep['episode_index']} frame {i} has task_index "
                                     f"{int(cols['task_index'][i])}, which {TASKS_PATH} does not list")
        obs: dict[str, Any] = {"state": states[i].copy(), "instruction": task}
        obs.update({IMAGE_PREFIX + cam: f[i] for cam, f in frames.items()})
        last = i == n - 1
        extras: dict[str, Any] = {"source": source, "success": bool(success[i])}
        if last and ep.get("rill/aborted"):
            extras["aborted"] = True
        reward = float(cols["next.reward"][i]) if "next.reward" in cols else 0.0
        steps.append(Transition(
            obs=obs, action=cols[ACTION][i].astype(np.float32), reward=reward,
            next_obs={"state": (last_next if last else states[i + 1]).copy()},
            terminated=last and terminated_last, truncated=last and not terminated_last,
            actor_id=demo_actor(source), seq=seq + i + 1, episode=episode, step=i,
            timestamp=float(cols["timestamp"][i]), extras=extras))
    return steps


def import_lerobot(root: str | Path, out: str | Path, *, source: str | None = None,
                   cameras: list[str] | None = None, assume_success: bool = False,
                   on_episode: Callable[[int], None] | None = None) -> LeRobotImportSummary:
    """Import the LeRobotDataset v3 at ``root`` into a new demonstration cache at ``out``.

    ``source`` is who acted (``expert``, ``human``, ``policy``) in every episode; by default each
    episode's own as rill exported it (``rill/source``), else ``expert``. ``cameras`` picks
    cameras by rill name (default: all); ``NAME=RILL`` imports camera ``NAME`` as ``RILL``.
    ``assume_success`` marks each episode's last step successful when the dataset has no
    ``next.success`` (LeRobot's own recordings rarely do). ``out`` must not exist.
    """
    root, out = Path(root), Path(out)
    if source is not None and source not in SOURCES:
        raise LeRobotFormatError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if out.exists():
        raise LeRobotFormatError(f"{out} exists: import into a new cache (an import never adds to one)")
    if not root.is_dir():
        raise LeRobotFormatError(f"{root}: no such directory")
    data = _Dataset(root, cameras)
    summary = LeRobotImportSummary(out, cameras=list(data.cameras), tasks=len(data.tasks))
    steps_of: dict[str, int] = {}  # seq and episode numbers run per actor, as a recorder's do
    tmp = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with ReplayCache(tmp, CacheConfig(durability="fsync", image_codec="png")) as cache:
            for ep in data.episodes:
                recorded = str(ep.get("rill/source") or "")
                who = source or (recorded if recorded in SOURCES else "expert")
                cols = data.rows(ep)
                frames = {cam: data.frames(ep, cols, cam) for cam in data.cameras}
                steps = _steps(data, ep, cols, frames, who, assume_success, steps_of.get(who, 0),
                               summary.sources.get(who, 0))
                steps_of[who] = steps_of.get(who, 0) + len(steps)
                summary.sources[who] = summary.sources.get(who, 0) + 1
                cache.append_many(steps)
                summary.episodes, summary.frames = summary.episodes + 1, summary.frames + len(steps)
                summary.successful += steps[-1].extras["success"]
                if on_episode is not None:
                    on_episode(len(steps))
            cache.flush()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        data.close()
    log.info("imported %d episodes (%d steps) from %s into %s", summary.episodes, summary.frames, root, out)
    return summary
