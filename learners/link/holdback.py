"""The learner's network side when the replay cache's disk is full: actors held back, then resent.

When the disk under the replay cache is full the cache refuses appends (``CacheFullError``) and
its records not yet durable wait in memory, retried. The learner then acknowledges nothing more
(acks follow durability), says so (a log line, ``status()["cache"]``), and refuses transitions:
an actor is told once (``cache_full``), and what it sends after is dropped and counted, to be
resent. Once a retried write succeeds, each actor held back is asked to resend from what the
learner holds (an ERROR ``gap``, which makes it say hello again and resend what was not
acknowledged), and acknowledgements resume by themselves.

Mixed into :class:`learners.link.server.LearnerServer` (its cache, sessions, counters and sender).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from learners.cache import ReplayCache
from learners.link.wire import ERROR

if TYPE_CHECKING:
    from learners.link.server import Session

log = logging.getLogger("learners.link.server")  # one logger for the server, whichever file speaks


class FullDiskHoldBack:
    """Refusing transitions while the cache cannot write, and asking for them again after."""

    cache: ReplayCache
    cache_full: str | None
    sessions: dict[str, Any]
    rejected: collections.Counter[str]
    appended_seq: dict[str, int]

    _send: Callable[..., None]  # (the server's: actor id, message type, fields)

    def _check_storage(self) -> None:
        """Notice when the cache starts and stops refusing writes; on recovery, ask every actor
        held back to resend."""
        error = self.cache.write_error
        if error is not None and self.cache_full is None:
            self.cache_full = str(error)
            log.error("learner: the replay cache cannot write (%s): acknowledging nothing more and "
                      "refusing new transitions until it can; nothing acknowledged is lost", error)
        elif error is None and self.cache_full is not None:
            log.warning("learner: the replay cache writes again; acknowledgements resume and the "
                        "actors held back resend (it had failed: %s)", self.cache_full)
            self.cache_full = None
            for session in self.sessions.values():
                if session.held_back:
                    self._ask_resend(session)

    def _hold_back(self, session: Session, first: int, last: int) -> None:
        """Refuse transitions ``first..last`` for a full disk: counted; the actor is told once."""
        self._check_storage()
        self.rejected["cache_full"] += 1
        if not session.held_back:
            session.held_back = True
            detail = (f"transitions {first}..{last} not stored: the learner's disk is full "
                      f"({self.cache_full}); it asks for them again when it can write")
            self._send(session.actor_id, ERROR, {"reason": "cache_full", "detail": detail[:500]})

    def _ask_resend(self, session: Session) -> None:
        have = self.appended_seq.get(session.actor_id, 0)
        self._send(session.actor_id, ERROR, {
            "reason": "gap", "detail": f"transitions after {have} were refused while the learner's "
                                       f"disk was full: resend from {have + 1}"})
