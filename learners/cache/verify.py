"""``verify``: check every segment and every record checksum without changing anything.

Per segment: the file is trusted by its recorded digest (``SEALED``/``CLOSED``) or checked by
LMDB's offline structural verifier; a structurally sound segment is read through LMDB and every
record's CRC-32C is checked, and missing offsets are listed; a damaged one is salvaged (read
without LMDB) and what was lost is listed. Problems name the segment and the offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import lmdb

from learners.cache import envs, trust
from learners.cache.consumer import registered_consumers
from learners.cache.errors import CacheCorruptError, CacheFormatError
from learners.cache.files import (
    CLOSED_MARKER,
    SEALED_MARKER,
    SEGMENT_MARKER,
    check_meta,
    parse_segment_name,
    read_marker,
    segment_name,
    writer_alive,
)
from learners.cache.format import KEY_SIZE, SEGMENT_FORMAT_VERSION, offset_of, record_problem
from learners.cache.salvage import scan
from learners.cache.segment import Segment


@dataclass
class Problem:
    """One damaged place: the segment, the first offset concerned, and what is wrong."""

    segment: str
    offset: int
    problem: str
    count: int = 1  # records concerned (a range of lost records counts them all)


@dataclass
class SegmentReport:
    name: str
    base: int
    end: int
    bytes: int
    records: int  # intact records found
    check: str  # how the file was trusted: "digest", "lmdb.verify", "live", "salvaged"
    sealed: bool
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
        return not self.consumer_problems and not self.problems


def verify_cache(path: str | Path, on_segment: Callable[[SegmentReport], None] | None = None) -> VerifyReport:
    """Check every segment and record of the cache at ``path``; modify nothing."""
    path = Path(path)
    check_meta(path)
    report = VerifyReport(path)
    bases = sorted(b for b in (parse_segment_name(p.name) for p in path.iterdir()) if b is not None)
    markers = {b: read_marker(path / segment_name(b) / SEGMENT_MARKER) for b in bases}
    for base, marker in markers.items():
        version = None if marker is None else marker.get("format_version")
        if type(version) is int and version > SEGMENT_FORMAT_VERSION:
            raise CacheFormatError(
                f"segment {segment_name(base)}: segment format version {version} is newer than this "
                f"rill supports ({SEGMENT_FORMAT_VERSION})"
            )
    alive = writer_alive(path)
    previous_end: int | None = None
    previous_damaged = False
    for i, base in enumerate(bases):
        last = i == len(bases) - 1
        sealed = read_marker(path / segment_name(base) / SEALED_MARKER)
        end = sealed["end"] if sealed else bases[i + 1] if not last else None
        is_sealed = sealed is not None or not last
        seg = _verify_segment(path / segment_name(base), base, end, is_sealed, alive)
        if markers[base] is None:
            seg.problems.insert(0, Problem(seg.name, base, "SEGMENT marker missing or damaged"))
        expected_gap = previous_damaged and previous_end is not None and base > previous_end
        if previous_end is not None and base != previous_end and not expected_gap:
            seg.problems.insert(
                0, Problem(seg.name, previous_end, f"offsets {previous_end}..{base - 1} are in no segment")
            )
        previous_end = seg.end
        previous_damaged = seg.check == "salvaged" or bool(sealed and sealed.get("damaged"))
        report.segments.append(seg)
        if on_segment is not None:
            on_segment(seg)
    try:
        registered_consumers(path)
    except CacheCorruptError as exc:
        report.consumer_problems.append(str(exc))
    return report


def _verify_segment(
    path: Path, base: int, end: int | None, sealed: bool, writer_alive: bool
) -> SegmentReport:
    segment = Segment(path, base, base if end is None else end, sealed=sealed)
    live = writer_alive and not sealed
    if end is None and not live:  # the last segment: it held at least what it held when closed
        end = trust.closed_end(segment)
    if not sealed and not live and trust.never_committed(segment):  # LMDB was killed creating it
        return SegmentReport(segment.name, base, base, segment.size(), 0, "never committed", sealed)
    check = "live" if live else "digest"
    problem = None
    if not live and not trust.matches_marker(segment, SEALED_MARKER if sealed else CLOSED_MARKER):
        check = "lmdb.verify"
        problem = trust.structure_problem(segment)
    report = SegmentReport(segment.name, base, segment.end, segment.size(), 0, check, sealed)
    if problem is not None:
        _report_salvage(segment, problem, end, report)
    else:
        _read_all(segment, end, live, report)
    return report


def _read_all(segment: Segment, end: int | None, live: bool, report: SegmentReport) -> None:
    """Read every record through LMDB, checking checksums and that offsets are dense."""
    key_env, env = envs.acquire(segment.path, writable=False, lock=live, subdir=True, max_dbs=0)
    expected = segment.base
    try:
        with env.begin(buffers=True) as txn:
            for key, value in txn.cursor():
                if len(key) != KEY_SIZE:
                    report.problems.append(Problem(segment.name, expected, f"foreign key {bytes(key)!r}"))
                    continue
                offset = offset_of(key)
                if offset > expected:
                    _missing(report, segment.name, expected, offset)
                problem = record_problem(key, value, segment.blob_payload)
                if problem is not None:
                    report.problems.append(Problem(segment.name, offset, problem))
                else:
                    report.records += 1
                expected = max(expected, offset + 1)
    except lmdb.Error as exc:
        report.problems.append(Problem(segment.name, expected, f"LMDB error while reading: {exc}"))
    finally:
        envs.release(key_env)
        segment.release()  # (its blob file, if it read one)
    if end is not None and expected < end:
        _missing(report, segment.name, expected, end)
    report.end = max(expected, end or 0)


def _report_salvage(segment: Segment, problem: str, end: int | None, report: SegmentReport) -> None:
    found = scan(segment.data_path, segment.base, segment.blob_payload)
    segment.release()
    report.check = "salvaged"
    good = sorted(set(found.records) - found.conflicts)
    report.records = len(good)
    damaged = f"LMDB structure damaged ({problem}); {len(good)} intact record(s) salvaged"
    report.problems.append(Problem(segment.name, segment.base, damaged))
    stop = max(end or 0, (max(found.records) + 1) if found.records else segment.base)
    for offset in sorted(found.conflicts):
        report.problems.append(Problem(segment.name, offset, "two different intact copies"))
    expected = segment.base
    for offset in _with_sentinel(sorted(found.records), stop):
        if offset > expected:
            _missing(report, segment.name, expected, offset, "lost")
        expected = offset + 1
    report.end = stop


def _with_sentinel(offsets: Iterable[int], stop: int) -> Iterable[int]:
    yield from offsets
    yield stop


def _missing(report: SegmentReport, name: str, first: int, stop: int, what: str = "missing") -> None:
    span = f"record at offset {first}" if stop == first + 1 else f"records at offsets {first}..{stop - 1}"
    report.problems.append(Problem(name, first, f"{span} {what}", stop - first))
