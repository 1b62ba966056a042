"""The robot interface (docs/design.md): what every robot, simulated or real, provides.

A concrete robot implements five small hooks (``_connect``, ``_disconnect``, ``_observe``,
``_send``, ``_hold_command``) and may override three more (``_hold``, ``_reset``,
``_check_device``); the base class carries the contract: connect/disconnect guards, a context
manager, validation of observations against ``observation_spec``, action clamping (joint limits
and per-tick delta), fault latching, and a watchdog that holds position when actions stop
arriving. Safety lives here, on the robot side, so no policy or network fault can bypass it.

A robot type is made from config through ``hal.registry``: ``config_class`` is the typed dataclass
of its ``params`` and ``from_config(name, params)`` builds it; ``probe(name, params)`` reports
health without connecting, for the scheduler's inventory.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hal.config import build
from hal.specs import ActionSpec, FeatureSpec

log = logging.getLogger(__name__)

Observation = dict[str, Any]


class RobotError(RuntimeError):
    """A robot cannot do what was asked (not connected, already connected, faulted)."""


@dataclass
class RobotHealth:
    """A snapshot of a robot's condition, for the scheduler and the operator."""

    ok: bool
    status: str  # "disconnected" | "ok" | "holding" | "fault"
    detail: str = ""
    watchdog_trips: int = 0
    clamped_actions: int = 0
    last_action_age_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Robot(abc.ABC):
    """Base class of every robot. Subclasses set ``type_name`` and implement the hooks.

    ``observation_spec``, ``action_spec`` and ``control_hz`` are plain data, available before
    ``connect()``. ``observe()`` returns a dict matching ``observation_spec`` plus ``timestamp``.
    ``act()`` returns the command actually sent, after clamping. A fault (``fault()`` or one the
    device reports through ``_check_device``) is latched until the next ``connect()``: a faulted
    robot holds and refuses actions, and ``health().ok`` is false.
    """

    type_name: ClassVar[str] = ""
    #: The typed dataclass of this type's ``params`` (``None``: the type takes no params).
    config_class: ClassVar[type | None] = None

    @property
    def stepped(self) -> bool:
        """True when the robot advances only when it is sent an action (a simulator stepped by
        ``act()``): a loop may then drive it faster than its ``control_hz``. Real robots: False."""
        return False

    def __init__(self, name: str, watchdog_timeout_s: float | None = 0.5) -> None:
        self.name = name
        self.watchdog_timeout_s = watchdog_timeout_s
        self._connected = False
        self._lock = threading.RLock()
        self._last_command: np.ndarray | None = None
        self._last_action_time: float | None = None
        self._holding = False
        self._fault: str | None = None
        self.watchdog_trips = 0
        self.clamped_actions = 0
        self._watchdog: threading.Thread | None = None
        self._stop = threading.Event()

    # -- what a robot is -------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def observation_spec(self) -> dict[str, FeatureSpec]: ...

    @property
    @abc.abstractmethod
    def action_spec(self) -> ActionSpec: ...

    @property
    @abc.abstractmethod
    def control_hz(self) -> float: ...

    # -- hooks for concrete robots ---------------------------------------------------------------
    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    @abc.abstractmethod
    def _observe(self) -> Observation:
        """Return the newest observation (without ``timestamp``; the base class adds it)."""

    @abc.abstractmethod
    def _send(self, command: np.ndarray) -> None:
        """Send one already-clamped command to the hardware or simulator."""

    @abc.abstractmethod
    def _hold_command(self) -> np.ndarray:
        """The command that keeps the robot where it is (e.g. the current joint positions)."""

    def _health_extra(self) -> dict[str, Any]:
        return {}

    def _hold(self) -> np.ndarray:
        """Make the robot stay where it is and return the command that does so.

        The default sends ``_hold_command()``. A stepped simulator overrides this to stop advancing
        time instead, which holds every joint exactly.
        """
        command = np.asarray(self._hold_command(), np.float32)
        self._send(command)
        return command

    def _reset(self) -> None:
        """Bring the robot to a start state (a simulator starts a new episode). Default: hold."""
        self._hold()

    def _check_device(self) -> str | None:
        """Return a fault the device reports now (driver error, e-stop, sensor loss), else ``None``."""
        return None

    # -- made from config ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, name: str, params: dict[str, Any] | None = None) -> Robot:
        """Build a robot of this type from its YAML ``params`` (validated by ``config_class``)."""
        where = f"robot {name!r} ({cls.type_name}) params"
        if cls.config_class is None:
            build(_NoParams, params, where)  # any key is unknown: the error names it
            return cls(name)  # type: ignore[call-arg]
        return cls(name, build(cls.config_class, params or {}, where))  # type: ignore[call-arg]

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        """Health of a robot that is not connected, as far as can be told without driving it.

        Used by the scheduler's inventory. The default knows nothing and reports it available.
        """
        return RobotHealth(True, "available", "not probed")

    # -- the contract ----------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        with self._lock:
            if self._connected:
                raise RobotError(f"robot {self.name!r} is already connected")
            self._connect()
            self._connected = True
            self._fault = None
            self._holding = False
            # The first command is bounded by max_delta from where the robot is, not from nowhere.
            self._last_command = np.asarray(self._hold_command(), np.float32)
            self._last_action_time = time.monotonic()
        if self.watchdog_timeout_s:
            self._stop.clear()
            self._watchdog = threading.Thread(target=self._watch, name=f"watchdog-{self.name}",
                                              daemon=True)
            self._watchdog.start()

    def disconnect(self) -> None:
        """Hold position, stop the watchdog and release the hardware. Safe to call twice."""
        with self._lock:
            if not self._connected:
                return
            try:
                self.hold("disconnect")
            finally:
                self._stop.set()
                self._connected = False
                self._disconnect()
        if self._watchdog is not None:
            self._watchdog.join(timeout=2.0)
            self._watchdog = None

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def _require_connected(self) -> None:
        if not self._connected:
            raise RobotError(f"robot {self.name!r} is not connected")

    def observe(self) -> Observation:
        """The newest observation: every entry of ``observation_spec``, plus ``timestamp``."""
        self._require_connected()
        obs = self._observe()
        spec = self.observation_spec
        missing = [k for k in spec if k not in obs]
        if missing:
            raise RobotError(f"robot {self.name!r}: observation lacks {missing} declared in observation_spec")
        for key, feature in spec.items():
            feature.check(key, obs[key])
        obs.setdefault("timestamp", time.monotonic())
        return obs

    def reset(self) -> Observation:
        """Bring the robot to a start state and return the first observation there.

        A simulated robot starts a new episode; a real robot's default is to hold where it is.
        """
        self._require_connected()
        with self._lock:
            self._refuse_if_faulted()
            self._reset()
            self._last_command = np.asarray(self._hold_command(), np.float32)
            self._last_action_time = time.monotonic()
            self._holding = False
        return self.observe()

    def _refuse_if_faulted(self) -> None:
        if self._fault is None:
            reason = self._check_device()
            if reason:
                self._latch_fault(reason)
        if self._fault:
            raise RobotError(f"robot {self.name!r} is faulted: {self._fault}")

    def act(self, action: np.ndarray) -> np.ndarray:
        """Clamp ``action`` to the limits and per-tick delta, send it, feed the watchdog."""
        self._require_connected()
        spec = self.action_spec
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != spec.shape:
            raise ValueError(f"robot {self.name!r}: action of shape {action.shape}, expected {spec.shape}")
        if not np.all(np.isfinite(action)):
            self.hold("non-finite action")
            raise ValueError(f"robot {self.name!r}: action has NaN/inf; holding position")
        with self._lock:
            self._refuse_if_faulted()
            command = spec.clamp(action, self._last_command)
            if not np.array_equal(command, action):
                self.clamped_actions += 1
            self._send(command)
            self._last_command = command
            self._last_action_time = time.monotonic()
            self._holding = False
        return command

    def hold(self, reason: str = "") -> None:
        """Command the robot to stay where it is."""
        with self._lock:
            if not self._connected:
                return
            self._last_command = self._hold()
            if not self._holding:
                log.info("robot %s holding position%s", self.name, f" ({reason})" if reason else "")
            self._holding = True

    def fault(self, reason: str) -> None:
        """Mark the robot unhealthy (a driver or sensor failure) and hold it."""
        with self._lock:
            self._latch_fault(reason)

    def _latch_fault(self, reason: str) -> None:
        self.hold(f"fault: {reason}")
        if self._fault is None:
            log.warning("robot %s faulted: %s", self.name, reason)
        self._fault = reason

    def health(self) -> RobotHealth:
        """A snapshot of the robot's condition; asks the device for a fault first."""
        if self._connected and self._fault is None:
            reason = self._check_device()
            if reason:
                with self._lock:
                    self._latch_fault(reason)
        age = None if self._last_action_time is None else time.monotonic() - self._last_action_time
        if not self._connected:
            status, ok = "disconnected", False
        elif self._fault:
            status, ok = "fault", False
        elif self._holding:
            status, ok = "holding", True
        else:
            status, ok = "ok", True
        return RobotHealth(ok, status, self._fault or "", self.watchdog_trips, self.clamped_actions, age,
                           self._health_extra())

    def _watch(self) -> None:
        period = max(self.watchdog_timeout_s / 4, 0.005)
        while not self._stop.wait(period):
            with self._lock:
                if not self._connected or self._holding or self._last_action_time is None:
                    continue
                if time.monotonic() - self._last_action_time > self.watchdog_timeout_s:
                    self.watchdog_trips += 1
                    self.hold(f"watchdog: no action for {self.watchdog_timeout_s:.3f}s")


@dataclass
class _NoParams:
    """The params of a robot type that takes none."""
