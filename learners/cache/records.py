"""Transition records: a :class:`Transition` as msgpack, with its schema version.

A record is the msgpack array ``[schema_version, actor_id, seq, episode, step, fields]``. The
identifying head comes first so that filtering by actor or episode decodes five small items and
skips the rest. Images (``image.<camera>`` uint8 HxWx3 arrays in observation dicts) are stored
raw, or as PNG under ``fields["png"]`` when the cache's ``image_codec`` is ``png``.
"""

from __future__ import annotations

import io
from typing import Any

import msgpack
import numpy as np

from learners.cache.codec import (
    DecodeError,
    EncodeError,
    may_hold_timestamp,
    pack_plain,
    packer,
    plain,
    reject_foreign,
    unpack_unchecked,
)
from learners.cache.errors import RecordDecodeError, SchemaVersionError
from learners.transition import Transition

SCHEMA_VERSION = 1
IMAGE_PREFIX = "image."
_OBS_KEYS = ("obs", "next_obs")
_FIELDS = {
    "obs",
    "action",
    "reward",
    "next_obs",
    "terminated",
    "truncated",
    "policy_version",
    "behavior_logp",
    "next_action",
    "timestamp",
    "extras",
    "png",
}
_FIELDS_WITHOUT_PNG = _FIELDS - {"png"}
_NO_PNG = object()
_OBS_VALUE_TYPES = frozenset({np.ndarray, str, int, float, bool})  # what msgpack decodes to


def is_image(key: str, value: Any) -> bool:
    return (
        key.startswith(IMAGE_PREFIX)
        and isinstance(value, np.ndarray)
        and value.dtype == np.uint8
        and value.ndim == 3
        and value.shape[2] == 3
    )


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    from PIL import Image  # optional dependency, only for the png codec and export

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(
        out, format="PNG", compress_level=level
    )
    return out.getvalue()


