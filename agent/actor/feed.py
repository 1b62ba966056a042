"""``LearnerFeed``: what an actor sends its learner and takes back, the same for every actor kind.

Transitions go out through the actor's ``TransitionStream`` (each gets the next sequence number as
it is handed over, never before: a dropped step uses none, and neither does a transition dropped
because the spool's disk is full, counted in ``dropped_disk_full``); finished episodes go to the
actor's episode log; the learner's newest weights come back into the acting policy, always
through its ``load_state_dict``, and only finite ones (the link refuses weights holding a NaN or
an infinity: ``weights_refused``; the policy acts on with the last good ones). Nothing here
raises into the control loop for a full disk. The stepping actor (``ActorRunner``), the VLA actor
and ``agent_node``'s learner client each hold one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from agent.actor.config import LearnerClientConfig
from agent.actor.episodes import EpisodeLog, EpisodeRecord, read_episodes
from learners.link.security import CurveClient
from learners.link.spool import KEEP_BYTES, SEGMENT_BYTES
from learners.link.stream import TransitionStream
from learners.transition import Transition
from policies.base import Policy

log = logging.getLogger(__name__)


class LearnerFeed:
    """The link of actor ``actor_id`` (spool and episode log in ``directory``) feeding ``policy``."""

    def __init__(self, directory: Path, actor_id: str, learner: str, spec: dict[str, Any], policy: Policy, *,
                 curve: CurveClient | None = None, insecure: bool = False, durability: str = "fsync",
                 spool_keep_bytes: int | None = KEEP_BYTES, spool_segment_bytes: int = SEGMENT_BYTES,
                 compress: str | None = "zstd") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.policy = policy
        shapes = {k: tuple(v.shape) for k, v in policy.state_dict().items()}  # the published names
        self.stream = TransitionStream(self.dir, actor_id, learner, spec, shapes, curve=curve,
                                       insecure=insecure, durability=durability,
                                       spool_keep_bytes=spool_keep_bytes,
                                       spool_segment_bytes=spool_segment_bytes, compress=compress)
        self.link = self.stream.link
        self.episodes = EpisodeLog(self.dir / "episodes.csv")
        self.version = -1  # of the weights acted with; -1: the initial ones
        self.weight_latencies: list[float] = []  # arrival at the link -> loaded into the policy (s)
        self.episodes_unlogged = 0  # finished episodes the episode log could not write (a full disk)
        self._episode_error: str | None = None

    @classmethod
    def from_config(cls, config: LearnerClientConfig, spec: dict[str, Any], policy: Policy) -> LearnerFeed:
        return cls(Path(config.run_dir) / "actors" / config.actor_id, config.actor_id, config.endpoint,
                   spec, policy, curve=config.curve_client(), insecure=config.insecure,
                   durability=config.durability,
                   compress=None if config.compress == "none" else config.compress)

    @property
    def seq(self) -> int:
        """The last sequence number handed out."""
        return self.stream.seq

    @property
    def dropped_disk_full(self) -> int:
        """Transitions dropped before they got a sequence number: the spool's disk refused writes."""
        return self.stream.dropped_disk_full

    @property
    def weights_refused(self) -> int:
        """Weights messages refused for holding NaN or infinite values (never loaded)."""
        return self.link.weights_refused

    def take_weights(self) -> bool:
        """Load the newest published weights into the policy, if any arrived; True when loaded."""
        item = self.stream.take_weights()
        if item is None:
            return False
        version, state, arrived = item
        self.policy.load_state_dict(state, version)
        self.version = int(version)
        self.weight_latencies.append(time.monotonic() - arrived)
        return True

    def emit(self, transition: Transition) -> bool:
        """Number ``transition`` and hand it to the link; never waits. False when it was dropped
        instead, unnumbered (its ``seq`` stays 0), because the spool's disk is full."""
        return self.stream.offer(transition)

    def log_episode(self, record: EpisodeRecord) -> None:
        """Append ``record`` to the episode log; a full disk loses the row (counted and logged),
        never the control loop."""
        try:
            self.episodes.append(record)
        except OSError as e:
            self.episodes_unlogged += 1
            if str(e) != self._episode_error:
                log.error("episode log %s: could not write episode %d: %s (%d unlogged so far)",
                          self.episodes.path, record.episode, e, self.episodes_unlogged)
            self._episode_error = str(e)
        else:
            self._episode_error = None

    def count_on(self, steps: int = 0, episode: int = 0) -> tuple[int, int]:
        """Where an actor's earlier life left its step (or tick) and episode counts: ``(steps,
        episode)`` to continue from, so that a budget spans restarts and no episode number is given
        twice in the episode log.

        ``steps`` and ``episode`` are what the actor saved itself (0: nothing saved); the episode
        log (a row per episode, flushed as it ends) may know later ones, and the later wins. Steps
        of the episode under way at a kill are taken again; that episode's transitions went out
        under the next episode number, so when anything was streamed after the last logged
        episode, that number is skipped."""
        logged: list[EpisodeRecord] = []
        if self.episodes.path.exists():
            try:
                logged = read_episodes(self.episodes.path)
            except (ValueError, KeyError, TypeError, OSError) as e:
                log.warning("episode log %s unreadable (%s): counting on from the saved state only",
                            self.episodes.path, e)
        last = logged[-1] if logged else None
        steps = max(steps, last.step if last else 0)
        ended = max(episode, last.episode if last else 0)
        # (``seq``, not ``kept_seq``: a spool writing behind holds little of what went out, and
        # its ``seq`` is past its reservation, so a number is skipped rather than given twice)
        streamed_after = self.stream.seq > ((last.seq or 0) if last else 0)
        return steps, ended + 1 if streamed_after else ended

    def start(self) -> LearnerFeed:
        self.stream.start()
        return self

    def close(self, drain_s: float = 0.0) -> None:
        """Stop the link after up to ``drain_s`` for the learner to acknowledge what is spooled."""
        self.stream.close(drain_s)
        try:
            self.episodes.close()
        except OSError as e:  # the last rows, on a full disk
            log.error("episode log %s: could not write its last rows at close: %s", self.episodes.path, e)
