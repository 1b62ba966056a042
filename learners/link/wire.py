"""The wire protocol between actors and the learner (docs/design.md), used by both ends.

A message is a ZeroMQ multipart message: frame 0 is a msgpack header ``{"v": PROTOCOL_VERSION,
"type": ..., fields...}``; a further frame carries bulk bytes, sent and received without copies:
a batch of consecutive transitions, column by column (the replay cache's own batch record, so
the learner checks it with whole-array operations and appends it unchanged), or a safetensors
weight payload. Decoding trusts nothing: an unknown type,
a wrong version, a missing or mistyped field, a frame over its limit or a count that does not
match raise :class:`WireError`, whose ``reason`` is a short label the server counts.
Never pickle; weights are safetensors with a digest (:func:`weights_digest`) and a version.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from crc32c import crc32c

from hal.errors import ConfigError

PROTOCOL_VERSION = 5
"""5: a batch may hold compressed camera-frame columns (batch version 2,
``learners.cache.compression``), which a learner of protocol 4 cannot read; 4: the
:func:`weights_digest` checksums each 4 MiB chunk with CRC-32C, and a TRANSITIONS message may say
``after`` (3: SHA-256 over the chunks, hashed in parallel; before that one SHA-256 of the whole
payload); 2: a TRANSITIONS message carries one batch record (``learners.cache.batch``); 1 carried
one frame per transition."""

HELLO = "hello"  # actor -> learner: actor id, specs, the last seq it holds
WELCOME = "welcome"  # learner -> actor: the last durable seq it holds of that actor, weights version
TRANSITIONS = "transitions"  # actor -> learner: transitions first_seq..last_seq, one batch frame
# (optional ``after``: the last seq before first_seq the actor still has; those between never come)
ACK = "ack"  # learner -> actor: every seq up to ``seq`` is durable at the learner
WEIGHTS_ANNOUNCE = "weights_announce"  # learner -> actor: version, digest, size
WEIGHTS_GET = "weights_get"  # actor -> learner: send me the newest weights
WEIGHTS = "weights"  # learner -> actor: frame 1 holds the safetensors bytes
HEARTBEAT = "heartbeat"  # both ways
ERROR = "error"  # learner -> actor: a rejected message, with the reason
BYE = "bye"  # actor -> learner: closing

_INT, _FLOAT, _STR, _BOOL, _DICT = (int,), (int, float), (str,), (bool,), (dict,)
# type -> {field: (accepted python types, required)}
SCHEMAS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    HELLO: {"actor_id": (_STR, True), "last_seq": (_INT, True), "spec": (_DICT, True),
            "policy_version": (_INT, False)},
    WELCOME: {"acked_seq": (_INT, True), "weights_version": (_INT, True), "learner_id": (_STR, True)},
    TRANSITIONS: {"actor_id": (_STR, True), "first_seq": (_INT, True), "last_seq": (_INT, True),
                  "after": (_INT, False)},
    ACK: {"actor_id": (_STR, True), "seq": (_INT, True), "applied_seq": (_INT, False)},
    WEIGHTS_ANNOUNCE: {"version": (_INT, True), "digest": (_STR, True), "nbytes": (_INT, True)},
    WEIGHTS_GET: {"actor_id": (_STR, True)},
    WEIGHTS: {"version": (_INT, True), "digest": (_STR, True)},
    HEARTBEAT: {"time": (_FLOAT, True), "actor_id": (_STR, False)},
    ERROR: {"reason": (_STR, True), "detail": (_STR, True)},
    BYE: {"actor_id": (_STR, True)},
}
# How many bulk frames follow the header: exact count, or None for "as the header says".
_FRAMES = {TRANSITIONS: 1, WEIGHTS: 1}


def check_actor_id(actor_id: str, where: str = "actor_id") -> None:
    """An actor id names the actor on the wire and a directory on disk: 1-200 bytes, no '/'."""
    if not isinstance(actor_id, str) or not actor_id or "/" in actor_id or len(actor_id.encode()) > 200:
        raise ConfigError(f"{where} {actor_id!r}: 1-200 bytes, no '/'")


class WireError(ValueError):
    """A message that breaks the protocol; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class WireLimits:
    """Sizes beyond which a message is rejected before it is decoded."""

    max_header_bytes: int = 64 * 1024
    max_record_bytes: int = 16 * 1024 * 1024  # one batch of transitions
    max_records: int = 4096  # transitions in one batch
    max_weights_bytes: int = 2 * 1024**3

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "max_record_bytes", "max_records", "max_weights_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"WireLimits.{name} must be a positive integer, got {value!r}")

    @property
    def max_message_bytes(self) -> int:
        """A transport-level cap for ZMQ_MAXMSGSIZE (per frame)."""
        return max(self.max_header_bytes, self.max_record_bytes, self.max_weights_bytes)