def decode_png(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if image.mode != "RGB":
                raise RecordDecodeError(f"{where}: PNG image mode {image.mode}, expected RGB")
            return np.asarray(image).copy()
    except RecordDecodeError:
        raise
    except Exception as exc:
        raise RecordDecodeError(f"{where}: unreadable PNG image ({exc})") from exc


def encode_transition(t: Transition, *, image_codec: str = "raw", png_level: int = 1) -> bytes:
    """The record bytes of ``t``. Raises ``EncodeError`` for values msgpack cannot hold.

    Arrays become ext types here and one reused packer packs the result (see ``learners.cache.codec``):
    a few microseconds per state-sized record, byte-identical to ``codec.packb`` of the record.
    """
    if not isinstance(t.actor_id, str):
        raise EncodeError(f"Transition.actor_id must be a str, got {type(t.actor_id).__name__}")
    pack = packer().pack
    try:
        # Key order is part of the format: the bytes must not change.
        fields: dict[str, Any] = {
            "action": plain(t.action, pack),
            "reward": float(t.reward),
            "terminated": bool(t.terminated),
            "truncated": bool(t.truncated),
            "policy_version": int(t.policy_version),
            "behavior_logp": float(t.behavior_logp),
            "next_action": plain(t.next_action, pack),
            "timestamp": float(t.timestamp),
            "extras": plain(t.extras, pack),
        }
        png: dict[str, dict[str, bytes]] = {}
        for key in _OBS_KEYS:
            obs = getattr(t, key)
            if image_codec == "png" and isinstance(obs, dict):
                images = {k: encode_png(v, png_level) for k, v in obs.items() if is_image(k, v)}
                if images:
                    png[key] = images
                    obs = {k: v for k, v in obs.items() if k not in images}
            fields[key] = plain(obs, pack)
        if png:
            fields["png"] = png
        head = [SCHEMA_VERSION, t.actor_id, int(t.seq), int(t.episode), int(t.step), fields]
    except RecursionError as exc:
        raise EncodeError(f"cannot encode object: {exc}") from exc
    return pack_plain(head)


def record_head(payload: bytes, where: str = "record") -> tuple[str, int, int, int]:
    """``(actor_id, seq, episode, step)`` of a record, decoding only its head."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(payload) or 1)
    unpacker.feed(payload)
    try:
        if unpacker.read_array_header() != 6:
            raise RecordDecodeError(f"{where}: not a transition record (expected 6 items)")
        version = unpacker.unpack()
        _check_version(version, where)
        head = (unpacker.unpack(), unpacker.unpack(), unpacker.unpack(), unpacker.unpack())
    except RecordDecodeError:
        raise
    except Exception as exc:
        raise RecordDecodeError(f"{where}: malformed record head ({exc})") from exc
    _check_head(head, where)
    return head


def _check_version(version: Any, where: str) -> None:
    if type(version) is not int or version < 1:
        raise RecordDecodeError(f"{where}: invalid schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: record schema version {version} is newer than this rill supports "
            f"({SCHEMA_VERSION}); upgrade rill to read it"
        )


def _check_head(head: tuple, where: str) -> None:
    actor_id, seq, episode, step = head
    if not isinstance(actor_id, str):
        raise RecordDecodeError(f"{where}: actor_id must be a str, got {type(actor_id).__name__}")
    for name, value in (("seq", seq), ("episode", episode), ("step", step)):
        if type(value) is not int:
            raise RecordDecodeError(f"{where}: {name} must be an int, got {value!r}")


def decode_transition(payload: bytes, *, max_size: int, where: str = "record") -> Transition:
    """The :class:`Transition` in ``payload``; :class:`RecordDecodeError` if it is malformed."""
    try:
        doc = unpack_unchecked(payload, max_size=max_size)
        if may_hold_timestamp(payload):
            reject_foreign(doc)
    except DecodeError as exc:
        raise RecordDecodeError(f"{where}: {exc}") from exc
    if type(doc) is not list or len(doc) != 6:
        raise RecordDecodeError(f"{where}: not a transition record (expected a 6-item array)")
    version, actor_id, seq, episode, step, fields = doc
    if version != SCHEMA_VERSION or type(version) is not int:
        _check_version(version, where)
    if type(actor_id) is not str or type(seq) is not int or type(episode) is not int or (
        type(step) is not int
    ):
        _check_head((actor_id, seq, episode, step), where)
    if type(fields) is not dict:
        raise RecordDecodeError(f"{where}: transition fields must be a map")
    keys = fields.keys()
    if keys != _FIELDS_WITHOUT_PNG and keys != _FIELDS:
        unknown = sorted(set(keys) - _FIELDS, key=repr)  # keys may be bytes as well as str
        missing = sorted(_FIELDS_WITHOUT_PNG - set(keys))
        raise RecordDecodeError(f"{where}: unexpected fields {unknown} / missing fields {missing}")
    obs = _check_obs(fields["obs"], where, "obs")
    next_obs = _check_obs(fields["next_obs"], where, "next_obs")
    png = fields.get("png", _NO_PNG)
    if png is not _NO_PNG:
        _decode_png_fields(png, {"obs": obs, "next_obs": next_obs}, where)
    reward = fields["reward"]
    behavior_logp = fields["behavior_logp"]
    timestamp = fields["timestamp"]
    terminated = fields["terminated"]
    truncated = fields["truncated"]
    policy_version = fields["policy_version"]
    if (
        type(reward) is not float
        or type(behavior_logp) is not float
        or type(timestamp) is not float
        or type(terminated) is not bool
        or type(truncated) is not bool
        or type(policy_version) is not int
    ):
        _check_scalars(fields, where)
    action = fields["action"]
    next_action = fields["next_action"]
    if not (type(action) is np.ndarray or type(action) is int) or not (
        next_action is None or type(next_action) is np.ndarray or type(next_action) is int
    ):
        _check_actions(fields, where)
    extras = fields["extras"]
    if type(extras) is not dict:
        raise RecordDecodeError(f"{where}: extras must be a map")
    return Transition(
        obs,
        action,
        reward,
        next_obs,
        terminated,
        truncated,
        actor_id,
        seq,
        episode,
        step,
        policy_version,
        behavior_logp,
        next_action,
        timestamp,
        extras,
    )


def _decode_png_fields(png: Any, obs: dict[str, Any], where: str) -> None:
    if not isinstance(png, dict):
        raise RecordDecodeError(f"{where}: png must be a map")
    for key, images in png.items():
        if key not in _OBS_KEYS or not isinstance(images, dict) or not isinstance(obs[key], dict):
            raise RecordDecodeError(f"{where}: png images for {key!r} do not fit the observation")
        for name, data in images.items():
            if not isinstance(data, bytes) or not name.startswith(IMAGE_PREFIX):
                raise RecordDecodeError(f"{where}: png image {key}.{name} is malformed")
            obs[key][name] = decode_png(data, f"{where}: {key}.{name}")


def _check_scalars(fields: dict[str, Any], where: str) -> None:
    for name, kind in (
        ("reward", float),
        ("behavior_logp", float),
        ("timestamp", float),
        ("terminated", bool),
        ("truncated", bool),
        ("policy_version", int),
    ):
        if type(fields[name]) is not kind:
            raise RecordDecodeError(
                f"{where}: {name} must be {kind.__name__}, got {fields[name]!r}"
            )


def _check_actions(fields: dict[str, Any], where: str) -> None:
    for name in ("action", "next_action"):
        value = fields[name]
        if not (
            isinstance(value, np.ndarray)
            or type(value) is int
            or (name == "next_action" and value is None)
        ):
            raise RecordDecodeError(
                f"{where}: {name} must be an array or int, got {type(value).__name__}"
            )


def _check_obs(obs: Any, where: str, name: str) -> np.ndarray | dict[str, Any]:
    if type(obs) is np.ndarray:
        return obs
    if type(obs) is not dict:
        raise RecordDecodeError(
            f"{where}: {name}: must be an array or a map, got {type(obs).__name__}"
        )
    for key, value in obs.items():
        if type(value) not in _OBS_VALUE_TYPES:
            raise RecordDecodeError(f"{where}: {name}[{key!r}]: unexpected {type(value).__name__}")
    return obs


def transition_nbytes(t: Transition) -> int:
    """Rough memory held by a decoded transition, for the bounded decode cache."""
    total = 512
    for value in (t.obs, t.next_obs, t.action, t.next_action):
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, dict):
            total += sum(v.nbytes if isinstance(v, np.ndarray) else 64 for v in value.values())
    return total + 64 * len(t.extras)


__all__ = [
    "SCHEMA_VERSION",
    "decode_png",
    "decode_transition",
    "encode_png",
    "encode_transition",
    "record_head",
]
