"""The errors of the HAL: each names what is wrong in words a user can act on.

``HalError`` is the base of every user-facing error here; a CLI reports it as one line.
"""

from __future__ import annotations


class HalError(RuntimeError):
    """Base of the HAL's user-facing errors."""


class ConfigError(HalError, ValueError):
    """A config (robot, run spec) has an unknown field, a bad value or a missing one."""


class UnknownRobotTypeError(ConfigError):
    """A ``type:`` that no registered robot class or plugin provides."""


class DuplicateRobotError(ConfigError):
    """Two robots share one name."""


class InfeasibleSpecError(HalError):
    """A run spec cannot be placed on the resources there are; nothing was started.

    ``problems`` lists each missing resource as one sentence.
    """

    def __init__(self, run: str, problems: list[str]) -> None:
        self.run = run
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"run {run!r} cannot be placed (nothing was started):\n{lines}")


class LeaseError(HalError):
    """A lease cannot be taken, renewed or released as asked."""


class LeaseHeldError(LeaseError):
    """The resource is leased to another holder whose lease has not expired."""

    def __init__(self, resource: str, holder: str, remaining_s: float) -> None:
        self.resource, self.holder, self.remaining_s = resource, holder, remaining_s
        super().__init__(f"{resource!r} is leased by {holder!r} for another {remaining_s:.1f} s")


class LeaseLostError(LeaseError):
    """A holder tried to renew or release a lease that is no longer its own."""
