"""Step for step: rill's stream AC(λ) against the paper's code, from the same weights and inputs.

    python -m bench.reference.parity --code ~/streaming-drl --env Walker2d-v4 --steps 5000 \
        --json docs/results/streamx/parity/Walker2d-v4.json

Learning curves of two implementations differ run by run whatever they compute, because one
update's rounding sends the next episode elsewhere; so a comparison of final returns alone cannot
tell a small difference in the algorithm from seed noise. This check takes the randomness out. It
builds the reference's environment and agent (``bench.reference.stream_ac``), copies the
reference's initial weights into rill's ``StreamAC`` (autograd) and ``FastStreamAC`` (compiled),
and drives all three with the reference's own stream, the reference choosing the actions:

- **preprocessing**: rill's ``StreamXPreprocessor`` (numpy and compiled) on a second, raw copy of
  the environment given the same seed and the same clipped actions, against the reference's
  wrappers (``ScaleReward``, ``NormalizeObservation``, ``AddTimeInfo``): normalized observation,
  scaled reward, time feature;
- **acting**: rill's sampled action against the reference's ``mu + sigma * noise`` for the same
  standard-normal draw (rill's own), before each step;
- **updating**: each of rill's learners updated with the reference's transition (its normalized
  observations and scaled reward), so any drift of the weights is the update's alone; the largest
  difference of any weight to the reference's after each step.

All run in float32, so agreement cannot be exact: one rounding difference in a weight changes the
next δ and step size a little, and the stream amplifies it. Two copies of the reference itself,
driven by the same stream, are the floors to read the weight gaps against: one with every weight
moved by one float32 step at the start (``weights_reference_nudged``: a single rounding
difference), one whose ObGD rounds each update in another valid order (``weights_reference_reordered``:
a rounding difference at every step, as any second implementation makes). Gaps of their size are
rounding, larger ones a difference in what is computed. The time feature is compared apart
(``time_feature_offset``).

``--from-checkpoints DIR`` starts everything where a reference run's latest checkpoint left it
(``bench.reference.stream_ac`` writes them), so the comparison also covers a late stage of
learning: long episodes that end at the time limit, a policy that walks.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from bench.reference.stream_ac import DEFAULTS, ReferenceCodeError, load_reference, make_env_and_agent

log = logging.getLogger("bench.reference.parity")

# The reference's module names -> rill's (policies/streamx/networks.py).
ACTOR_NAMES = {"fc_layer": "body.layers.0", "hidden_layer": "body.layers.1", "linear_mu": "mu",
               "linear_std": "sigma"}
CRITIC_NAMES = {"fc_layer": "body.layers.0", "hidden_layer": "body.layers.1", "linear_layer": "head"}


def rill_weights(module: torch.nn.Module, names: dict[str, str]) -> dict[str, torch.Tensor]:
    """A reference network's state dict under rill's parameter names."""
    out = {}
    for key, value in module.state_dict().items():
        layer, param = key.rsplit(".", 1)
        if layer not in names:
            raise ReferenceCodeError(f"reference network has a layer {layer!r} rill does not know")
        out[f"{names[layer]}.{param}"] = value.detach().clone()
    return out


def weight_gap(agent, learner) -> float:
    """The largest absolute difference of any weight between the reference agent and a rill learner."""
    gap = 0.0
    for net, mine, names in ((agent.policy_net, learner.actor, ACTOR_NAMES),
                             (agent.value_net, learner.critic, CRITIC_NAMES)):
        theirs = rill_weights(net, names)
        ours = mine.state_dict()
        for key, value in theirs.items():
            gap = max(gap, float((value - ours[key]).abs().max()))
    return gap


def nudged_copy(agent):
    """The reference agent with every nonzero weight moved one float32 step up: how far rounding
    alone carries two copies of the same code apart (the floor the gaps are read against)."""
    twin = copy.deepcopy(agent)  # one deepcopy: its optimizers hold its own parameters
    with torch.no_grad():
        for p in list(twin.policy_net.parameters()) + list(twin.value_net.parameters()):
            p.copy_(torch.where(p != 0, torch.nextafter(p, torch.full_like(p, math.inf)), p))
    if twin.optimizer_policy.param_groups[0]["params"][0] is not twin.policy_net.fc_layer.weight:
        raise ReferenceCodeError("a copy of the reference agent does not update its own weights")
    return twin


def _reordered_step(opt):
    """ObGD's step as the reference computes it, but rounded in another valid order: the scalar
    ``step_size * delta`` first, then one multiply of the trace and one subtraction (the reference:
    ``delta * e`` first, then an add scaled by ``-step_size``)."""

    def step(delta, reset=False):
        z_sum = 0.0
        for group in opt.param_groups:
            for p in group["params"]:
                state = opt.state[p]
                if len(state) == 0:
                    state["eligibility_trace"] = torch.zeros_like(p.data)
                e = state["eligibility_trace"]
                e.mul_(group["gamma"] * group["lamda"]).add_(p.grad, alpha=1.0)
                z_sum += e.abs().sum().item()
        group = opt.param_groups[-1]
        bound = max(abs(delta), 1.0) * z_sum * group["lr"] * group["kappa"]
        step_size = group["lr"] / bound if bound > 1 else group["lr"]
        for group in opt.param_groups:
            for p in group["params"]:
                e = opt.state[p]["eligibility_trace"]
                p.data.sub_(e * (step_size * delta))
                if reset:
                    e.zero_()

    return step


def reordered_copy(agent):
    """The reference agent whose ObGD rounds each update in another order (``_reordered_step``):
    how far rounding differences made at every step, not once, carry two copies apart."""
    twin = copy.deepcopy(agent)
    twin.optimizer_policy.step = _reordered_step(twin.optimizer_policy)
    twin.optimizer_value.step = _reordered_step(twin.optimizer_value)
    return twin


def agent_gap(a, b) -> float:
    """The largest absolute weight difference between two reference agents."""
    pairs = zip([*a.policy_net.parameters(), *a.value_net.parameters()],
                [*b.policy_net.parameters(), *b.value_net.parameters()])
    with torch.no_grad():
        return max(float((x - y).abs().max()) for x, y in pairs)


def continue_from(ref, env, agent, raw_env, pres: dict, checkpoints: Path) -> int:
    """Put the reference (and rill's preprocessors and raw environment) where a reference run's
    latest checkpoint left it, so the comparison covers a late stage of learning; returns its step.

    The checkpoint is taken at an episode's end, so ObGD's traces are zero on both sides; rill's
    preprocessors get the reference wrappers' running statistics and reward trace, and the raw
    environment the reference environment's random state, so the next resets agree.
    """
    from bench.reference.stream_ac import _wrapper, restore
    from learners.checkpoint import CheckpointStore

    found = CheckpointStore(checkpoints, keep=1_000_000).load_latest()
    if found is None:
        raise ReferenceCodeError(f"{checkpoints}: no reference checkpoint to start from")
    name, tensors, state = found
    restore(ref, env, agent, tensors, state)
    obs_stats = _wrapper(env, ref.NormalizeObservation).obs_stats
    reward = _wrapper(env, ref.ScaleReward)
    for p in pres.values():
        p.load_state_dict({
            "obs": {"count": obs_stats.count, "mean": obs_stats.mean, "m2": obs_stats.p},
            "reward": {"trace": float(np.asarray(reward.reward_trace).reshape(-1)[0]),
                       "count": reward.reward_stats.count, "mean": reward.reward_stats.mean,
                       "m2": reward.reward_stats.p},
            "time": {"value": -0.5}})
    bits = env.unwrapped.np_random.bit_generator
    raw_env.unwrapped.np_random = np.random.Generator(type(bits)())
    raw_env.unwrapped.np_random.bit_generator.state = bits.state
    log.info("continuing from the reference's checkpoint %s (step %d)", name, state["step"])
    return int(state["step"])


def run(code: str, env_name: str, seed: int, steps: int, report_every: int,
        checkpoints: Path | None = None) -> dict:
    from learners.streamx import build_preprocessor
    from learners.streamx.config import StreamACConfig
    from learners.streamx.fast.stream_ac import FastStreamAC
    from learners.streamx.stream_ac import StreamAC
    from learners.transition import Transition
    from sim.envs import make_env, time_limit

    ref = load_reference(code)
    env, agent = make_env_and_agent(ref, env_name, seed)
    raw_env = make_env(env_name)
    obs_dim = int(np.prod(raw_env.observation_space.shape))
    n_actions = raw_env.action_space.shape[0]
    low, high = raw_env.action_space.low, raw_env.action_space.high
    limit = time_limit(raw_env)
    config = StreamACConfig(alpha=DEFAULTS["lr"], gamma=DEFAULTS["gamma"], lamda=DEFAULTS["lamda"],
                            kappa_policy=DEFAULTS["kappa_policy"], kappa_value=DEFAULTS["kappa_value"],
                            entropy_coeff=DEFAULTS["entropy_coeff"])
    learners = {"autograd": StreamAC(obs_dim + 1, action_dim=n_actions, config=config),
                "compiled": FastStreamAC(obs_dim + 1, action_dim=n_actions, config=config)}
    pres = {"numpy": build_preprocessor(obs_dim, DEFAULTS["gamma"], limit, fast=False),
            "compiled": build_preprocessor(obs_dim, DEFAULTS["gamma"], limit, fast=True)}
    start = 0 if checkpoints is None else continue_from(ref, env, agent, raw_env, pres, checkpoints)
    for learner in learners.values():
        learner.actor.load_state_dict(rill_weights(agent.policy_net, ACTOR_NAMES))
        learner.critic.load_state_dict(rill_weights(agent.value_net, CRITIC_NAMES))
    twin, twin_steps = nudged_copy(agent), reordered_copy(agent)

    gaps = {f"{k}_{q}": 0.0 for k in pres for q in ("obs", "reward")}
    gaps.update({f"act_{k}": 0.0 for k in learners})
    offsets: list[float] = []
    curve: list[dict] = []
    s, _ = env.reset(seed=seed) if checkpoints is None else env.reset()
    raw, _ = raw_env.reset(seed=seed) if checkpoints is None else raw_env.reset()
    mine = {k: p.reset(raw) for k, p in pres.items()}
    episodes = 0
    for t in range(1, steps + 1):
        for k, p_s in mine.items():
            gaps[f"{k}_obs"] = max(gaps[f"{k}_obs"], float(np.abs(p_s[:-1] - s[:-1]).max()))
            offsets.append(float(p_s[-1] - s[-1]))
        x = torch.from_numpy(np.asarray(s)).float()
        with torch.no_grad():
            mu, std = agent.pi(x)
        for k, learner in learners.items():  # rill's sample against the reference's for rill's draw
            draw = torch.Generator()
            draw.set_state(learner.generator.get_state())
            noise = torch.randn(mu.shape, generator=draw)
            got = learner.act(x.numpy()).action
            expected = (mu + std * noise).numpy()
            gaps[f"act_{k}"] = max(gaps[f"act_{k}"], float(np.abs(got - expected).max()))
        a = agent.sample_action(s)
        s_next, r, terminated, truncated, _ = env.step(a)
        raw, raw_r, raw_term, raw_trunc, _ = raw_env.step(np.minimum(np.maximum(a, low), high))
        if (raw_term, raw_trunc) != (terminated, truncated):
            raise RuntimeError(f"step {t}: the raw environment ended differently from the reference's")
        for k, p in pres.items():
            mine[k], scaled = p.step(raw, raw_r, raw_term, raw_trunc)
            gaps[f"{k}_reward"] = max(gaps[f"{k}_reward"], abs(scaled - float(r)))
        done = terminated or truncated
        transition = Transition(np.asarray(s, np.float32), np.asarray(a, np.float32), float(r),
                                np.asarray(s_next, np.float32), bool(terminated), bool(truncated))
        agent.update_params(s, a, r, s_next, done, DEFAULTS["entropy_coeff"])
        twin.update_params(s, a, r, s_next, done, DEFAULTS["entropy_coeff"])
        twin_steps.update_params(s, a, r, s_next, done, DEFAULTS["entropy_coeff"])
        for learner in learners.values():
            learner.update(transition)
        s = s_next
        if done:
            episodes += 1
            s, _ = env.reset()
            raw, _ = raw_env.reset()
            mine = {k: p.reset(raw) for k, p in pres.items()}
        if t % report_every == 0 or t == steps:
            row = {"step": t, **{f"weights_{k}": weight_gap(agent, v) for k, v in learners.items()},
                   "weights_reference_nudged": agent_gap(agent, twin),
                   "weights_reference_reordered": agent_gap(agent, twin_steps)}
            curve.append(row)
            log.info("step %d: %s", t, " ".join(f"{k} {v:.2e}" for k, v in row.items() if k != "step"))
    offsets_arr = np.asarray(offsets)
    return {
        "env": env_name, "seed": seed, "steps": steps, "episodes": episodes, "time_limit": limit,
        "start_step": start, "checkpoints": None if checkpoints is None else str(checkpoints),
        "max_abs_gap": gaps,
        "weights": curve,
        "time_feature_offset": {"min": float(offsets_arr.min()), "max": float(offsets_arr.max()),
                                "one_over_T": 1.0 / limit},
        "reference_code": str(Path(code).expanduser().resolve()),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", required=True, help="checkout of the reference repository")
    parser.add_argument("--env", default="Walker2d-v4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--report-every", type=int, default=500)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--from-checkpoints", type=Path, metavar="DIR",
                        help="start where a reference run's latest checkpoint in DIR left off "
                             "(its run's --seed and --env), to compare a late stage of learning")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.report_every < 1:
        parser.error("--steps and --report-every must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    try:
        result = run(args.code, args.env, args.seed, args.steps, args.report_every, args.from_checkpoints)
    except ReferenceCodeError as e:
        parser.exit(2, f"error: {e}\n")
    gaps = result["max_abs_gap"]
    width = max(len(k) for k in gaps)
    lines = [f"{k:<{width}}  {v:.3e}" for k, v in gaps.items()]
    last = result["weights"][-1]
    lines += [f"{'weights after ' + str(last['step']):<{width}}  autograd {last['weights_autograd']:.3e}  "
              f"compiled {last['weights_compiled']:.3e}  reference nudged 1 ulp "
              f"{last['weights_reference_nudged']:.3e}  reference reordered "
              f"{last['weights_reference_reordered']:.3e}",
              f"{'time feature offset':<{width}}  {result['time_feature_offset']['max']:.6f} "
              f"(1/T = {result['time_feature_offset']['one_over_T']:.6f})"]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
