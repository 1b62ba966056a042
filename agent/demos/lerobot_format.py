"""The LeRobotDataset v3 layout: paths, info.json, tasks, per-feature statistics.

What robot-learning users exchange demonstrations in (``lerobot`` ``CODEBASE_VERSION = "v3.0"``)::

    meta/info.json                   codebase_version, fps, features, path templates, totals
    meta/stats.json                  per feature: min, max, mean, std, count (+ quantiles q01..q99)
    meta/tasks.parquet               task_index, and the task text as the (pandas) index
    meta/episodes/chunk-XXX/file-XXX.parquet   one row per episode: length, tasks, where its
                                     rows and video frames are, its own stats as stats/<feature>/<stat>
    data/chunk-XXX/file-XXX.parquet  one row per frame, many episodes per file
    videos/<video_key>/chunk-XXX/file-XXX.mp4  many episodes per file, one after another

A feature of shape ``[1]`` is a plain column, a longer vector a fixed-size list. Image and video
statistics are per channel, on pixels scaled to [0, 1], shaped ``[3, 1, 1]``. The facts here were
taken from LeRobot's documentation and its ``datasets/utils.py``, ``lerobot_dataset.py`` and
``compute_stats.py`` (v0.4); the code is rill's own. ``lerobot_export`` writes the format,
``lerobot_import`` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agent.demos.episodes import DemoSetError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_MB = 100  # a data file is closed past this size
VIDEO_FILE_MB = 200
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
STATE, ACTION = "observation.state", "action"
CAMERA_PREFIX = "observation.images."
INDEX_FEATURES = {  # every LeRobot dataset has these, after its own features
    "timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
    "task_index": "int64",
}
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STAT_KEYS = ("min", "max", "mean", "std", "count", *(f"q{round(q * 100):02d}" for q in QUANTILES))
_PANDAS_INDEX = "__index_level_0__"  # how pandas stores an unnamed index (LeRobot's task texts)


class LeRobotFormatError(DemoSetError):
    """A LeRobot dataset rill cannot read or write: the message names the file and the problem."""


class FileCursor:
    """Where the next episode of one kind of file goes: the current chunk and file, moved to the
    next file once the current one has passed ``limit_mb`` (``CHUNKS_SIZE`` files a chunk)."""

    def __init__(self, limit_mb: float) -> None:
        self.chunk = self.file = 0
        self.limit = limit_mb * 1024 * 1024

    def full(self, size: int) -> bool:
        return size >= self.limit

    def advance(self) -> None:
        last = self.file == CHUNKS_SIZE - 1
        self.chunk, self.file = (self.chunk + 1, 0) if last else (self.chunk, self.file + 1)


def is_visual(feature: dict[str, Any]) -> bool:
    return feature.get("dtype") in ("video", "image")


def camera_name(key: str) -> str:
    """rill's camera name for a LeRobot visual feature (``observation.images.front`` -> ``front``)."""
    if key.startswith(CAMERA_PREFIX):
        return key.removeprefix(CAMERA_PREFIX)
    return key.removeprefix("observation.")


def frame_shape(key: str, feature: dict[str, Any]) -> tuple[int, int, int]:
    """``(H, W, C)`` of a visual feature, whichever order its ``names`` give (LeRobot writes both)."""
    shape, names = [int(s) for s in feature.get("shape", ())], feature.get("names") or []
    if len(shape) != 3:
        raise LeRobotFormatError(f"feature {key!r}: a camera needs a 3-d shape, got {shape}")
    if names and str(names[0]).lower() in ("c", "channel", "channels"):
        return shape[1], shape[2], shape[0]
    return shape[0], shape[1], shape[2]


def feature_stats(values: np.ndarray, image: bool = False) -> dict[str, np.ndarray]:
    """One episode's statistics of one feature, as LeRobot keeps them.

    ``values`` is ``[T, ...]``; vectors get one value per dimension, images (``[T, H, W, 3]`` uint8)
    one per channel on ``[0, 1]`` pixels, shaped ``[3, 1, 1]``. ``count`` is ``[T]``.
    """
    count = np.array([len(values)], np.int64)
    if image:
        flat = values.reshape(-1, values.shape[-1]).astype(np.float64) / 255.0
    else:
        flat = values.reshape(len(values), -1).astype(np.float64)
    stats = {"min": flat.min(0), "max": flat.max(0), "mean": flat.mean(0), "std": flat.std(0)}
    for q, value in zip(STAT_KEYS[5:], np.quantile(flat, QUANTILES, axis=0)):
        stats[q] = value
    if image:
        stats = {k: v.reshape(-1, 1, 1) for k, v in stats.items()}
    return {**stats, "count": count}


