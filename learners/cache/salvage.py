"""Salvage: find the intact records of a segment whose LMDB structure is damaged, without LMDB.

A segment file that fails LMDB's structural check (a truncated file, a damaged branch page) is
never handed to LMDB, which could fault on it. Instead every page is read as plain bytes: leaf
pages (LMDB 0.9 layout: 16-byte page header, 2-byte node index, nodes of an 8-byte header, the
13-byte key and the value or an overflow page number) yield candidate records, and a candidate
counts only if the CRC-32C in its key, which covers its offset, holds. Two different intact
records for one offset (a page left from an uncommitted transaction) make that offset a conflict:
neither is returned.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from learners.cache.format import KEY_SIZE, check_record

MDB_MAGIC = 0xBEEFC0DE
PAGE_HEADER = 16
P_BRANCH, P_LEAF, P_OVERFLOW, P_META = 0x01, 0x02, 0x04, 0x08
F_BIGDATA = 0x01
_META = struct.Struct("<IIQQI")  # magic, version, address, map size, psize (free DB's md_pad)
_LAST_PAGE = struct.Struct("<Q")  # mm_last_pg, after the two 48-byte DB records
_PAGE = struct.Struct("<QHHHH")  # pgno, pad, flags, lower, upper
_NODE = struct.Struct("<HHHH")  # data size lo, hi, flags, key size
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass
class Salvage:
    """What a scan of a segment file found."""

    records: dict[int, tuple[bytes, int, int]] = field(default_factory=dict)  # offset -> key, at, size
    conflicts: set[int] = field(default_factory=set)
    page_size: int = 4096
    last_page: int = 0  # the highest page either meta page claims (0 if none is readable)


def page_size_of(head: bytes) -> int | None:
    """The page size recorded in meta page 0, or None if it does not look like LMDB's."""
    if len(head) < PAGE_HEADER + _META.size:
        return None
    magic, _version, _address, _map_size, psize = _META.unpack_from(head, PAGE_HEADER)
    if magic != MDB_MAGIC or psize < 512 or psize > 65536 or psize & (psize - 1):
        return None
    return psize


def last_page(data: bytes, psize: int) -> int:
    """The highest page number either meta page of ``data`` (the file's start) claims, or 0."""
    last = 0
    for page in (0, 1):
        at = page * psize
        if len(data) >= at + PAGE_HEADER + 136 and _U32.unpack_from(data, at + PAGE_HEADER)[0] == MDB_MAGIC:
            last = max(last, _LAST_PAGE.unpack_from(data, at + PAGE_HEADER + 120)[0])
    return last


def scan(path: Path, base: int, blobs=None) -> Salvage:
    """Every intact record in the LMDB file at ``path`` with an offset of at least ``base`` (an
    external record's payload read through ``blobs`` to check it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Salvage()
    psize = page_size_of(data) or os.sysconf("SC_PAGE_SIZE")
    result = Salvage(page_size=psize, last_page=last_page(data, psize))
    keys: dict[int, bytes] = {}
    pages = len(data) // psize
    page = 2  # pages 0 and 1 are the meta pages
    while page < pages:
        at = page * psize
        _pgno, _pad, flags, lower, upper = _PAGE.unpack_from(data, at)
        if flags == P_OVERFLOW:  # skip the extent: its pages are raw value bytes
            count = _U32.unpack_from(data, at + 12)[0]
            page += count if 0 < count <= pages - page else 1
            continue
        if flags == P_LEAF and PAGE_HEADER <= lower <= upper <= psize:
            _scan_leaf(data, at, psize, (lower - PAGE_HEADER) // 2, base, result, keys, blobs)
        page += 1
    return result


def _scan_leaf(
    data: bytes, at: int, psize: int, count: int, base: int, result: Salvage, keys: dict[int, bytes],
    blobs=None,
) -> None:
    end = at + psize
    view = memoryview(data)
    for i in range(count):
        node = at + _U16.unpack_from(data, at + PAGE_HEADER + 2 * i)[0]
        if node + 8 + KEY_SIZE > end:
            continue
        lo, hi, flags, key_size = _NODE.unpack_from(data, node)
        if key_size != KEY_SIZE:
            continue
        key = data[node + 8 : node + 8 + KEY_SIZE]
        size = lo | hi << 16
        if flags & F_BIGDATA:
            if node + 8 + KEY_SIZE + 8 > end:
                continue
            position = _U64.unpack_from(data, node + 8 + KEY_SIZE)[0] * psize + PAGE_HEADER
        else:
            position = node + 8 + KEY_SIZE
            if position + size > end:
                continue
        if position + size > len(data):
            continue
        checked = check_record(key, view[position : position + size], blobs)
        if isinstance(checked, str) or checked[0] < base:
            continue
        offset = checked[0]
        known = keys.get(offset)
        if known is None:
            keys[offset] = key
            result.records[offset] = (key, position, size)
        elif known != key:
            result.conflicts.add(offset)


def read_salvaged(fd: int, key: bytes, position: int, size: int, *, blobs=None) -> tuple[int, bytes] | str:
    """Read one salvaged record again from the file and check it (an external one's payload
    through ``blobs``)."""
    checked = check_record(key, os.pread(fd, size, position), blobs)
    return checked if isinstance(checked, str) else (checked[1], checked[2])
