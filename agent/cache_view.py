"""The tables ``rill cache info|verify|export`` print (rich), apart from the commands that fill them."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table


def info_tables(path: Path, stats, consumers: dict[str, int]) -> list[Table]:
    """The cache's segments, records and bytes; its consumers and how far each lags."""
    table = Table(title=f"replay cache {path}")
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_row("segments", str(stats.segments))
    table.add_row("records", str(stats.records))
    table.add_row("bytes", f"{stats.bytes:,}")
    table.add_row("first offset", str(stats.first_offset))
    table.add_row("end offset", str(stats.durable_offset))
    if stats.oldest_segment_time is not None:
        table.add_row("oldest segment", time.strftime("%Y-%m-%d %H:%M:%S",
                                                      time.localtime(stats.oldest_segment_time)))
    if not consumers:
        return [table]
    ctable = Table(title="consumers")
    ctable.add_column("name")
    ctable.add_column("committed position", justify="right")
    ctable.add_column("lag (records)", justify="right")
    for name, position in consumers.items():
        ctable.add_row(name, str(position), f"{max(stats.durable_offset - position, 0):,}")
    return [table, ctable]


def verify_tables(path: Path, report) -> list[Table]:
    """One row per segment, and the damage found, if any (``learners.cache.verify``'s report)."""
    table = Table(title=f"verify {path}")
    for column in ("segment", "offsets", "records", "bytes", "check", "problems"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for seg in report.segments:
        table.add_row(
            seg.name,
            f"{seg.base}..{seg.end - 1}" if seg.end > seg.base else "-",
            str(seg.records),
            f"{seg.bytes:,}",
            seg.check + ("" if seg.sealed else " (active)"),
            str(len(seg.problems)),
        )
    if not report.problems:
        return [table]
    damage = Table(title="damage")
    for column in ("segment", "offset", "records", "problem"):
        damage.add_column(column)
    for p in report.problems:
        damage.add_row(p.segment, str(p.offset), str(p.count), p.problem)
    return [table, damage]


def field_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column table of what an export wrote."""
    table = Table(title=title)
    table.add_column("field")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table
