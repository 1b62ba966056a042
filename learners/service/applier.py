"""``TransitionApplier``: the learning itself, one transition at a time in each actor's order.

Transitions arrive in cache order, which is each actor's sequence order; each actor has its own
eligibility traces over the shared weights (``StreamAlgorithm.select_stream``). A transition is
applied at most once: the map of the last seq applied per actor (checkpointed) refuses a repeat,
and the applied journal records every update in order. For an algorithm whose update is policy
weighted (stream AC), the policy-gradient term of an action chosen with older weights is scaled
by the truncated importance weight ``min(clip, pi/mu)``.

A step a person drove (``extras["intervened"]``, from an actor whose operator took over) has no
behaviour probability (``behavior_logp`` NaN) and is not the policy's to be judged: its policy
term is an imitation step. Under ObGD the actor moves by ``alpha_eff * delta * z``, ``z`` holding
``w * grad log pi(a|s)``: with ``w = 1`` a negative TD error would push the policy *away* from
the person's action. So the weight is ``w = sign(delta)`` (1 when delta is 0): the step is
``|delta| * grad log pi(a_human|s)``, always toward the person's action (for the Gaussian, the mean
toward it), as large as the critic's surprise, and the entropy term and the critic learn from the
step as from any other. The rule is HG-DAgger's "the expert's action is the label" expressed in
stream AC's own update, with no second loss, no buffer and no extra hyperparameter; it needs an
algorithm with a policy and a ``td_error`` (stream AC); value-based algorithms (Q, SARSA) learn
from intervened steps as from any off-policy step.

An actor's stream can break mid-episode: the actor was killed or moved to a spare robot and began
a new episode, so the episode under way never sends its last transition. Traces must not carry
one trajectory's credit into another: when an actor's transition starts another episode (a new
``episode``, or its ``step`` not past the previous one) while the previous one did not end it,
that actor's traces start from zero and the broken episode's partial return is dropped from the
statistics (``interrupted``). A gap in ``seq`` is one the learner's server let through because
the actor declared it (``after``: it no longer has those numbers); it is counted (``skipped``).
"""

from __future__ import annotations

import dataclasses
import logging
import math

from learners.service.config import LearnerConfig
from learners.service.journal import AppliedJournal
from learners.service.stats import LearnerStats
from learners.streamx.base import StreamAlgorithm
from learners.streamx.registry import algorithm_spec
from learners.transition import Transition

log = logging.getLogger(__name__)
MAX_LOG_RATIO = 50.0  # exp() of a larger log-ratio overflows; the clip truncates it anyway


class TransitionApplier:
    """Applies transitions to ``algo`` in order, recording them in ``journal`` and ``stats``."""

    def __init__(self, config: LearnerConfig, algo: StreamAlgorithm, journal: AppliedJournal,
                 stats: LearnerStats, applied: dict[str, int] | None = None,
                 last_steps: dict[str, tuple[int, int, bool]] | None = None) -> None:
        self.config, self.algo, self.journal, self.stats = config, algo, journal, stats
        self.applied: dict[str, int] = {} if applied is None else applied  # actor -> last seq applied
        # actor -> (episode, step, done) of the last transition applied (checkpointed with ``applied``)
        self.last_steps: dict[str, tuple[int, int, bool]] = dict(last_steps or {})
        self._policy_weighted = algorithm_spec(config.algo).policy_weighted

    def importance_weight(self, t: Transition) -> float:
        """``min(clip, pi(a|s) / mu(a|s))`` under the current weights; 1 when the clip is off or the
        behaviour log-probability was not recorded."""
        clip = self.config.importance_clip
        if clip is None or not hasattr(self.algo, "log_prob") or not math.isfinite(t.behavior_logp):
            return 1.0
        rho = math.exp(min(self.algo.log_prob(t.obs, t.action) - t.behavior_logp, MAX_LOG_RATIO))
        self.stats.importance(rho, clip)
        return min(rho, clip)

    def apply(self, t: Transition, weights_version: int) -> bool:
        """One update from ``t`` (acted with weights ``t.policy_version``; the newest published are
        ``weights_version``); False when ``t`` was applied already and is skipped."""
        last = self.applied.get(t.actor_id, 0)
        if t.seq <= last:  # cannot happen with an intact cache; never apply twice
            log.error("transition %s/%d already applied; skipped", t.actor_id, t.seq)
            return False
        if t.seq != last + 1:
            # The server stores a gap only where the actor declared it (wire ``after``); the cache's
            # reader also passes over a record it found damaged.
            self.stats.skipped += t.seq - last - 1
            log.warning("transition %s/%d follows %d: seqs %d..%d never reach the learner (declared lost "
                        "by the actor, or in a damaged cache record)", t.actor_id, t.seq, last, last + 1,
                        t.seq - 1)
        self.stats.staleness(weights_version - t.policy_version)
        if isinstance(t.obs, dict) or isinstance(t.next_obs, dict):  # images ride along in the cache;
            t = dataclasses.replace(t, obs=_state(t.obs), next_obs=_state(t.next_obs))  # heads learn 'state'
        self.algo.select_stream(t.actor_id)
        previous = self.last_steps.get(t.actor_id)
        if previous is not None and not previous[2] and (t.episode != previous[0] or t.step <= previous[1]):
            self._interrupted(t, previous)
        self.last_steps[t.actor_id] = (t.episode, t.step, t.done)
        intervened = isinstance(t.extras, dict) and bool(t.extras.get("intervened", False))
        if self._policy_weighted and intervened and hasattr(self.algo, "td_error"):
            self.algo.update(t, policy_weight=imitation_weight(self.algo.td_error(t)))
        elif self._policy_weighted:
            self.algo.update(t, policy_weight=self.importance_weight(t))
        else:
            self.algo.update(t)
        if intervened:
            self.stats.intervened_step(t.actor_id)
        self.applied[t.actor_id] = t.seq
        self.journal.record(t.actor_id, t.seq)
        self.stats.episode_step(t)
        return True

    def _interrupted(self, t: Transition, previous: tuple[int, int, bool]) -> None:
        """``t`` begins another episode than the one its actor left unfinished at ``previous``."""
        self.algo.reset_traces()  # the live traces are ``t.actor_id``'s (selected above)
        self.stats.episode_interrupted(t.actor_id)
        log.warning("actor %s: episode %d ended without a last transition (at step %d; the actor restarted "
                    "or moved) and %d step %d follows: its traces start again from zero", t.actor_id,
                    previous[0], previous[1], t.episode, t.step)


def imitation_weight(delta: float) -> float:
    """The policy weight of a step a person drove: ``sign(delta)``, so the update pulls the policy
    toward the person's action whatever the sign of the TD error (see the module docstring)."""
    return -1.0 if delta < 0 else 1.0


def _state(obs):
    return obs["state"] if isinstance(obs, dict) else obs
