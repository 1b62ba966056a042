"""The fast codec against the original one, kept here as the reference: same bytes, same verdicts.

``reference_*`` below is the codec as first written (msgpack ``default=`` callback, a new Packer
per call, a full walk for timestamps). The fast encoder must produce byte-identical records, and
the fast decoder must accept and reject exactly what the reference does.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
from collections import OrderedDict
from typing import Any

import msgpack
import numpy as np
import pytest

from learners.cache import RecordDecodeError
from learners.cache.codec import EncodeError, packb, unpackb
from learners.cache.records import SCHEMA_VERSION, decode_png, decode_transition, encode_transition
from learners.transition import Transition

# ------------------------------------------------------------------------------------- reference

_KINDS = frozenset("biufc")


class _RefDecodeError(ValueError):
    pass


def _ref_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _KINDS or obj.dtype.fields is not None:
            raise EncodeError(f"cannot encode numpy array of dtype {obj.dtype}")
        data = np.ascontiguousarray(obj).tobytes()
        return msgpack.ExtType(1, msgpack.packb([obj.dtype.str, list(obj.shape), data], use_bin_type=True))
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in _KINDS:
            raise EncodeError(f"cannot encode numpy scalar of dtype {obj.dtype}")
        return obj.item()
    raise EncodeError(f"cannot encode object of type {type(obj).__name__}")


def reference_packb(obj: Any) -> bytes:
    try:
        return msgpack.packb(obj, default=_ref_default, use_bin_type=True)
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode object: {exc}") from exc


def _ref_array(data: bytes) -> np.ndarray:
    try:
        parts = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise _RefDecodeError(f"malformed numpy array header: {exc}") from exc
    if not (isinstance(parts, list) and len(parts) == 3):
        raise _RefDecodeError("malformed numpy array")
    dtype_str, shape, raw = parts
    if not isinstance(dtype_str, str) or not isinstance(shape, list) or not isinstance(raw, bytes):
        raise _RefDecodeError("malformed numpy array")
    try:
        dtype = np.dtype(dtype_str)
    except Exception as exc:  # the original caught only TypeError/ValueError: a SyntaxError escaped
        raise _RefDecodeError("unknown dtype") from exc
    if dtype.kind not in _KINDS or dtype.fields is not None:
        raise _RefDecodeError("dtype not allowed")
    if len(shape) > 32 or not all(type(d) is int and d >= 0 for d in shape):
        raise _RefDecodeError("invalid shape")
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise _RefDecodeError("size mismatch")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _ref_hook(code: int, data: bytes) -> Any:
    if code == 1:
        return _ref_array(data)
    raise _RefDecodeError(f"unknown msgpack ext type {code}")


def reference_unpackb(data: bytes, max_size: int) -> Any:
    if len(data) > max_size:
        raise _RefDecodeError("too large")
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True, ext_hook=_ref_hook)
    except _RefDecodeError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise _RefDecodeError(f"malformed msgpack: {exc}") from exc
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, (msgpack.Timestamp, msgpack.ExtType)):
            raise _RefDecodeError("timestamp")
    return obj


def reference_encode(t: Transition) -> bytes:
    fields = {
        "action": t.action,
        "reward": float(t.reward),
        "terminated": bool(t.terminated),
        "truncated": bool(t.truncated),
        "policy_version": int(t.policy_version),
        "behavior_logp": float(t.behavior_logp),
        "next_action": t.next_action,
        "timestamp": float(t.timestamp),
        "extras": t.extras,
        "obs": t.obs,
        "next_obs": t.next_obs,
    }
    return reference_packb([SCHEMA_VERSION, t.actor_id, int(t.seq), int(t.episode), int(t.step), fields])


_FIELDS = {"obs", "action", "reward", "next_obs", "terminated", "truncated", "policy_version"}
_FIELDS |= {"behavior_logp", "next_action", "timestamp", "extras", "png"}


def reference_decode(payload: bytes, max_size: int) -> Transition:
    """The original ``decode_transition``: every check, in its order; raises on any problem."""
    doc = reference_unpackb(payload, max_size)
    if not isinstance(doc, list) or len(doc) != 6:
        raise _RefDecodeError("not 6 items")
    version = doc[0]
    if type(version) is not int or version < 1 or version > SCHEMA_VERSION:
        raise _RefDecodeError("version")
    actor_id, seq, episode, step = doc[1:5]
    if not isinstance(actor_id, str) or any(type(v) is not int for v in (seq, episode, step)):
        raise _RefDecodeError("head")
    fields = doc[5]
    if not isinstance(fields, dict):
        raise _RefDecodeError("fields")
    if set(fields) - _FIELDS or _FIELDS - {"png"} - set(fields):
        raise _RefDecodeError("field names")
    obs = {}
    for key in ("obs", "next_obs"):
        value = fields[key]
        if not isinstance(value, np.ndarray):
            if not isinstance(value, dict):
                raise _RefDecodeError("obs")
            for v in value.values():
                if not isinstance(v, (np.ndarray, str, int, float, bool)):
                    raise _RefDecodeError("obs value")
        obs[key] = value
    png = fields.get("png", {})
    if not isinstance(png, dict):
        raise _RefDecodeError("png")
    for key, images in png.items():
        if key not in obs or not isinstance(images, dict) or not isinstance(obs[key], dict):
            raise _RefDecodeError("png")
        for name, data in images.items():
            if not isinstance(data, bytes) or not name.startswith("image."):
                raise _RefDecodeError("png image")
            obs[key][name] = decode_png(data, "png")
    for name, kind in (("reward", float), ("behavior_logp", float), ("timestamp", float)):
        if type(fields[name]) is not kind:
            raise _RefDecodeError(name)
    for name, kind in (("terminated", bool), ("truncated", bool), ("policy_version", int)):
        if type(fields[name]) is not kind:
            raise _RefDecodeError(name)
    for name in ("action", "next_action"):
        value = fields[name]
        ok = isinstance(value, np.ndarray) or type(value) is int
        if not (ok or (name == "next_action" and value is None)):
            raise _RefDecodeError(name)
    if not isinstance(fields["extras"], dict):
        raise _RefDecodeError("extras")
    return Transition(
        obs["obs"], fields["action"], fields["reward"], obs["next_obs"], fields["terminated"],
        fields["truncated"], actor_id, seq, episode, step, fields["policy_version"],
        fields["behavior_logp"], fields["next_action"], fields["timestamp"], fields["extras"],
    )  # fmt: skip


# ------------------------------------------------------------------------------------- the cases


class Gripper(enum.IntEnum):
    OPEN = 0
    CLOSED = 1


def transitions() -> list[Transition]:
    rng = np.random.default_rng(3)
    f32 = lambda n: rng.standard_normal(n).astype(np.float32)  # noqa: E731
    image = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    base = dict(reward=0.5, terminated=False, truncated=False)
    return [
        Transition(f32(17), f32(6), next_obs=f32(17), actor_id="arm0", seq=1, **base),
        Transition(f32(17), 3, next_obs=f32(17), next_action=2, seq=2**40, episode=-1, **base),
        Transition(
            {"state": f32(7), "image.front": image, "instruction": "stack", "timestamp": 1.5},
            f32(4),
            np.float32(0.25),
            {"state": f32(7), "image.front": image[::-1], "instruction": "stack", "n": 3},
            np.bool_(True),
            False,
            actor_id="robot/ü",
            policy_version=np.int64(9),
            behavior_logp=np.float64(-2.0),
            next_action=f32(4),
            timestamp=np.float32(3.5),
            extras={
                "raw_reward": np.float64(1.0),
                "chunk": np.arange(12).reshape(3, 4)[:, ::2],  # non-contiguous
                "be": np.arange(3, dtype=">i4"),
                "flags": np.array([True, False]),
                "zero_d": np.array(5.0),
                "empty": np.zeros((0, 3), np.uint8),
                "complex": np.array([1 + 2j], np.complex64),
                "scalars": [np.int8(-3), np.uint16(7), np.bool_(False), np.float16(0.5)],
                "nested": {"t": (1, 2.0, None, b"\x00"), "od": OrderedDict(a=1), "enum": Gripper.CLOSED},
                "big": 2**63 - 1,
                "text": np.str_("np string"),
            },
        ),
        Transition(
            f32(3).astype(np.float64), f32(2), 0.0, f32(3).astype(np.float64), True, True, seq=7, **{}
        ),
    ]


@pytest.mark.parametrize("index", range(4))
def test_fast_encoder_is_byte_identical_to_the_reference(index: int) -> None:
    t = transitions()[index]
    expected = reference_encode(t)
    assert encode_transition(t) == expected
    assert packb(t.extras) == reference_packb(t.extras)
    assert packb([t.obs, t.action, t.next_obs]) == reference_packb([t.obs, t.action, t.next_obs])


def test_fast_encoder_matches_on_many_random_state_records() -> None:
    rng = np.random.default_rng(11)
    for i in range(300):
        dim = int(rng.integers(1, 64))
        t = Transition(
            rng.standard_normal(dim).astype(np.float32),
            rng.standard_normal(int(rng.integers(1, 8))).astype(np.float32),
            float(rng.standard_normal()),
            rng.standard_normal(dim).astype(np.float32),
            bool(rng.integers(2)),
            bool(rng.integers(2)),
            actor_id=f"actor-{i % 5}",
            seq=i,
            episode=int(rng.integers(0, 1000)),
            step=int(rng.integers(0, 1000)),
            policy_version=int(rng.integers(0, 10**6)),
            behavior_logp=float(rng.standard_normal()),
            timestamp=float(rng.uniform(0, 2e9)),
            extras={"raw_reward": float(rng.standard_normal())},
        )
        assert encode_transition(t) == reference_encode(t)


@pytest.mark.parametrize("bad", [np.array([object()]), {1, 2}, object(), np.datetime64(1, "s"), [1j]])
def test_both_encoders_refuse_the_same_values(bad: object) -> None:
    with pytest.raises(EncodeError):
        reference_packb({"x": bad})
    with pytest.raises(EncodeError):
        packb({"x": bad})


def _outcome(decode: Any, payload: bytes) -> tuple[str, Any]:
    try:
        t = decode(payload)
    except (RecordDecodeError, _RefDecodeError):
        return "rejected", None
    return "accepted", reference_packb([getattr(t, f.name) for f in dataclasses.fields(t)])


def _mutants(payload: bytes, rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        raw = bytearray(payload)
        for _ in range(rng.randint(1, 3)):
            how = rng.random()
            i = rng.randrange(len(raw))
            if how < 0.6:
                raw[i] = rng.randrange(256)
            elif how < 0.8:
                del raw[i : i + rng.randint(1, 4)]
            else:
                raw[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        out.append(bytes(raw))
    return out


def test_fast_decoder_accepts_and_rejects_exactly_what_the_reference_does() -> None:
    rng = random.Random(5)
    documents = [encode_transition(t) for t in transitions()]
    # Hand-made documents around each check, then thousands of byte-level mutants.
    doc = msgpack.unpackb(documents[0], raw=False)
    crafted = []
    for path, value in [
        ((0,), True), ((0,), 1.0), ((0,), 2), ((1,), b"arm"), ((3,), False),
        ((5, "reward"), 1), ((5, "terminated"), 0), ((5, "policy_version"), True),
        ((5, "png"), None), ((5, "png"), {}), ((5, "extras"), []), ((5, "next_action"), 1.5),
        ((5, "extras"), {"t": msgpack.Timestamp(1, 0)}), ((5, "obs"), {"x": None}),
        ((5, "obs"), {"x": [1]}), ((5, b"obs"), 1), ((5, "action"), True),
    ]:  # fmt: skip
        mutated = msgpack.unpackb(documents[0], raw=False)
        target = mutated
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        crafted.append(msgpack.packb(mutated, use_bin_type=True))
    assert doc[0] == SCHEMA_VERSION
    payloads = crafted + [m for d in documents for m in _mutants(d, rng, 1500)]
    verdicts = {"accepted": 0, "rejected": 0}
    for payload in payloads:
        expected = _outcome(lambda p: reference_decode(p, 1 << 20), payload)
        got = _outcome(lambda p: decode_transition(p, max_size=1 << 20), payload)
        assert got == expected, payload.hex()
        verdicts[got[0]] += 1
    assert verdicts["accepted"] > 100 and verdicts["rejected"] > 1000


def test_fast_unpackb_agrees_with_the_reference_on_mutants() -> None:
    rng = random.Random(6)
    document = packb({"a": np.arange(5, dtype=np.int16), "b": [1.5, "x", None], "t": b"\xd6\xff"})
    for payload in _mutants(document, rng, 3000):
        try:
            expected = ("ok", reference_packb(reference_unpackb(payload, 1 << 20)))
        except _RefDecodeError:
            expected = ("rejected", None)
        try:
            got = ("ok", reference_packb(unpackb(payload, max_size=1 << 20)))
        except ValueError:
            got = ("rejected", None)
        assert got == expected, payload.hex()
