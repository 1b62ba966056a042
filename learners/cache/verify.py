"""``verify``: check every checksum of a cache without changing anything, and say where it hurts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from learners.cache.consumer import registered_consumers
from learners.cache.errors import CacheCorruptError
from learners.cache.files import check_meta, read_index
from learners.cache.format import (
    SEGMENT_HEADER_SIZE,
    index_name,
    parse_segment_name,
    scan,
    segment_name,
)
from learners.cache.segment import check_header


@dataclass
class Problem:
    """One damaged place: the segment file, the global offset, and what is wrong."""

    segment: str
    offset: int
    length: int
    problem: str
    torn_tail: bool = False  # the unsynced end of the active segment; recovery truncates it


@dataclass
class SegmentReport:
    name: str
    base: int
    bytes: int
    records: int
    indexed: bool  # a valid persisted index exists
    problems: list[Problem] = field(default_factory=list)


@dataclass
class VerifyReport:
    path: Path
    segments: list[SegmentReport] = field(default_factory=list)
    consumer_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [p for s in self.segments for p in s.problems]

    @property
    def records(self) -> int:
        return sum(s.records for s in self.segments)

    @property
    def ok(self) -> bool:
        """True when nothing is damaged (a torn tail of the active segment is not damage)."""
        return not self.consumer_problems and all(p.torn_tail for p in self.problems)


def verify_cache(
    path: str | Path, on_segment: Callable[[SegmentReport], None] | None = None
) -> VerifyReport:
    """Read every segment and check every header, record checksum and index; modify nothing."""
    path = Path(path)
    check_meta(path)
    report = VerifyReport(path)
    bases = sorted(b for b in (parse_segment_name(p.name) for p in path.iterdir()) if b is not None)
    previous_end = None
    for i, base in enumerate(bases):
        seg_path = path / segment_name(base)
        data = seg_path.read_bytes()
        has_index = (path / index_name(base)).exists()
        active = i == len(bases) - 1 and not has_index
        result = scan(data, SEGMENT_HEADER_SIZE)
        index = read_index(path / index_name(base), base, len(data)) if has_index else None
        seg = SegmentReport(
            seg_path.name, base, len(data), len(result.positions), index is not None
        )
        header_problem = check_header(seg_path, base)
        if header_problem is not None:
            seg.problems.append(Problem(seg.name, base, SEGMENT_HEADER_SIZE, header_problem))
        if previous_end is not None and base != previous_end:
            seg.problems.append(
                Problem(
                    seg.name, base, 0, f"gap or overlap: previous segment ends at {previous_end}"
                )
            )
        for d in result.damage:
            seg.problems.append(Problem(seg.name, base + d.position, d.length, d.problem))
        if result.tail is not None:
            t = result.tail
            seg.problems.append(Problem(seg.name, base + t.position, t.length, t.problem, active))
        if has_index and index is None:
            seg.problems.append(Problem(seg.name, base, 0, "index file is damaged or stale"))
        elif index is not None and list(index.positions) != list(result.positions):
            missing = set(index.positions) - set(result.positions)
            if not missing <= {d.position for d in result.damage} | _tail_positions(result):
                seg.problems.append(Problem(seg.name, base, 0, "index does not match the records"))
        report.segments.append(seg)
        previous_end = base + len(data)
        if on_segment is not None:
            on_segment(seg)
    try:
        registered_consumers(path)
    except CacheCorruptError as exc:
        report.consumer_problems.append(str(exc))
    return report


def _tail_positions(result) -> set[int]:
    return set() if result.tail is None else {result.tail.position}