def aggregate_stats(per_episode: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """The whole dataset's statistics from its episodes': min of mins, max of maxes, the
    count-weighted mean, the pooled variance, and (as LeRobot does) count-weighted quantiles."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key in per_episode[0]:
        stats = [s[key] for s in per_episode]
        counts = np.array([s["count"][0] for s in stats], np.float64)
        weights = (counts / counts.sum()).reshape(-1, *([1] * stats[0]["mean"].ndim))
        means = np.stack([s["mean"] for s in stats])
        mean = (weights * means).sum(0)
        var = (weights * (np.stack([s["std"] for s in stats]) ** 2 + (means - mean) ** 2)).sum(0)
        out[key] = {"min": np.stack([s["min"] for s in stats]).min(0),
                    "max": np.stack([s["max"] for s in stats]).max(0), "mean": mean, "std": np.sqrt(var),
                    "count": np.array([int(counts.sum())], np.int64)}
        for q in STAT_KEYS[5:]:
            out[key][q] = (weights * np.stack([s[q] for s in stats])).sum(0)
    return out


def stats_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, list]]:
    return {key: {k: np.asarray(v).tolist() for k, v in s.items()} for key, s in stats.items()}


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4, ensure_ascii=False) + "\n")


def write_tasks(path: Path, tasks: list[str]) -> None:
    """``meta/tasks.parquet`` as LeRobot writes it with pandas: a ``task_index`` column and the task
    texts as the frame's unnamed index (so ``pandas.read_parquet(...).loc[text]`` finds a task)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pandas_meta = {
        "index_columns": [_PANDAS_INDEX],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": None, "field_name": _PANDAS_INDEX, "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      _PANDAS_INDEX: pa.array(tasks, pa.string())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}), path)


def read_parquet(path: Path, columns: list[str] | None = None):
    """A Parquet file as a pyarrow table; a missing, unreadable or corrupt one is named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise LeRobotFormatError(f"{path}: no such file")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise LeRobotFormatError(f"{path}: not a readable Parquet file ({e})") from e


def read_tasks(path: Path) -> dict[int, str]:
    """``task_index -> text`` from ``meta/tasks.parquet``: the text is a ``task`` column, or the
    pandas index LeRobot writes."""
    table = read_parquet(path)
    names = table.column_names
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
    text = "task" if "task" in names else next(
        (c for c in meta.get("index_columns", []) if isinstance(c, str) and c in names),
        _PANDAS_INDEX if _PANDAS_INDEX in names else None)
    if "task_index" not in names or text is None:
        raise LeRobotFormatError(f"{path}: expected a task_index column and the task texts, got {names}")
    indices, texts = table.column("task_index").to_pylist(), table.column(text).to_pylist()
    return {int(i): str(t) for i, t in zip(indices, texts)}


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json``, checked for what reading the dataset needs."""
    path = root / INFO_PATH
    if not path.is_file():
        raise LeRobotFormatError(f"{root}: not a LeRobot dataset (no {INFO_PATH})")
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LeRobotFormatError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(info, dict):
        raise LeRobotFormatError(f"{path}: expected a JSON object")
    missing = [k for k in ("codebase_version", "fps", "features", "data_path") if k not in info]
    if missing:
        raise LeRobotFormatError(f"{path}: missing {', '.join(missing)}")
    version = str(info["codebase_version"])
    if not version.startswith("v3"):
        raise LeRobotFormatError(f"{path}: codebase_version {version}; rill reads LeRobotDataset v3 "
                                 f"(convert older ones with LeRobot's convert_dataset_v21_to_v30)")
    fps = info["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or fps == float("inf"):
        raise LeRobotFormatError(f"{path}: fps must be a positive number, got {fps!r}")
    if not isinstance(info["features"], dict) or not info["features"]:
        raise LeRobotFormatError(f"{path}: features must be a non-empty mapping")
    if any(is_visual(f) and f.get("dtype") == "video" for f in info["features"].values()) and \
            not info.get("video_path"):
        raise LeRobotFormatError(f"{path}: video features but no video_path")
    return info
