"""Compressed columns of transition batches: camera frames as one zstd frame per batch column.

Camera frames repeat themselves within a frame and from one frame to the next: a batch column of
consecutive rendered frames compresses several times over at zstd's fastest levels, so the spool,
the wire and the learner's cache each move a fraction of the bytes. (A real camera's sensor noise
takes some of that away; frames that would not shrink by a tenth are sent as they are.) Measured here on
150 consecutive 96x96 ``corner2`` frames of Meta-World (``bench.link``'s camera frames), one
thread: level -3 shrinks them 11.8x at 17.5 us a frame, -10 8.9x at 14.6 us, -20 7.3x at 12.4 us.
The link is bound by the actor's one batching thread once the disk is not the limit, so rill
takes -20 (``bench.link``: written behind, 0.68-0.75 of raw ZeroMQ at -10, 0.86-0.90 at -20).
Frames that do not compress (noise) are left as they are by the encoder (``batch.py``).
"""

from __future__ import annotations

import numpy as np

from learners.cache.errors import RecordDecodeError

COMPRESS = ("zstd",)
"""Codecs a batch encoder may be asked for (``None``: none)."""
ROW_BYTES = 4096  # rows of uint8 at least this large (camera frames) are compressed
LEVEL = -20  # zstd's fast levels run from -1 to -131072 (faster, smaller ratio); see above


def compress_rows(rows: list[np.ndarray]) -> bytes | None:
    """The rows, stacked, as one zstd frame that records its size (fed row by row: nothing is
    stacked first); None when it would not save a tenth (judged by the first two rows first, so
    noise costs two rows' try, not the batch's; two, because at the fastest levels much of what a
    frame shares is with the frame before it)."""
    import zstandard

    trial = rows[:2]
    head = b"".join(memoryview(row).cast("B") if row.flags.c_contiguous else row.tobytes() for row in trial)
    if len(zstandard.ZstdCompressor(level=LEVEL).compress(head)) > 0.9 * len(head):
        return None
    # The frame's own checksum (xxhash, 4 bytes) makes a damaged frame fail to decompress rather
    # than decompress to other pixels of the right size.
    compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
    stream = compressor.compressobj(size=rows[0].nbytes * len(rows))
    parts = [stream.compress(memoryview(row).cast("B") if row.flags.c_contiguous else row.tobytes())
             for row in rows]
    parts.append(stream.flush())
    packed = b"".join(parts)
    return packed if len(packed) <= 0.9 * rows[0].nbytes * len(rows) else None


class Scratch:
    """Buffers reused from one decode to the next, for batches decoded only to be checked (the
    learner's ingest): decompressing into memory already mapped costs half of decompressing into
    fresh memory. What a decode put in them is valid until the next decode given them."""

    def __init__(self) -> None:
        self._buffers: list[bytearray] = []
        self._used = 0

    def reset(self) -> None:
        """A new decode begins: the buffers may be reused."""
        self._used = 0

    def take(self, size: int) -> memoryview:
        """``size`` bytes not handed out since the last ``reset``."""
        if self._used == len(self._buffers):
            self._buffers.append(bytearray(size))
        elif len(self._buffers[self._used]) < size:
            self._buffers[self._used] = bytearray(size)
        self._used += 1
        return memoryview(self._buffers[self._used - 1])[:size]


def decompress(codec: str, packed: np.ndarray, raw: int, where: str,
               into: memoryview | None = None) -> bytes | memoryview:
    """The ``raw`` bytes that ``packed`` holds (written into ``into`` when given, ``raw`` bytes
    long); ``RecordDecodeError`` naming ``where`` if it holds anything else (it never makes the
    reader allocate more than ``raw``, which the caller bounds)."""
    import zstandard

    if codec not in COMPRESS:
        raise RecordDecodeError(f"{where}: unknown codec {codec!r} (this rill reads {list(COMPRESS)})")
    try:
        # A frame that records its size is decompressed into that much memory whatever
        # ``max_output_size`` says: the recorded size is checked first.
        size = zstandard.frame_content_size(packed)
        if size not in (-1, raw):
            raise RecordDecodeError(f"{where}: the compressed column holds {size} bytes, not the {raw} "
                                    "it says")
        if into is None:
            out = zstandard.ZstdDecompressor().decompress(packed, max_output_size=raw)
        else:
            out = into
            reader = zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=False)
            filled = 0
            while filled < raw:
                n = reader.readinto(out[filled:])
                if not n:
                    break
                filled += n
            if filled != raw:
                raise RecordDecodeError(f"{where}: the compressed column holds {filled} bytes, not the "
                                        f"{raw} it says")
            if reader.read(1):  # (reading on to the frame's end also checks its checksum)
                raise RecordDecodeError(f"{where}: the compressed column holds more than the {raw} bytes "
                                        "it says")
            return out
    except zstandard.ZstdError as exc:
        raise RecordDecodeError(f"{where}: the compressed column does not decompress ({exc})") from exc
    if len(out) != raw:
        raise RecordDecodeError(f"{where}: the compressed column holds {len(out)} bytes, not the {raw} "
                                "it says")
    return out
