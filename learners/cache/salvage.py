"""Salvage: find the intact records of a segment whose LMDB structure is damaged, without LMDB.

A segment file that fails LMDB's structural check (a truncated file, a damaged branch page) is
never handed to LMDB, which could fault on it. Instead every page is read as plain bytes: leaf
pages (LMDB 0.9 layout: 16-byte page header, 2-byte node index, nodes of an 8-byte header, the
key and the value or an overflow page number) yield candidate records, and a candidate counts only
if its CRC-32C, which covers its offset, holds. Two different intact values for one offset (a page
left from an uncommitted transaction) make that offset a conflict: neither is returned.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from learners.cache.format import HEAD_SIZE, KEY, check_value

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

    records: dict[int, tuple[int, int]] = field(default_factory=dict)  # offset -> (position, size)
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


def scan(path: Path, base: int) -> Salvage:
    """Every intact record in the LMDB file at ``path`` with an offset of at least ``base``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Salvage()
    psize = page_size_of(data) or os.sysconf("SC_PAGE_SIZE")
    result = Salvage(page_size=psize, last_page=last_page(data, psize))
    crcs: dict[int, int] = {}
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
            _scan_leaf(data, at, psize, (lower - PAGE_HEADER) // 2, base, result, crcs)
        page += 1
    return result


def _scan_leaf(
    data: bytes, at: int, psize: int, count: int, base: int, result: Salvage, crcs: dict[int, int]
) -> None:
    end = at + psize
    for i in range(count):
        node = at + _U16.unpack_from(data, at + PAGE_HEADER + 2 * i)[0]
        if node + 8 + KEY.size > end:
            continue
        lo, hi, flags, key_size = _NODE.unpack_from(data, node)
        if key_size != KEY.size:
            continue
        key = data[node + 8 : node + 16]
        size = lo | hi << 16
        if flags & F_BIGDATA:
            if node + 24 > end:
                continue
            position = _U64.unpack_from(data, node + 16)[0] * psize + PAGE_HEADER
        else:
            position = node + 16
            if position + size > end:
                continue
        if size < HEAD_SIZE or position + size > len(data):
            continue
        checked = check_value(key, memoryview(data)[position : position + size])
        offset = KEY.unpack(key)[0]
        if isinstance(checked, str) or offset < base:
            continue
        crc = _U32.unpack_from(data, position + 1)[0]
        known = crcs.get(offset)
        if known is None:
            crcs[offset] = crc
            result.records[offset] = (position, size)
        elif known != crc:
            result.conflicts.add(offset)


def read_salvaged(fd: int, key: bytes, position: int, size: int) -> tuple[int, bytes] | str:
    """Read one salvaged record again from the file and check it."""
    return check_value(key, os.pread(fd, size, position))
