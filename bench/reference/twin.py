"""rill's training run started exactly where the reference code's run of the same seed starts.

    python -m bench.reproduce --env Walker2d-v4 --seeds 5 --reference-code ~/streaming-drl --only twin

"Same seed" means little between two implementations: rill and the reference draw their initial
weights and action noise from different generators, so rill's seed 3 and the reference's seed 3
are unrelated runs. A *twin* is rill's ``Trainer`` given the reference's start for that seed: the
initial weights the reference's ``StreamAC`` draws after ``torch.manual_seed(seed)``, the action
noise stream that follows them in torch's global generator (rill's acting generator takes its
state; both draw the same standard normals), and the first observation of ``env.reset(seed=seed)``.
From there on it is rill computing: its preprocessing, its compiled updates, its loop. Its first
episodes are the reference run's own, step for step, until the time feature's 1/T offset and
rounding send it elsewhere (a few hundred steps on Walker2d-v4). What the twins share with the
reference runs is the starting point; comparing them pairs the two sides by it.
"""

from __future__ import annotations

import json
import logging

import torch

log = logging.getLogger("bench.reference.twin")


def start_as_reference(trainer, code: str, env_name: str, seed: int) -> None:
    """Give a fresh ``Trainer`` the reference run's start for ``seed`` (before ``trainer.run()``)."""
    from bench.reference.parity import ACTOR_NAMES, CRITIC_NAMES, rill_weights
    from bench.reference.stream_ac import ReferenceCodeError, load_reference, make_env_and_agent

    if trainer.step != 0:
        raise ReferenceCodeError(f"{trainer.run_dir}: a twin starts at step 0, this run is at {trainer.step}")
    ref = load_reference(code)
    saved = torch.get_rng_state()
    try:
        env, agent = make_env_and_agent(ref, env_name, seed)  # seeds torch's generator, draws the init
        env.close()
        trainer.algo.actor.load_state_dict(rill_weights(agent.policy_net, ACTOR_NAMES))
        trainer.algo.critic.load_state_dict(rill_weights(agent.value_net, CRITIC_NAMES))
        trainer.algo.generator.set_state(torch.default_generator.get_state())
    finally:
        torch.set_rng_state(saved)
    first, _ = trainer.env.reset(seed=seed)
    if not trainer.builder.begin(first):
        raise ReferenceCodeError(f"{env_name}: the reset of seed {seed} is not finite")
    note_start(trainer, code, seed)
    log.info("%s: starts from the reference's initial weights and noise stream for seed %d",
             trainer.run_dir, seed)


def note_start(trainer, code: str, seed: int) -> None:
    """Record in the run's ``run.json`` (which the ``Trainer`` rewrites, also on resume) that this run
    started from the reference's start."""
    info_file = trainer.run_dir / "run.json"
    info = json.loads(info_file.read_text())
    info["start"] = {"from": "reference", "code": str(code), "seed": seed}
    info_file.write_text(json.dumps(info, indent=1))
