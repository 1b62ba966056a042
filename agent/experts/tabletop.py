"""``TabletopExpert``: the scripted expert of the tabletop tasks (reach and push), a rill ``Policy``.

It acts from the robot's observation alone, so the same expert drives the gymnasium env
(``rill/TabletopReach-v0``, ``rill/TabletopPush-v0``) and the HAL ``sim-tabletop`` robot:

- ``state`` (or ``privileged``, where a robot keeps its state proprioceptive and gives the
  simulator's full view there): the layout of ``TabletopEnv.state_names()`` (the first ``8 + 4n``
  entries; the goal entries ``goal_in_state`` may append are ignored): pusher x/y, every block's
  x/y, target x/y.
- ``instruction``: the goal block is the one colour of ``colors`` the instruction names; the task
  (reach or push) is ``task``, or, when not given, whichever task's phrasing the instruction is.

The action is the pusher's planar velocity in [-1, 1]. The expert is a stateless vector field over
the observed positions (proportional terms, saturated, blended smoothly), so the same observation
always gets the same action: demonstrations from it are a function a behaviour-cloning policy can
learn, without chattering between modes. Its phases are regions of that field:

- ``reach``: head for the goal block and slow to a stop where a corner of it would touch the
  pusher: inside the task's reach tolerance, without shoving the block along.
- ``approach`` (push): line up behind the goal block on the far side from the target, in the
  direction of the task's approach point (``TabletopTask.approach_point``), going around the goal
  block: it is an obstacle until the pusher is behind it.
- ``push``: in the cone behind the block, push toward the target (easing off near it) while
  steering the pusher back onto the block-target line; a pusher off the line stands off and slides
  back onto it before pushing on, and one far off it (the block slid or turned away) leaves the
  cone: ``approach`` takes over again and goes round to the new approach point.

Reaching and approaching bend around the other blocks (a tangent detour) rather than knock them;
pushing follows the goal block, which may brush past them.

A chunk holds the action for ``chunk_size`` ticks. The default, 1, is exact for a stepped robot
and a gymnasium env (``expert(obs)`` gives the action); a real-time control loop needs a chunk of
at least ``agent.loop.config.MIN_CHUNK`` (2), since it runs a chunk from the tick after the one it
was planned on. No weights: ``state_dict()`` is empty and ``version`` 0.

``noise`` (default 0) adds temporally correlated Gaussian noise (an AR(1) process, seeded by
``seed``) for diverse demonstrations; the clean action is in ``ActionChunk.extras["expert_action"]``
so a recorder can label demonstrations with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from policies.base import ActionChunk, Observation, Policy, PolicyInputError
from sim.tabletop.env import DEFAULT_COLORS
from sim.tabletop.scene import GEOMETRY, PALETTE
from sim.tabletop.task import PHRASINGS, TASKS, TabletopTask

# Contact distances, pusher centre to block centre: on a face, and on a corner (a block has any yaw).
CONTACT = GEOMETRY.block_half + GEOMETRY.pusher_radius
CORNER = GEOMETRY.block_half * math.sqrt(2.0) + GEOMETRY.pusher_radius
CLEARANCE = CORNER + 0.008  # how close the pusher may pass a block it must not touch
INFLUENCE = 0.05  # detours start bending this far outside the clearance
DETOUR_PASSES = 3  # bends repeated, so that skirting one block does not steer into the next
SIDE_SINE = math.sin(math.radians(15.0))  # within this of head-on, the way round fades in
DETOUR_SLOW = 0.5  # head-on, a detour halves the speed: the arm lags its command

# Gains (action units per metre) and speeds (action units, 1 = the env's max_speed).
K_MOVE = 12.0  # free motion toward a waypoint: full speed from ~8 cm away
K_REACH = 20.0
# Push: the block follows the pusher's velocity closely (the contact mostly sticks and the block
# turns easily), so the pusher is kept on the block-target line by a firm sideways correction,
# capped so that it never outruns the push itself.
K_LATERAL = 40.0
LATERAL_MAX = 0.5
K_GAP = 10.0  # along the line: closing on (or standing off from) the block
K_TARGET = 4.0  # push speed per metre the block still has to go
PUSH_SPEED = (0.3, 0.6)  # push speed, slowest (near the target) to fastest
MAX_SPEED = 1.0
K_OUT = 30.0  # inside a block's clearance: straight out

# The push cone behind the block (angle from the line through the block away from the target),
# and the lateral offsets from that line within which the pusher pushes rather than re-centres.
CONE = (math.radians(25.0), math.radians(45.0))
ALIGNED = (0.006, 0.016)
LINE_UP = CLEARANCE + 0.01  # approach: where to line up behind the block (centre to centre)
PRESS = 0.005  # push this far into contact so contact holds while the block accelerates
BACK_OFF = 0.03  # extra standoff while re-centring, so the pusher does not drag along a face

NOISE_CORRELATION = 0.9  # AR(1) coefficient per tick: smooth noise, a few ticks long


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ramp(value: float, full: float, none: float) -> float:
    """1 at ``value <= full``, 0 at ``value >= none``, smooth in between."""
    return _smoothstep((none - value) / (none - full))


def _saturate(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v * (limit / n) if n > limit else v


def _perp(v: np.ndarray) -> np.ndarray:
    return np.array([-v[1], v[0]])


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def detour(pusher: np.ndarray, velocity: np.ndarray, goal: np.ndarray, obstacles: Sequence[np.ndarray],
           clearance: float = CLEARANCE) -> np.ndarray:
    """``velocity`` bent around each obstacle (a block centre) it would run into.

    Near an obstacle, the part of the velocity heading into it turns into motion along its edge,
    round the side nearer ``goal`` (the way that side stays nearer as the pusher moves, so the
    choice does not flip); inside ``clearance`` the pusher is also pushed straight out. Between two
    obstacles the bends are repeated a few times, so skirting one does not steer into the other.
    """
    v = velocity.astype(float)
    near = []
    for o in obstacles:
        r = pusher - o
        rho = float(np.linalg.norm(r))
        if 1e-9 < rho < clearance + INFLUENCE:
            # Which way round: the side nearer the goal; with the goal straight behind the
            # obstacle, the bend fades toward zero so the choice changes sides smoothly.
            sine = _cross(r, goal - o) / max(rho * float(np.linalg.norm(goal - o)), 1e-9)
            near.append((r / rho, _ramp(rho, clearance, clearance + INFLUENCE),
                         min(max(sine / SIDE_SINE, -1.0), 1.0), rho))
    for _ in range(DETOUR_PASSES):
        for n, weight, side, _rho in near:
            inward = float(v @ n)
            if inward < 0.0:  # turn (never speed up) the velocity toward the obstacle's edge
                speed = float(np.linalg.norm(v))
                v = v - weight * inward * n - weight * inward * side * _perp(n)
                v = v * (speed / max(float(np.linalg.norm(v)), 1e-9))
    # Slow down by how squarely the pusher was heading for an obstacle: the arm lags its command.
    speed = float(np.linalg.norm(velocity))
    if near and speed > 1e-9:
        squarely = max(weight * max(-float(velocity @ n), 0.0) for n, weight, _side, _rho in near) / speed
        v = v * (1.0 - DETOUR_SLOW * squarely)
    for n, _weight, _side, rho in near:
        if rho < clearance:
            v = v + K_OUT * (clearance - rho) * n
    return v


class TabletopExpert(Policy):
    """The scripted expert; see the module docstring."""

    def __init__(self, task: str | None = None, colors: Sequence[str] = DEFAULT_COLORS, action_dim: int = 2,
                 period_s: float = 0.02, chunk_size: int = 1, noise: float = 0.0,
                 seed: int | None = None) -> None:
        if action_dim != 2:
            raise ValueError(f"TabletopExpert commands the pusher's planar velocity (2 actions), "
                             f"not {action_dim}")
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)} or None (from the instruction), "
                             f"got {task!r}")
        unknown = [c for c in colors if c not in PALETTE]
        if not colors or unknown or len(set(colors)) != len(colors):
            raise ValueError(f"colors must be distinct block colours of {sorted(PALETTE)}, "
                             f"got {list(colors)}")
        if type(chunk_size) is not int or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        if not noise >= 0.0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        self.task = task
        self.colors = tuple(colors)
        self.action_dim, self.period_s, self.chunk_size = action_dim, float(period_s), chunk_size
        self.noise = float(noise)
        self._rng = np.random.default_rng(seed)
        self._noise = np.zeros(2)
        # The tasks' own geometry (the approach point, the reach tolerance), never a copy of it.
        self._tasks = {t: TabletopTask(t, self.colors) for t in TASKS}
        self._reach_stop = min(CORNER, 0.9 * self._tasks["reach"].reach_tolerance)
        self._words = re.compile(r"[a-z]+")

    # -- reading the observation ---------------------------------------------------------------
    def goal_and_task(self, instruction: str) -> tuple[int, str]:
        """The goal block's index in ``colors`` and the task, read from ``instruction``."""
        words = set(self._words.findall(str(instruction).lower()))
        named = [i for i, c in enumerate(self.colors) if c in words]
        if len(named) != 1:
            what = "names no block colour" if not named else "names more than one block colour"
            raise PolicyInputError(f"instruction {instruction!r} {what} of this scene "
                                   f"({', '.join(self.colors)}); the expert cannot tell which block is meant")
        goal = named[0]
        if self.task is not None:
            return goal, self.task
        said = " ".join(str(instruction).lower().split())
        for task, phrasings in PHRASINGS.items():
            if said in (p.format(color=self.colors[goal]) for p in phrasings):
                return goal, task
        raise PolicyInputError(f"instruction {instruction!r} is no phrasing of the tabletop tasks; "
                               "give the expert its task (reach or push)")

    def positions(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pusher [2], blocks [n, 2], target [2])`` from the state vector."""
        n = len(self.colors)
        layouts = (8 + 4 * n, 8 + 5 * n, 14 + 5 * n)  # goal_in_state: none, onehot, relative
        if state.ndim != 1 or state.shape[0] not in layouts:
            raise PolicyInputError(f"state of shape {state.shape} does not fit {n} blocks "
                                   f"({', '.join(self.colors)}): expected {layouts[0]} entries "
                                   f"(or {layouts[1]}, {layouts[2]} with the goal appended)")
        if not np.all(np.isfinite(state[: layouts[0]])):
            raise PolicyInputError("state has NaN/inf entries")
        return state[4:6], state[6:6 + 2 * n].reshape(n, 2), state[6 + 2 * n:8 + 2 * n]

    # -- the controller ------------------------------------------------------------------------
    def velocity(self, observation: Observation) -> tuple[np.ndarray, str]:
        """The clean action for ``observation`` and the phase it came from."""
        # A robot whose state is proprioceptive only (sim-tabletop ``state: proprio``) gives the
        # scene under ``privileged``: the expert is the simulator's, so it may look there.
        scene = observation.get("privileged", observation.get("state"))
        if scene is None or "instruction" not in observation:
            raise PolicyInputError(f"the expert needs 'state' (or 'privileged') and 'instruction', "
                                   f"got {sorted(observation)}")
        goal, task = self.goal_and_task(observation["instruction"])
        pusher, blocks, target = self.positions(np.asarray(scene, np.float64).reshape(-1))
        others = [b for i, b in enumerate(blocks) if i != goal]
        if task == "reach":
            v, phase = self._reach(pusher, blocks[goal]), "reach"
            v = detour(pusher, v, blocks[goal], others)
        else:
            v, phase = self._push(pusher, blocks[goal], target, others)
        return np.clip(_saturate(v, MAX_SPEED), -1.0, 1.0), phase

    def _reach(self, pusher: np.ndarray, block: np.ndarray) -> np.ndarray:
        r = block - pusher
        rho = float(np.linalg.norm(r))
        if rho < 1e-9:
            return np.zeros(2)
        return _saturate(K_REACH * (rho - self._reach_stop) * (r / rho), MAX_SPEED)

    def _push(self, pusher: np.ndarray, block: np.ndarray, target: np.ndarray,
              others: list[np.ndarray]) -> tuple[np.ndarray, str]:
        to_go = target - block
        distance = float(np.linalg.norm(to_go))
        u = to_go / max(distance, 1e-9)
        side = _perp(u)
        r = pusher - block
        behind, lateral = -float(r @ u), float(r @ side)
        angle = math.atan2(abs(lateral), behind)  # 0: straight behind the block, pi: in front
        in_cone = _ramp(angle, *CONE)

        # Push: along the line, hold a little inside contact and push at a speed that eases off
        # near the target; off the line, stand off a little and slide back onto it first.
        aligned = _ramp(abs(lateral), *ALIGNED)
        speed = min(max(K_TARGET * distance, PUSH_SPEED[0]), PUSH_SPEED[1])
        hold = aligned * (CONTACT - PRESS) + (1.0 - aligned) * (CONTACT + BACK_OFF)
        forward = aligned * speed + K_GAP * (behind - hold)
        sideways = min(max(-K_LATERAL * lateral, -LATERAL_MAX), LATERAL_MAX)
        push = _saturate(forward * u + sideways * side, MAX_SPEED)

        # Approach: to the approach point, around every block (the goal block too: it is only
        # touched from behind). Pushing, the pusher follows the goal block and may brush others.
        approach_point = np.array(self._tasks["push"].approach_point(block, target))
        # Line up a little further back than the approach point, clear of the block's corners:
        # the push field closes the last centimetres straight along the line.
        back = approach_point - block
        lineup = block + back * (LINE_UP / max(float(np.linalg.norm(back)), 1e-9))
        approach = _saturate(K_MOVE * (lineup - pusher), MAX_SPEED)
        approach = detour(pusher, approach, lineup, [block, *others])

        v = in_cone * push + (1.0 - in_cone) * approach
        return v, "push" if in_cone >= 0.5 else "approach"

    # -- the Policy interface -----------------------------------------------------------------
    def act(self, observation: Observation) -> ActionChunk:
        clean, phase = self.velocity(observation)
        # A closed-loop controller: a chunk holds the action (keep chunks short).
        clean_chunk = np.repeat(clean[None, :], self.chunk_size, axis=0)
        actions = clean_chunk
        if self.noise > 0.0:
            noise = np.empty_like(clean_chunk)
            fresh = math.sqrt(1.0 - NOISE_CORRELATION**2) * self.noise  # stationary std: noise
            for h in range(self.chunk_size):
                self._noise = NOISE_CORRELATION * self._noise + fresh * self._rng.standard_normal(2)
                noise[h] = self._noise
            actions = np.clip(clean_chunk + noise, -1.0, 1.0)
        return ActionChunk(actions.astype(np.float32), self.period_s, version=0,
                           observed_at=float(observation.get("timestamp", 0.0)),
                           extras={"phase": phase, "expert_action": clean.astype(np.float32),
                                   "counterfactual": self.counterfactuals(observation)})

    def counterfactuals(self, observation: Observation) -> dict[str, np.ndarray]:
        """What the expert would do here had the instruction named each other block: the same
        phrasing with the colour swapped -> that clean action. The expert is a function of what it
        observes, so these are exact labels for the same frame and state; imitation learns from them
        that the instruction, not the scene alone, decides which block to go to."""
        instruction = str(observation.get("instruction", ""))
        goal, _ = self.goal_and_task(instruction)
        out = {}
        for i, color in enumerate(self.colors):
            if i == goal:
                continue
            other = re.sub(rf"\b{self.colors[goal]}\b", color, instruction)
            out[other] = self.velocity({**observation, "instruction": other})[0].astype(np.float32)
        return out

    def __call__(self, observation: Observation) -> np.ndarray:
        """The first action for ``observation`` (a gymnasium-style controller)."""
        return self.act(observation).actions[0]
