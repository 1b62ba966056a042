"""Compressed columns of transition batches: camera frames as one zstd frame per batch column.

Camera frames repeat themselves within a frame and from one frame to the next: a batch column of
consecutive rendered frames compresses several times over at zstd's fastest levels, so the spool,
the wire and the learner's cache each move a fraction of the bytes. (A real camera's sensor noise
takes some of that away; frames that would not shrink by a tenth are sent as they are.) Measured here on
150 consecutive 96x96 ``corner2`` frames of Meta-World (``bench.link``'s camera frames), one
thread: level -3 shrinks them 11.8x at 17.5 us a frame, -10 8.9x at 14.6 us, -20 7.3x at 12.4 us.
The link is bound by the actor's one batching thread once the disk is not the limit, so rill
takes -20 (interleaved ``bench.link`` runs: 0.68-0.75 of raw ZeroMQ at -10, 0.73-0.90 at -20).
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


def decompress(codec: str, packed: np.ndarray, raw: int, where: str) -> bytes:
    """The ``raw`` bytes that ``packed`` holds; ``RecordDecodeError`` naming ``where`` if it holds
    anything else. Before anything is decompressed, the frame must say it holds exactly ``raw``
    bytes (which the caller bounds: a frame that says more would be decompressed into that much
    memory) and carry its checksum; then it must decompress to exactly that, checksum verified,
    with nothing after it."""
    import zstandard

    if codec not in COMPRESS:
        raise RecordDecodeError(f"{where}: unknown codec {codec!r} (this rill reads {list(COMPRESS)})")
    try:
        frame = zstandard.get_frame_parameters(packed)
        if frame.content_size != raw:
            said = "no size" if frame.content_size == zstandard.CONTENTSIZE_UNKNOWN else frame.content_size
            raise RecordDecodeError(f"{where}: the compressed column's frame says it holds {said}, not the "
                                    f"{raw} bytes the rows need")
        if not frame.has_checksum:
            raise RecordDecodeError(f"{where}: the compressed column's frame carries no checksum")
        out = zstandard.ZstdDecompressor().decompress(packed, max_output_size=raw, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise RecordDecodeError(f"{where}: the compressed column does not decompress ({exc})") from exc
    if len(out) != raw:
        raise RecordDecodeError(f"{where}: the compressed column holds {len(out)} bytes, not the {raw} "
                                "it says")
    return out
