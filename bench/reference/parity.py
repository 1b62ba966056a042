"""Step for step: rill's stream AC(λ) against the paper's code, from the same weights and inputs.

    python -m bench.reference.parity --code ~/streaming-drl --env Walker2d-v4 --steps 5000 \
        --json docs/results/streamx/parity.json

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
next δ and step size a little, and the stream amplifies it. The floor to read the weight gaps
against is a copy of the reference itself with every weight moved by one float32 step, driven by
the same stream (``weights_reference_nudged``): gaps of that size are rounding, larger ones a
difference in what is computed. The time feature is compared apart (``time_feature_offset``).
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


def agent_gap(a, b) -> float:
    """The largest absolute weight difference between two reference agents."""
    pairs = zip([*a.policy_net.parameters(), *a.value_net.parameters()],
                [*b.policy_net.parameters(), *b.value_net.parameters()])
    with torch.no_grad():
        return max(float((x - y).abs().max()) for x, y in pairs)


def run(code: str, env_name: str, seed: int, steps: int, report_every: int) -> dict:
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
    for learner in learners.values():
        learner.actor.load_state_dict(rill_weights(agent.policy_net, ACTOR_NAMES))
        learner.critic.load_state_dict(rill_weights(agent.value_net, CRITIC_NAMES))
    twin = nudged_copy(agent)
    pres = {"numpy": build_preprocessor(obs_dim, DEFAULTS["gamma"], limit, fast=False),
            "compiled": build_preprocessor(obs_dim, DEFAULTS["gamma"], limit, fast=True)}

    gaps = {f"{k}_{q}": 0.0 for k in pres for q in ("obs", "reward")}
    gaps.update({f"act_{k}": 0.0 for k in learners})
    offsets: list[float] = []
    curve: list[dict] = []
    s, _ = env.reset(seed=seed)
    raw, _ = raw_env.reset(seed=seed)
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
                   "weights_reference_nudged": agent_gap(agent, twin)}
            curve.append(row)
            log.info("step %d: %s", t, " ".join(f"{k} {v:.2e}" for k, v in row.items() if k != "step"))
    offsets_arr = np.asarray(offsets)
    return {
        "env": env_name, "seed": seed, "steps": steps, "episodes": episodes, "time_limit": limit,
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
    args = parser.parse_args(argv)
    if args.steps < 1 or args.report_every < 1:
        parser.error("--steps and --report-every must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    try:
        result = run(args.code, args.env, args.seed, args.steps, args.report_every)
    except ReferenceCodeError as e:
        parser.exit(2, f"error: {e}\n")
    gaps = result["max_abs_gap"]
    width = max(len(k) for k in gaps)
    lines = [f"{k:<{width}}  {v:.3e}" for k, v in gaps.items()]
    last = result["weights"][-1]
    lines += [f"{'weights after ' + str(last['step']):<{width}}  autograd {last['weights_autograd']:.3e}  "
              f"compiled {last['weights_compiled']:.3e}  reference nudged 1 ulp "
              f"{last['weights_reference_nudged']:.3e}",
              f"{'time feature offset':<{width}}  {result['time_feature_offset']['max']:.6f} "
              f"(1/T = {result['time_feature_offset']['one_over_T']:.6f})"]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
