"""``ResidualInputs``: what a VLA's residual heads learn from, besides the time feature.

One value carries the choice from the run's ``train:`` section (``residual_sees_vla``,
``privileged_inputs``, ``state_inputs``, ``locator``) through the actor's configuration to its
features (``agent.vla.features.NormalizedFeatures``) and into the saved policy, so that the learner's
input width, the actor's features and an evaluation's rebuilt policy are made from the same fields.

- ``vla_features``: the VLA's pooled features (False: the residual sees the other inputs alone).
- ``privileged``: entries of the observation's ``privileged`` vector, a simulator's ground truth
  (a diagnostic: a policy built with them cannot run on a real robot, which has no such vector).
- ``state``: entries of the robot's ``state`` (e.g. the hand's position).
- ``locator``: the directory of a saved ``policies.vla.locator.MarkerLocator``, whose answer (the
  marker's pixel in its camera's frame: row, column) the residual also sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The names the saved policy's settings.json gives these fields (and the run config's train: keys).
SAVED_KEYS = ("residual_sees_vla", "privileged_inputs", "state_inputs", "locator")


def residual_inputs_problem(privileged: Any, vla_features: Any, state: Any = (), locator: bool = False,
                            names: tuple[str, str, str, str] = ("privileged", "vla_features", "state",
                                                                "locator")) -> str | None:
    """What is wrong with a residual's choice of inputs, or ``None``: ``privileged`` and ``state``
    must be lists of distinct non-negative indices, and a residual without the VLA's features must
    see something else. ``names``: what the caller calls the four fields (the run config's keys)."""
    p, v, st, loc = names
    for name, indices in ((p, privileged), (st, state)):
        if not isinstance(indices, (list, tuple)) or not all(type(i) is int and i >= 0 for i in indices) \
                or len(set(indices)) != len(indices):
            return f"{name} must be a list of distinct non-negative indices, got {indices!r}"
    if not isinstance(vla_features, bool):
        return f"{v} must be true or false, got {vla_features!r}"
    if not vla_features and not (privileged or state or locator):
        return f"{v}: false needs {p}, {st} or {loc} (the residual would see nothing)"
    return None


@dataclass(frozen=True)
class ResidualInputs:
    """The residual heads' inputs (see the module docstring); ``ValueError`` names a bad choice."""

    vla_features: bool = True
    privileged: tuple[int, ...] = ()
    state: tuple[int, ...] = ()
    locator: str | None = None

    def __post_init__(self) -> None:
        if self.locator is not None and (not isinstance(self.locator, (str, Path)) or not str(self.locator)):
            raise ValueError(f"ResidualInputs.locator must be the path of a saved locator, "
                             f"got {self.locator!r}")
        problem = residual_inputs_problem(self.privileged, self.vla_features, self.state, bool(self.locator))
        if problem:
            raise ValueError(f"ResidualInputs: {problem}")
        object.__setattr__(self, "privileged", tuple(self.privileged))
        object.__setattr__(self, "state", tuple(self.state))
        if self.locator is not None:
            object.__setattr__(self, "locator", str(self.locator))

    def dim(self, feature_dim: int, time_limit: int | None = None) -> int:
        """How many numbers the residual heads see: the VLA's ``feature_dim`` (with
        ``vla_features``), the privileged and state entries, the locator's (row, column), and the
        time feature where episodes have a limit."""
        return (int(feature_dim) * self.vla_features + len(self.privileged) + len(self.state)
                + 2 * bool(self.locator) + (time_limit is not None))

    def describe(self) -> str:
        """These inputs in a few words, for messages."""
        return (f"VLA features {'yes' if self.vla_features else 'no'}, privileged {list(self.privileged)}, "
                f"state {list(self.state)}, locator {self.locator or 'none'}")

    def same_as(self, other: ResidualInputs) -> bool:
        """Whether ``other`` makes the same inputs: the same entries, and a locator in both or in
        neither (where each lies may differ: a saved policy records the absolute path; whether it
        is the same locator is for its weights' digest to say, as ``agent.vla.snapshot`` checks)."""
        key = (self.vla_features, self.privileged, self.state)
        return key == (other.vla_features, other.privileged, other.state) and bool(self.locator) == bool(
            other.locator)

    def load_locator(self, observation_spec: Any = None, robot: str = "") -> Any:
        """The configured ``MarkerLocator`` (None without one), checked against ``observation_spec``
        (robot ``robot``'s camera and frame size) when given: ``ValueError`` names the mismatch,
        ``LocatorError`` a locator that cannot be loaded."""
        if not self.locator:
            return None
        from policies.vla.locator import load_locator

        locator = load_locator(self.locator)
        if observation_spec is not None:
            problem = locator.config.frame_problem(observation_spec, robot)
            if problem is not None:
                raise ValueError(f"locator {self.locator} {problem}")
        return locator

    def saved(self) -> dict[str, Any]:
        """These inputs as a saved policy records them: the locator by absolute path and the sha256
        of its weights, so an evaluation refuses one retrained in the same place."""
        out: dict[str, Any] = {"residual_sees_vla": bool(self.vla_features),
                               "privileged_inputs": list(self.privileged), "state_inputs": list(self.state),
                               "locator": None}
        if self.locator:
            from policies.vla.locator import weights_digest

            out["locator"] = str(Path(self.locator).resolve())
            out["locator_sha256"] = weights_digest(self.locator)
        return out

    @classmethod
    def from_saved(cls, settings: dict[str, Any]) -> ResidualInputs:
        """The inputs a saved policy's ``settings`` record (runs saved before a field existed lack
        it: its default). ``ValueError`` names a bad value."""
        return cls(vla_features=settings.get("residual_sees_vla", True),
                   privileged=tuple(settings.get("privileged_inputs", ())),
                   state=tuple(settings.get("state_inputs", ())), locator=settings.get("locator") or None)