@dataclass
class Message:
    type: str
    fields: dict[str, Any]
    frames: list[Any] = field(default_factory=list)  # zmq.Frame or bytes; use memoryview(f)


_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


def encode(kind: str, fields: dict[str, Any], frames: Sequence[Any] = ()) -> list[Any]:
    """The frames of a message: its header, then ``frames`` unchanged (zero-copy)."""
    if kind not in SCHEMAS:
        raise ValueError(f"unknown message type {kind!r}")
    header = {"v": PROTOCOL_VERSION, "type": kind, **fields}
    return [_packer.pack(header), *frames]


def _buffer_len(frame: Any) -> int:
    return len(frame.buffer) if hasattr(frame, "buffer") else len(frame)


def _bytes(frame: Any) -> bytes | memoryview:
    return frame.buffer if hasattr(frame, "buffer") else frame


def decode(frames: Sequence[Any], limits: WireLimits) -> Message:
    """Parse and validate one multipart message (``zmq.Frame`` objects or bytes)."""
    if not frames:
        raise WireError("empty", "message has no frames")
    head = frames[0]
    if _buffer_len(head) > limits.max_header_bytes:
        raise WireError("oversized", f"header of {_buffer_len(head)} bytes exceeds {limits.max_header_bytes}")
    try:
        header = msgpack.unpackb(_bytes(head), raw=False, strict_map_key=True, use_list=True,
                                 max_bin_len=0, max_ext_len=0)
    except Exception as e:
        raise WireError("malformed", f"header is not valid msgpack ({type(e).__name__}: {e})") from e
    if not isinstance(header, dict):
        raise WireError("malformed", f"header must be a map, got {type(header).__name__}")
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise WireError("bad_version", f"protocol version {version!r}; this end speaks {PROTOCOL_VERSION}")
    kind = header.get("type")
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise WireError("unknown_type", f"message type {kind!r}")
    fields = {}
    for name, (types, required) in schema.items():
        if name not in header:
            if required:
                raise WireError("bad_field", f"{kind}: missing field {name!r}")
            continue
        value = header[name]
        if not isinstance(value, types) or (types != _BOOL and isinstance(value, bool)):
            raise WireError("bad_field", f"{kind}.{name}: expected {'/'.join(t.__name__ for t in types)}, "
                                         f"got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise WireError("bad_field", f"{kind}.{name}: not finite")
        fields[name] = value
    bulk = list(frames[1:])
    _check_frames(kind, fields, bulk, limits)
    return Message(kind, fields, bulk)


def _check_frames(kind: str, fields: dict[str, Any], bulk: list[Any], limits: WireLimits) -> None:
    expected = _FRAMES.get(kind, 0)
    if kind == TRANSITIONS:
        first, last = fields["first_seq"], fields["last_seq"]
        count = last - first + 1
        if first < 1 or count < 1:
            raise WireError("bad_field", f"transitions: bad sequence range {first}..{last}")
        after = fields.get("after")
        if after is not None and not 0 <= after < first:
            raise WireError("bad_field",
                            f"transitions {first}..{last}: after={after} must be below first_seq")
        if count > limits.max_records:
            raise WireError("oversized", f"transitions: {count} records exceed {limits.max_records}")
        cap = limits.max_record_bytes
    elif kind == WEIGHTS:
        cap = limits.max_weights_bytes
    else:
        cap = 0
    if len(bulk) != expected:
        raise WireError("bad_frames", f"{kind}: {len(bulk)} bulk frames, expected {expected}")
    for i, frame in enumerate(bulk):
        n = _buffer_len(frame)
        if n > cap:
            raise WireError("oversized", f"{kind}: frame {i + 1} of {n} bytes exceeds {cap}")


# -- weights -------------------------------------------------------------------------------------
DIGEST_CHUNK = 4 << 20


def weights_digest(payload: Any) -> str:
    """The checksum weights travel with: SHA-256 of (the payload's length, then the CRC-32C of each
    4 MiB chunk in order). A chunk's CRC-32C (hardware-accelerated: about 2 ms for 40 MB here,
    against 17-34 ms for SHA-256 over the chunks, which protocol 3 used) catches any damage to it
    but one in 2**32; the link's integrity against tampering is CurveZMQ's, not this checksum's."""
    view = memoryview(payload).cast("B")
    crcs = b"".join(crc32c(view[i : i + DIGEST_CHUNK]).to_bytes(4, "little")
                    for i in range(0, len(view), DIGEST_CHUNK))
    return hashlib.sha256(len(view).to_bytes(8, "little") + crcs).hexdigest()


def pack_weights(state: dict[str, Any], version: int) -> tuple[dict[str, Any], bytes]:
    """``(fields, blob)`` of a WEIGHTS message: safetensors bytes, their digest, the version.

    The blob is a snapshot: the tensors are copied into it, so ``state`` may change afterwards."""
    from learners.link.tensors import encode

    blob = encode(state, metadata={"rill_weights_version": str(version)})
    return {"version": int(version), "digest": weights_digest(blob)}, blob


def unpack_weights(msg: Message, expected_keys: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Verify and load a WEIGHTS message; ``expected_keys`` (name -> shape) must match exactly.

    The tensors are read-only views of the received frame (no copy): whoever applies them copies
    them into its own parameters (``load_state_dict`` does)."""
    from learners.link.tensors import TensorsFormatError, decode

    frame = _bytes(msg.frames[0])
    if weights_digest(frame) != msg.fields["digest"]:
        raise WireError("bad_checksum", f"weights v{msg.fields['version']}: digest mismatch (damaged or "
                                        "truncated in transit)")
    try:
        state, _ = decode(frame)
    except (TensorsFormatError, ValueError, TypeError, RuntimeError, RecursionError) as e:
        # (decode names what it finds; the rest is a net: a frame never takes the link down)
        raise WireError("malformed", f"weights v{msg.fields['version']}: not safetensors ({e})") from e
    if expected_keys is not None:
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != expected_keys:
            missing = sorted(set(expected_keys) - set(got))
            wrong = sorted(k for k in set(got) & set(expected_keys) if got[k] != expected_keys[k])
            extra = sorted(set(got) - set(expected_keys))
            raise WireError("bad_shape", f"weights v{msg.fields['version']}: missing {missing}, "
                                         f"wrong shape {wrong}, unexpected {extra}")
    return state


def nonfinite_weights(state: dict[str, Any]) -> list[str]:
    """The entries of ``state`` (name -> tensor) holding a NaN or an infinity, each as
    ``"name (k of n values)"``, in order; empty when every value is finite."""
    import torch  # (not at import: ``import learners`` stays free of torch)

    from learners.link.tensors import all_finite

    bad = []
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or all_finite(value):
            continue
        finite = torch.isfinite(value)
        bad.append(f"{name} ({int((~finite).sum())} of {value.numel()} values)")
    return bad


def name_some(entries: list[str], at_most: int = 4) -> str:
    """``entries`` for a log line: the first ``at_most``, then how many more."""
    more = len(entries) - at_most
    return ", ".join(entries[:at_most]) + (f" and {more} more" if more > 0 else "")
