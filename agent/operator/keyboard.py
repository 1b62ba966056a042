"""``KeyboardOperator``: a person at a keyboard takes over and runs episodes (``rill actor --keyboard``).

Key handling is a plain class over a stream of characters (``feed``), so it is tested without a
terminal; ``terminal.TerminalKeys`` reads a raw tty on a thread and feeds it.

==============  =====================================================================
key             what it does
==============  =====================================================================
space           take over from the policy / release it back
arrows, j l     nudge the current axis pair's first axis by -/+ ``step`` (takes over)
arrows, i k     nudge its second axis by +/- ``step`` (takes over)
[ ]             previous / next axis pair (axes 0-1, 2-3, ...)
x               zero the command (stops a velocity-commanded arm)
g, Enter        start the next episode
s / f           the episode succeeded / failed
r               end the episode (``stopped``) and reset
q               stop: end the episode (``stopped``) and hold until ``g``
==============  =====================================================================

A takeover starts from what the robot was last sent, so the arm does not jump, and each nudge
applies to what the robot last took (a command clamped by the robot's limits does not wind up
beyond them); every command still goes through the robot's clamps. If the keyboard goes away
mid-intervention (``lose``: the terminal closed) the loop holds the robot.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from agent.operator.events import OperatorEvent
from agent.operator.intervention import NONE, Intervention

log = logging.getLogger(__name__)

_ARROWS = {"\x1b[A": ("axis", 1, +1), "\x1b[B": ("axis", 1, -1), "\x1b[C": ("axis", 0, +1),
           "\x1b[D": ("axis", 0, -1)}
_KEYS = {"i": ("axis", 1, +1), "k": ("axis", 1, -1), "l": ("axis", 0, +1), "j": ("axis", 0, -1),
         " ": ("toggle",), "[": ("pair", -1), "]": ("pair", +1), "x": ("zero",), "g": ("event", "start"),
         "\r": ("event", "start"), "\n": ("event", "start"), "s": ("event", "success"),
         "f": ("event", "failure"), "r": ("event", "reset"), "q": ("event", "stop")}


class KeyboardOperator:
    """Keys to an intervention (``poll``, an ``InterventionSource``) and to episode events for
    ``controller`` (an ``EpisodeController``; events need one: without it they are ignored)."""

    def __init__(self, action_dim: int, step: float = 0.1, controller: Any = None) -> None:
        if action_dim < 1 or not step > 0:
            raise ValueError(f"keyboard needs action_dim >= 1 and step > 0, got {action_dim}, {step}")
        self.action_dim, self.step, self.controller = action_dim, float(step), controller
        self.pair = 0
        self.active = False
        self.lost = ""
        self.keys = 0
        self.ignored = 0  # characters that are no key of ours
        self._nudge = np.zeros(action_dim, np.float32)
        self._zero = False
        self._command: np.ndarray | None = None
        self._pending = ""
        self._lock = threading.Lock()

    # -- the reader's side -----------------------------------------------------------------------
    def feed(self, chars: str) -> None:
        """Handle typed characters (escape sequences may arrive split across calls)."""
        with self._lock:
            text, self._pending = self._pending + chars, ""
            i = 0
            while i < len(text):
                if text[i] == "\x1b":
                    seq = text[i:i + 3]
                    if len(seq) < 3 and "\x1b[".startswith(seq):
                        self._pending = seq  # the rest of an arrow is still on its way
                        return
                    action = _ARROWS.get(seq)
                    i += 3 if action else 1
                else:
                    action = _KEYS.get(text[i].lower() if text[i] not in "\r\n" else text[i])
                    i += 1
                if action is None:
                    self.ignored += 1
                    continue
                self.keys += 1
                self._handle(action)

    def lose(self, why: str) -> None:
        """The keyboard is gone (the terminal closed): an intervention under way holds the robot."""
        with self._lock:
            self.lost = why or "keyboard gone"

    def _handle(self, action: tuple) -> None:
        kind = action[0]
        if kind == "toggle":
            self.active = not self.active
            self._command = None  # a takeover starts from what the robot was last sent
            self._nudge[:] = 0.0
        elif kind == "axis":
            axis = 2 * self.pair + action[1]
            if axis < self.action_dim:
                if not self.active:
                    self.active, self._command = True, None
                self._nudge[axis] += action[2] * self.step
        elif kind == "pair":
            pairs = (self.action_dim + 1) // 2
            self.pair = (self.pair + action[1]) % pairs
        elif kind == "zero":
            self._zero, self._nudge[:] = True, 0.0
        elif kind == "event":
            self._event(action[1])

    def _event(self, name: str) -> None:
        c = self.controller
        if c is None:
            log.warning("keyboard: %r has no episodes to act on here", name)
            return
        episode = c.episode + 1 if name == "start" else c.episode
        c.submit(OperatorEvent(name, episode, source="keyboard"))

    # -- the control loop's side -----------------------------------------------------------------
    def poll(self, now: float, last_sent: np.ndarray | None) -> Intervention:
        with self._lock:
            if not self.active:
                return NONE
            if self.lost:
                return Intervention(True, None, self.lost)
            if last_sent is not None:  # nudge from what the robot took: no wind-up past its clamps
                self._command = np.asarray(last_sent, np.float32).copy()
            elif self._command is None:
                self._command = np.zeros(self.action_dim, np.float32)
            if self._zero:
                self._command[:] = 0.0
                self._zero = False
            self._command += self._nudge
            self._nudge[:] = 0.0
            return Intervention(True, self._command.copy())

    def status_line(self) -> str:
        """One line for a live display: who drives, the axis pair, the episode."""
        who = ("YOU (lost: " + self.lost + ")" if self.lost else "YOU") if self.active else "policy"
        line = f"driving: {who}  axes {2 * self.pair}-{2 * self.pair + 1}"
        c = self.controller
        if c is not None:
            s = c.state()
            line += (f"  episode {s['episode']} {s['phase']}  takeovers {s['takeovers']}  "
                     f"intervened {s['intervened_steps']}  last {s['outcome'] or '-'}")
        return line
