"""``ControlLoop``: ticks at the robot's control rate and never waits for the policy.

Each tick takes the newest observation, executes the action the current chunk holds for this
tick (joined smoothly to the previous chunk), and hands a record of the tick to ``on_tick``
(e.g. the learner client, which only enqueues). Inference runs on a thread of its own: it starts
the next chunk when the current one has about an inference latency (measured) of actions left.
When no action is available — the policy is slow or failing, or the observation is stale — the
robot holds position and the loop counts why. Safety limits (joint limits, per-tick delta,
watchdog) stay on the robot side and apply whatever the loop sends.

Two optional hooks let a person in, both consulted every tick on the control thread, neither
blocking (``agent/operator``): ``episodes`` (an ``EpisodeController``) says whether the policy acts
this tick or the robot resets or waits, and which episode ended; ``intervention`` (an
``InterventionSource``) overrides whatever was planned while a person has taken over: their command
goes through ``robot.act`` (clamped like any action) and the tick is flagged ``intervened``; a source
gone quiet mid-intervention holds the robot ("intervention lost"). The policy keeps planning while
a person drives, so it takes over again from a fresh chunk.

A per-step policy (``chunk_size == 1``: stream-x) runs inside the tick even when
``LoopConfig.asynchronous`` is on, see ``infers_in_tick``.
"""

from __future__ import annotations

import collections
import logging
import math
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from agent.loop import realtime
from agent.loop.chunks import ChunkSchedule
from agent.loop.collector import CollectorWatch, freeze_heap, thaw_heap
from agent.loop.config import LoopConfig
from agent.loop.pacer import Pacer
from agent.loop.stats import LoopStats
from agent.loop.takeover import Takeover
from agent.loop.ticks import TickRecord, ended_in
from agent.operator.episodes import EpisodeController
from agent.operator.intervention import NONE, InterventionSource
from hal.robot import Robot, RobotError
from policies.base import EPISODE_TICK, ActionChunk, Observation, Policy

log = logging.getLogger(__name__)


def per_step(policy: Policy) -> bool:
    """Whether ``policy`` plans one action at a time (its chunks hold a single action)."""
    return getattr(policy, "chunk_size", None) == 1


