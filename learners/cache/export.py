"""Export a cache to Parquet: one row per transition, images as PNG bytes or flat arrays."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from learners.cache.batch import TransitionBatch
from learners.cache.cache import ReplayCache
from learners.cache.config import CacheConfig
from learners.cache.errors import CacheError
from learners.cache.records import encode_png, is_image
from learners.transition import Transition

log = logging.getLogger(__name__)

IMAGE_MODES = ("png", "array")
_SCALARS = (
    "actor_id",
    "seq",
    "episode",
    "step",
    "reward",
    "terminated",
    "truncated",
    "policy_version",
    "behavior_logp",
    "timestamp",
)


@dataclass
class ExportSummary:
    rows: int
    skipped_opaque: int  # records appended as bytes, not transitions
    columns: list[str]


def transition_row(offset: int, t: Transition, images: str) -> dict[str, Any]:
    """The Parquet row of one transition: flat columns, arrays flattened with a shape column."""
    row: dict[str, Any] = {"offset": offset}
    for name in _SCALARS:
        row[name] = getattr(t, name)
    _put(row, "action", t.action)
    _put(row, "next_action", t.next_action)
    for prefix, obs in (("obs", t.obs), ("next_obs", t.next_obs)):
        if isinstance(obs, dict):
            for key in sorted(obs):
                png = images == "png" and is_image(key, obs[key])
                _put(row, f"{prefix}.{key}", obs[key], png)
        else:
            _put(row, prefix, obs)
    for key in sorted(t.extras):
        _put(row, f"extras.{key}", t.extras[key])
    return row


def _put(row: dict[str, Any], name: str, value: Any, png: bool = False) -> None:
    if png:
        row[name] = encode_png(value)
    elif isinstance(value, np.ndarray):
        row[name] = value.ravel()
        if value.ndim != 1:
            row[f"{name}.shape"] = list(value.shape)
    else:
        row[name] = value


def export_parquet(
    cache_path: str | Path,
    out: str | Path,
    *,
    images: str = "png",
    batch_rows: int = 1024,
    on_rows: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write every transition of the cache at ``cache_path`` to the Parquet file ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if images not in IMAGE_MODES:
        raise ValueError(f"images={images!r}: expected one of {IMAGE_MODES}")
    out = Path(out)
    if out.exists() or out.is_symlink():  # a file of someone's, or the cache's own: never overwritten
        raise CacheError(f"export: {out} exists; export into a new file")
    final, out = out, out.with_name(f".{out.name}.partial")  # renamed once whole: no half a file left
    writer = None
    schema = None
    rows: list[dict[str, Any]] = []
    total = skipped = 0

    def flush() -> None:
        nonlocal writer, schema
        if not rows:
            return
        columns = {k: [r.get(k) for r in rows] for k in (schema.names if schema else _keys(rows))}
        try:
            table = pa.table(columns, schema=schema) if schema else pa.table(columns)
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
            raise CacheError(f"export: transitions do not share one schema ({exc})") from exc
        if writer is None:
            schema = table.schema
            writer = pq.ParquetWriter(str(out), schema)
        writer.write_table(table)
        if on_rows is not None:
            on_rows(len(rows))
        rows.clear()

    try:
        with ReplayCache(cache_path, CacheConfig(read_only=True)) as cache:
            for offset, record in cache.iter_records():
                if isinstance(record, TransitionBatch):
                    transitions = list(record)
                elif isinstance(record, Transition):
                    transitions = [record]
                else:
                    skipped += 1
                    continue
                for t in transitions:
                    rows.append(transition_row(offset, t, images))
                total += len(transitions)
                if len(rows) >= batch_rows:
                    flush()
            flush()
        if writer is None:
            raise CacheError(f"{cache_path}: no transitions to export")
        writer.close()
        os.replace(out, final)
    finally:
        if writer is not None and writer.is_open:  # failed half-way: nothing of it stays
            writer.close()
        out.unlink(missing_ok=True)
    return ExportSummary(total, skipped, list(schema.names))


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    return list(keys)
