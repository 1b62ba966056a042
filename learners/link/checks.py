"""What the learner accepts from an actor: a transition batch checked against the learner's spec.

Observations are a float32[obs_dim] vector, or a dict holding one under ``state`` (what the
learner learns from) plus optional ``image.<camera>`` uint8 HxWx3 frames (kept in the cache for
reuse, never fed to the stream-x heads); actions are float32[action_dim] (continuous) or an int
in [0, n_actions) (discrete); observations, actions and rewards are finite and no larger than
``config.max_abs_value`` in magnitude (a flipped exponent bit makes a finite number that would
wreck the shared weights as surely as a NaN). A batch whose rows
share one layout (what actors send) is checked with whole-array operations; rows of mixed
layouts are checked one by one. A failure raises :class:`WireError` naming the first offending
transition as ``actor/seq``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from learners.cache.batch import TransitionBatch
from learners.link.wire import WireError

if TYPE_CHECKING:  # the learner's config, read by attribute only: no import cycle
    from learners.service.config import LearnerConfig


def check_batch(batch: TransitionBatch, config: LearnerConfig) -> None:
    c = batch.columns
    finite = [("obs", _states(c["obs"], config.obs_dim, batch, "obs")),
              ("next_obs", _states(c["next_obs"], config.obs_dim, batch, "next_obs"))]
    if config.action_dim is not None:
        finite.append(("action", _actions(c["action"], config.action_dim, batch)))
    else:
        _discrete(c["action"], config.n_actions, batch)
    finite.append(("reward", c["reward"]))
    limit = config.max_abs_value
    for name, values in finite:
        ok = np.abs(values) <= limit  # False for NaN and infinities too
        if not ok.all():
            rows = ok.reshape(len(ok), -1).all(axis=1)
            row = int(np.argmin(rows))
            if np.isfinite(values[row]).all():
                raise WireError("bad_value", f"{_name(batch, row)}: {name} is out of range "
                                             f"(|value| > max_abs_value={limit:g})")
            raise WireError("bad_value", f"{_name(batch, row)}: {name} is not finite")


def _name(batch: TransitionBatch, row: int) -> str:
    return f"transition {batch.actor_id}/{batch.first_seq + row}"


def _describe(value) -> str:
    return f"{getattr(value, 'dtype', type(value).__name__)}{list(getattr(value, 'shape', []))}"


def _states(column: dict, obs_dim: int, batch: TransitionBatch, name: str) -> np.ndarray:
    """The observations' state vectors as one float32[count, obs_dim] array, after checking the
    layout of every row."""
    form, value = next(iter(column.items()))
    if form == "a":
        if value.dtype == np.float32 and value.shape[1:] == (obs_dim,):
            return value
        raise WireError("bad_shape", f"{_name(batch, 0)}: {name} must be float32[{obs_dim}], "
                                     f"got {_describe(value[0])}")
    if form == "d":
        for key, sub in value.items():
            if key == "state":
                continue
            images = sub.get("a")
            ok = (key.startswith("image.") and images is not None and images.dtype == np.uint8
                  and images.ndim == 4 and images.shape[3] == 3)
            if not ok:
                raise WireError("bad_shape", f"{_name(batch, 0)}: {name}[{key!r}]: only 'state' and uint8 "
                                             "HxWx3 'image.<camera>' entries are accepted")
        if "state" not in value:
            raise WireError("bad_shape", f"{_name(batch, 0)}: {name}: an observation dict needs a "
                                         "'state' vector")
        return _states(value["state"], obs_dim, batch, f"{name}['state']")
    # Rows of mixed layouts: each on its own.
    return np.stack([_row_state(v, obs_dim, f"{_name(batch, i)}: {name}") for i, v in enumerate(value)])


def _row_state(value, obs_dim: int, where: str) -> np.ndarray:
    if isinstance(value, dict):
        for key, item in value.items():
            ok = key == "state" or (key.startswith("image.") and isinstance(item, np.ndarray)
                                    and item.dtype == np.uint8 and item.ndim == 3 and item.shape[2] == 3)
            if not ok:
                raise WireError("bad_shape", f"{where}[{key!r}]: only 'state' and uint8 HxWx3 "
                                             "'image.<camera>' entries are accepted")
        if "state" not in value:
            raise WireError("bad_shape", f"{where}: an observation dict needs a 'state' vector")
        value = value["state"]
    if not (isinstance(value, np.ndarray) and value.dtype == np.float32 and value.shape == (obs_dim,)):
        raise WireError("bad_shape", f"{where} must be float32[{obs_dim}], got {_describe(value)}")
    return value


def _actions(column: dict, action_dim: int, batch: TransitionBatch) -> np.ndarray:
    form, value = next(iter(column.items()))
    rows = value if form == "l" else [value[0]] if form == "a" else [value]
    if form == "a" and value.dtype == np.float32 and value.shape[1:] == (action_dim,):
        return value
    for i, a in enumerate(rows):
        if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (action_dim,)):
            raise WireError("bad_shape", f"{_name(batch, i)}: action must be float32[{action_dim}], "
                                         f"got {_describe(a)}")
    return np.stack(rows)


def _discrete(column: dict, n_actions: int | None, batch: TransitionBatch) -> None:
    values = column.get("l")
    for i in range(batch.count):
        a = values[i] if values is not None else None
        if not (type(a) is int and 0 <= a < (n_actions or 0)):
            raise WireError("bad_value", f"{_name(batch, i)}: action must be an int in [0, {n_actions})")