class ControlLoop:
    """Runs ``policy`` on ``robot`` (see the module docstring).

    ``infers_in_tick``: the policy runs inside the tick, on the control thread, whenever the
    chunk has run out: with ``LoopConfig.asynchronous`` off, and always for a per-step policy
    (``chunk_size == 1``). A one-action chunk planned on an inference thread from tick ``k``'s
    observation holds the action for tick ``k`` only, and it can only arrive at tick ``k + 1`` or
    later: always late, the robot would hold every tick. Re-timing it to the tick it arrives on
    would act, one tick behind, but then the action sent at tick ``k + 1`` was drawn for another
    observation than the one the learner pairs it with, and its behaviour log-probability would
    mislead the learner's importance weights. In the tick, the action is the policy's answer to
    this tick's observation, sent at once, and the transition is exact; the cost is the policy's
    latency inside the tick, which a per-step policy must stay well under anyway (it is asked
    every tick; a slow one shows as ``deadline_misses``).
    """

    def __init__(
        self,
        robot: Robot,
        policy: Policy,
        config: LoopConfig | None = None,
        on_tick: Callable[[TickRecord], None] | None = None,
        intervention: InterventionSource | None = None,
        episodes: EpisodeController | None = None,
    ) -> None:
        self.robot, self.policy = robot, policy
        self.intervention, self.episodes = intervention, episodes
        self.takeover = Takeover(robot, episodes)
        self.interventions = self.takeover.stats
        self.config = config or LoopConfig()
        self.on_tick = on_tick
        self.stats = LoopStats()
        self.schedule = ChunkSchedule(self.config.blend, self.config.blend_ticks)
        self._latency = collections.deque(maxlen=self.config.latency_window)
        self._lock = threading.Lock()
        # the newest observation to plan from: observation, tick, episode, ticks into the episode
        self._latest: tuple[Observation, int, int, int] | None = None
        self._inbox: tuple[ActionChunk, int, int] | None = None  # chunk, start tick, episode
        self.episode = 0
        self._episode_began: int | None = None  # the tick the policy first acted on in this episode
        self._want = threading.Event()
        self._stop = threading.Event()
        self._ran = False  # a run ended: the robot was held and the episode under way ended
        self._in_flight = False
        self._last_action: np.ndarray | None = None
        self._failing = False
        self._lead = self.config.lead_margin_ticks + 1  # until a latency has been measured
        self.tick = 0
        self.state = "starting"
        self.infers_in_tick = not self.config.asynchronous or per_step(policy)
        if self.config.asynchronous and self.infers_in_tick:
            log.info("%s acts one action per tick: it runs inside the tick (its action is for this "
                     "tick's observation), not on an inference thread", type(policy).__name__)

    # -- inference -------------------------------------------------------------------------------
    def _infer(self, obs: Observation, tick: int, episode: int, episode_tick: int) -> None:
        # What the policy sees: the observation and how far into its episode it is (for a time
        # input: a policy that learns with time limits needs it; docs/design.md, Observation). The
        # copy is made here, once a plan, not on every tick.
        seen = {**obs, EPISODE_TICK: episode_tick}
        start = time.monotonic()
        try:
            chunk = self.policy.act(seen)
        except Exception as e:  # any policy fault: hold and report, keep the loop alive
            self._failing = True
            self.stats.policy_failures += 1
            self.stats.last_failure = f"{type(e).__name__}: {e}"
            if self.stats.policy_failures == 1 or self.stats.policy_failures % 100 == 0:
                log.error(
                    "policy failed (%d so far): %s", self.stats.policy_failures, self.stats.last_failure
                )
            return
        latency = time.monotonic() - start
        self._failing = False
        self._latency.append(latency)
        self._update_lead()
        self.stats.inference_s.append(latency)
        with self._lock:
            self._inbox = (chunk, tick, episode)

    def _inference_thread(self) -> None:
        while not self._stop.is_set():
            if not self._want.wait(0.05):
                continue
            self._want.clear()
            with self._lock:
                latest = self._latest
            if latest is not None:
                self._infer(*latest)
            self._in_flight = False

    def lead_ticks(self) -> int:
        """Start the next inference when this few actions are left (measured latency + margin).

        Recomputed once per finished inference, not per tick: the control path only reads it."""
        return self._lead

    def _update_lead(self) -> None:
        expected = float(np.percentile(self._latency, 90))
        self._lead = math.ceil(expected / self.config.period_s) + self.config.lead_margin_ticks

    # -- the tick --------------------------------------------------------------------------------
    def _hold(self, reason: str) -> None:
        self.robot.hold(reason)
        self.stats.holds += 1
        self.state = f"holding: {reason}"

    def step(self, tick: int) -> TickRecord:
        """One control tick (public for tests and for loops driven from outside)."""
        cfg = self.config
        try:
            obs = self.robot.observe()
        except (ValueError, RobotError) as e:  # a sensor delivering something unusable: hold, report
            self.stats.bad_observations += 1
            self.stats.last_failure = f"observation: {e}"
            self._hold("bad observation")
            return TickRecord(tick, {}, None, None, True, "bad observation", self.episode)
        now = time.monotonic()
        if now - float(obs.get("timestamp", now)) > cfg.max_obs_age_s:
            self.stats.stale_observations += 1
            self._hold("stale observation")
            return TickRecord(tick, obs, None, None, True, "stale observation", self.episode)
        directive = None
        if self.episodes is not None:
            directive = self.episodes.tick(obs, now, self._last_action)
            if directive.started:
                self._forget_plans()
        if directive is None and cfg.auto_reset and ended_in(obs):
            # The robot reports its episode over and ``run`` resets it after this tick: nothing is
            # planned for, or sent to, a finished episode (no transition would ever use it).
            return TickRecord(tick, obs, None, None, True, "episode ended", self.episode)
        if directive is None or directive.control == "policy":
            action, record_chunk, reason = self._planned(obs, tick, now)
        else:
            action, record_chunk, reason = directive.action, None, directive.reason
        phase = "running" if directive is None else directive.phase
        ended = None if directive is None else directive.ended
        person = self.intervention.poll(now, self._last_action) if self.intervention is not None else NONE
        self.takeover.note(person, phase)
        if person.active:
            record = self.takeover.drive(tick, obs, person, phase, ended, self.episode)
            if record.held:
                self._hold(record.reason)
            else:
                self._last_action, self.state = record.action, "intervened"
            return record
        if action is None:
            self._hold(reason)
            return TickRecord(tick, obs, None, record_chunk, True, reason, self.episode, phase=phase,
                              ended=ended)
        sent = self.robot.act(action)
        if directive is None or directive.control == "policy":
            if tick == self.schedule.handover_tick and self._last_action is not None:
                self.stats.joins.append(float(np.max(np.abs(sent - self._last_action))))
            self.stats.obs_to_action_s.append(time.monotonic() - float(obs.get("timestamp", now)))
            self.state = "running"
        else:
            self.state = phase
        self._last_action = sent
        return TickRecord(tick, obs, sent, record_chunk, False, episode=self.episode, phase=phase,
                          ended=ended)

    def _planned(self, obs: Observation, tick: int, now: float) -> tuple:
        """The policy's action for this tick (or None and why not), and the chunk it comes from."""
        if self._episode_began is None:
            self._episode_began = tick
        latest = (obs, tick, self.episode, tick - self._episode_began)
        with self._lock:
            self._latest = latest
            inbox, self._inbox = self._inbox, None
        if inbox is None and self.infers_in_tick and self.schedule.remaining(tick) == 0:
            self._infer(*latest)  # the naive loop: the robot waits for the policy here
            with self._lock:
                inbox, self._inbox = self._inbox, None
        if inbox is not None and inbox[2] != self.episode:
            inbox = None  # planned in an episode that has ended
        if inbox is not None:
            chunk, start_tick, _ = inbox
            self.stats.chunks += 1
            if not self.schedule.add(chunk, start_tick, start_tick if self.infers_in_tick else tick):
                self.stats.late_chunks += 1
        action = self.schedule.action(tick)
        record_chunk = self.schedule.current.chunk if self.schedule.current else None
        if (
            not self.infers_in_tick
            and not self._in_flight
            and self.schedule.remaining(tick + 1) <= self.lead_ticks()
        ):
            self._in_flight = True
            self._want.set()
        reason = "" if action is not None else ("policy failing" if self._failing else "no chunk")
        return action, record_chunk, reason

    def finish_episode(self) -> TickRecord | None:
        """End the episode under way because the loop stops (``EpisodeController.finish``): a last
        record, with the observation where the robot is, that ends it; None when none runs."""
        if self.episodes is None:
            return None
        ended = self.episodes.finish(time.monotonic())
        if ended is None:
            return None
        try:
            obs = self.robot.observe()
        except (ValueError, RobotError):
            obs = {}
        return TickRecord(self.tick, obs, None, None, True, "loop stopped", self.episode, phase="waiting",
                          ended=ended)

    # -- running ---------------------------------------------------------------------------------
    def run(self, ticks: int | None = None, should_stop: Callable[[], bool] | None = None) -> LoopStats:
        """Tick on schedule (as fast as the robot goes if not ``config.paced``) until ``ticks`` ticks,
        ``should_stop()`` or ``stop()``. A loop runs once: ``RuntimeError`` when it has stopped
        (it held the robot and ended the episode under way); a new ``ControlLoop`` runs again."""
        if self._ran:
            raise RuntimeError("ControlLoop.run: this loop has run and stopped (it held the robot and "
                               "ended its episode); build a new ControlLoop to run again")
        period = self.config.period_s
        # The inference thread holds the GIL through a model's Python-level work; by default a
        # waiting thread gets it back only after 5 ms. Ask for a handover well within a tick.
        previous_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(previous_switch, max(period / 50, 0.0002)))
        worker = None
        if not self.infers_in_tick:
            worker = threading.Thread(target=self._inference_thread, name="inference", daemon=True)
            worker.start()
        pacer = Pacer(period)
        misses_before = self.stats.deadline_misses
        scheduling, keeper = None, realtime.CoreKeeper(self.config.cpus)
        if self.config.freeze_gc:
            freeze_heap()
        watch = CollectorWatch().start()
        try:
            # After the inference thread is started: it keeps ordinary scheduling. The clock's CPUs
            # are the clock's alone: every other thread of this process (the inference thread, a
            # policy process it restarts, threads started on the clock) runs on the others while
            # the loop runs.
            keeper.start()
            scheduling = realtime.enter(self.config.rt_priority, self.config.cpus)
            self.stats.realtime, self.stats.realtime_refused = scheduling.applied, scheduling.refused
            pacer.restart()
            while not self._stop.is_set() and (ticks is None or self.stats.ticks < ticks):
                if should_stop is not None and should_stop():
                    break
                if self.config.paced:
                    self.stats.jitter_s.append(pacer.wait())
                began = time.monotonic()
                record = self.step(self.tick)
                if self.on_tick is not None:
                    self.on_tick(record)
                if self.config.auto_reset and self.episodes is None and record.episode_end:
                    self.new_episode()
                self.stats.ticks += 1
                self.stats.tick_work_s.append(time.monotonic() - began)
                if self.config.paced:
                    self.tick += 1 + pacer.end_tick()  # ticks that could not happen on time are skipped
                    self.stats.deadline_misses = misses_before + pacer.deadline_misses
                else:
                    self.tick += 1
        finally:
            if scheduling is not None:
                realtime.leave(scheduling)
            keeper.stop()
            self._stop.set()
            self._ran = True
            if worker is not None:
                worker.join(timeout=5)
            watch.stop()
            if self.config.freeze_gc:
                thaw_heap()
            self.stats.gc_collections = [a + b for a, b in zip(self.stats.gc_collections, watch.collections)]
            self.stats.gc_pause_max_s = max(self.stats.gc_pause_max_s, watch.longest_s)
            sys.setswitchinterval(previous_switch)
            self.robot.hold("loop stopped")
            self._finish_on_stop()
        return self.stats

    def _finish_on_stop(self) -> None:
        """Record the end of an episode the stop cut short; a failure here never keeps the loop up."""
        try:
            record = self.finish_episode()
            if record is not None and self.on_tick is not None:
                self.on_tick(record)
        except Exception:
            log.exception("could not record the end of the episode the stop cut short")

    def new_episode(self) -> None:
        """Reset the robot and forget every plan made in the episode that ended."""
        self.robot.reset()
        self._forget_plans()

    def _forget_plans(self) -> None:
        with self._lock:
            self.episode += 1
            self._episode_began = None
            self._latest, self._inbox = None, None
        self.schedule = ChunkSchedule(self.config.blend, self.config.blend_ticks)
        self._last_action = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def ran(self) -> bool:
        """Whether a run has ended (a loop runs once)."""
        return self._ran

