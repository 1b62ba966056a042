"""Run the paper's published stream AC(λ) code under the bench harness, resumable.

    python -m bench.reference.stream_ac --code ~/streaming-drl --env Walker2d-v4 --seed 0 \
        --steps 2000000 --run runs/reference/Walker2d-v4/seed0

``--code`` is a checkout of the paper's public repository (``bench/reference/README.md`` says how
to get it; rill does not ship it). From it this module imports ``StreamAC`` (actor, critic, ObGD,
sparse initialization) and the ``ScaleReward``, ``NormalizeObservation`` and ``AddTimeInfo``
wrappers, builds the environment and the agent exactly as the published ``main()`` does (same
seeding, wrapper order and defaults), and runs its loop: sample, step, ``update_params``, reset at
an episode's end. Written here, and nothing else: what a multi-hour run on a shared machine needs
and the published script lacks —

- a checkpoint at the first episode end after every ``--checkpoint-every`` steps (the networks,
  ObGD's traces, the wrappers' running statistics and reward trace, and the torch, numpy and
  environment random states), so an interrupted run continues where it stopped and takes the
  same steps it would have taken (``tests/bench/test_reference_stream_ac.py`` checks this where
  the code is installed);
- the episode log in rill's format (``<run>/metrics/episodes.csv``), so ``bench.reproduce``
  reads the reference's runs and rill's alike; ``<run>/summary.json`` when the run is done.
Nothing is pickled and no ``torch.load`` is used: checkpoints are safetensors with a JSON state.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.common import finished_summary

log = logging.getLogger("bench.reference.stream_ac")

# The published defaults (the reference script's argparse defaults and docs/streamx.md).
DEFAULTS = {"lr": 1.0, "gamma": 0.99, "lamda": 0.8, "entropy_coeff": 0.01,
            "kappa_policy": 3.0, "kappa_value": 2.0}
MODULES = ("stream_ac_continuous", "normalization_wrappers", "time_wrapper", "optim", "sparse_init")


class ReferenceCodeError(RuntimeError):
    """The reference code is missing, or is not the code this driver was written against."""


@dataclass(frozen=True)
class ReferenceRun:
    code: str
    env: str
    seed: int
    steps: int
    run_dir: str
    checkpoint_every: int = 100_000


def load_reference(code: str | Path):
    """Import the reference modules from the checkout at ``code``; returns ``stream_ac_continuous``."""
    root = Path(code).expanduser().resolve()
    missing = [m for m in MODULES if not (root / f"{m}.py").is_file()]
    if missing:
        raise ReferenceCodeError(
            f"reference code {root}: missing {', '.join(m + '.py' for m in missing)}; --code must be a "
            "checkout of the paper's streaming-drl repository (bench/reference/README.md)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("stream_ac_continuous")
    for name in ("StreamAC", "NormalizeObservation", "ScaleReward", "AddTimeInfo"):
        if not hasattr(module, name):
            raise ReferenceCodeError(f"reference code {root}/stream_ac_continuous.py: no {name}")
    if Path(module.__file__).resolve().parent != root:
        raise ReferenceCodeError(f"stream_ac_continuous was imported from {module.__file__}, not {root}")
    _check_one_update(module, root)
    return module


def _check_one_update(module, root: Path) -> None:
    """One update of a tiny agent, so a checkout that cannot run here fails now, by name."""
    state = torch.get_rng_state()
    try:
        agent = module.StreamAC(n_obs=3, n_actions=1, hidden_size=4)
        s = np.zeros(3, np.float32)
        agent.update_params(s, agent.sample_action(s), 1.0, s, False, DEFAULTS["entropy_coeff"])
    except TypeError as e:
        raise ReferenceCodeError(
            f"reference code {root}: one update fails ({e}); with torch 2.x, ObGD.step in optim.py must "
            "read p.data.add_(delta * e, alpha=-step_size) (bench/reference/README.md)") from e
    finally:
        torch.set_rng_state(state)  # the check leaves the run's random stream as it found it


def make_env_and_agent(ref, env_name: str, seed: int):
    """The published ``main()``'s set-up, line for line: seeds, wrappers in its order, the agent."""
    import gymnasium as gym

    torch.manual_seed(seed)
    np.random.seed(seed)
    env = gym.make(env_name)
    env = gym.wrappers.FlattenObservation(env)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = gym.wrappers.ClipAction(env)
    env = ref.ScaleReward(env, gamma=DEFAULTS["gamma"])
    env = ref.NormalizeObservation(env)
    env = ref.AddTimeInfo(env)
    agent = ref.StreamAC(
        n_obs=env.observation_space.shape[0], n_actions=env.action_space.shape[0], lr=DEFAULTS["lr"],
        gamma=DEFAULTS["gamma"], lamda=DEFAULTS["lamda"], kappa_policy=DEFAULTS["kappa_policy"],
        kappa_value=DEFAULTS["kappa_value"])
    return env, agent


def _wrapper(env, cls):
    while not isinstance(env, cls):
        if not hasattr(env, "env"):
            raise ReferenceCodeError(f"no {cls.__name__} wrapper in the environment")
        env = env.env
    return env


def _optimizers(agent):
    return {"policy": agent.optimizer_policy, "value": agent.optimizer_value}


def capture(ref, env, agent) -> tuple[dict[str, torch.Tensor], dict]:
    """Everything the loop's future depends on, taken at an episode's end before the reset."""
    tensors = {f"agent.{k}": v for k, v in agent.state_dict().items()}
    for name, opt in _optimizers(agent).items():
        for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
            trace = opt.state[p].get("eligibility_trace")
            if trace is not None:
                tensors[f"trace.{name}.{i}"] = trace
    state: dict = {}
    for key, cls, attr in (("obs", ref.NormalizeObservation, "obs_stats"),
                           ("reward", ref.ScaleReward, "reward_stats")):
        stats = getattr(_wrapper(env, cls), attr)
        state[f"{key}_count"] = int(stats.count)
        for field in ("mean", "var", "p"):
            tensors[f"{key}.{field}"] = torch.from_numpy(np.array(getattr(stats, field), np.float64))
    tensors["reward.trace"] = torch.from_numpy(np.array(_wrapper(env, ref.ScaleReward).reward_trace,
                                                        np.float64))
    tensors["rng.torch"] = torch.get_rng_state()
    algo, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, np.int64))
    state["numpy_rng"] = {"algo": algo, "pos": int(pos), "has_gauss": int(has_gauss),
                          "cached_gaussian": float(cached)}
    state["env_rng"] = env.unwrapped.np_random.bit_generator.state
    return tensors, state


def restore(ref, env, agent, tensors: dict[str, torch.Tensor], state: dict) -> None:
    agent.load_state_dict({k[len("agent."):]: v for k, v in tensors.items() if k.startswith("agent.")})
    for name, opt in _optimizers(agent).items():
        for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
            trace = tensors.get(f"trace.{name}.{i}")
            if trace is not None:
                opt.state[p]["eligibility_trace"] = trace.clone()
    for key, cls, attr in (("obs", ref.NormalizeObservation, "obs_stats"),
                           ("reward", ref.ScaleReward, "reward_stats")):
        stats = getattr(_wrapper(env, cls), attr)
        stats.count = state[f"{key}_count"]
        for field in ("mean", "var", "p"):
            setattr(stats, field, tensors[f"{key}.{field}"].numpy().copy())
    _wrapper(env, ref.ScaleReward).reward_trace = tensors["reward.trace"].numpy().copy()
    torch.set_rng_state(tensors["rng.torch"])
    rng = state["numpy_rng"]
    np.random.set_state((rng["algo"], tensors["rng.numpy.keys"].numpy().astype(np.uint32), rng["pos"],
                         rng["has_gauss"], rng["cached_gaussian"]))
    generator = np.random.Generator(getattr(np.random, state["env_rng"]["bit_generator"])())
    generator.bit_generator.state = state["env_rng"]
    env.unwrapped.np_random = generator


def _episode_return(info) -> tuple[float, int]:
    ep = info["episode"]
    ret, length = ep["r"], ep["l"]
    return float(np.asarray(ret).reshape(-1)[0]), int(np.asarray(length).reshape(-1)[0])


def train(spec: ReferenceRun) -> dict:
    """Run (or resume, or find finished) one reference run; returns its ``summary.json``."""
    from agent.actor.episodes import EpisodeLog, EpisodeRecord
    from learners.checkpoint import CheckpointStore, atomic_write_bytes

    torch.set_num_threads(1)  # as rill's runs: one thread each, so the rates compare
    run = Path(spec.run_dir)
    summary_file = run / "summary.json"
    summary = finished_summary(run, spec.steps)
    if summary is not None:
        log.info("%s: already ran to %d steps", run, summary["steps"])
        return summary
    run.mkdir(parents=True, exist_ok=True)
    spec_file = run / "run.json"
    expected = {k: v for k, v in asdict(spec).items() if k in ("env", "seed")} | {"update_path": "reference"}
    if spec_file.exists():
        found = json.loads(spec_file.read_text())
        clash = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
        if clash:
            raise ReferenceCodeError(f"{run}: holds a run of {found}, not {expected} ({clash})")
    else:
        spec_file.write_text(json.dumps(expected | {"code": str(spec.code), "defaults": DEFAULTS}, indent=1))
    ref = load_reference(spec.code)
    env, agent = make_env_and_agent(ref, spec.env, spec.seed)
    store = CheckpointStore(run / "checkpoints", keep=2)
    found = store.load_latest()
    if found is None:
        step, episode = 0, 0
        episodes = EpisodeLog(run / "metrics" / "episodes.csv", fresh=True)
        s, _ = env.reset(seed=spec.seed)
    else:
        name, tensors, state = found
        restore(ref, env, agent, tensors, state)
        step, episode = state["step"], state["episode"]
        episodes = EpisodeLog(run / "metrics" / "episodes.csv", resume_step=step)
        s, _ = env.reset()
        log.info("%s: resumed from %s at step %d", run, name, step)
    resumed_at = step
    entropy = DEFAULTS["entropy_coeff"]
    last_checkpoint, started, start_step = step, time.monotonic(), step
    try:
        while step < spec.steps:
            step += 1
            a = agent.sample_action(s)
            s_prime, r, terminated, truncated, info = env.step(a)
            agent.update_params(s, a, r, s_prime, terminated or truncated, entropy)
            s = s_prime
            if terminated or truncated:
                ret, length = _episode_return(info)
                episodes.append(EpisodeRecord(step=step, episode=episode, ret=ret, length=length,
                                              wall_time=time.time()))
                episode += 1
                if step - last_checkpoint >= spec.checkpoint_every:
                    tensors, state = capture(ref, env, agent)
                    store.save(step, tensors, state | {"step": step, "episode": episode})
                    last_checkpoint = step
                    rate = (step - start_step) / (time.monotonic() - started)
                    log.info("%s seed %d: step %d/%d, %.0f steps/s, last return %.1f",
                             spec.env, spec.seed, step, spec.steps, rate, ret)
                s, _ = env.reset()
    finally:
        episodes.close()
    elapsed = time.monotonic() - started
    summary = {"env": spec.env, "seed": spec.seed, "steps": step, "episodes": episode,
               "steps_per_s": (step - start_step) / max(elapsed, 1e-9), "update_path": "reference",
               "resumed_at": resumed_at}
    atomic_write_bytes(summary_file, json.dumps(summary, indent=1).encode())
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", required=True, help="checkout of the reference repository")
    parser.add_argument("--env", default="Walker2d-v4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2_000_000)
    parser.add_argument("--run", type=Path, help="run directory (default runs/reference/ENV/seedK)")
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.checkpoint_every < 1:
        parser.error("--steps and --checkpoint-every must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    run = args.run or Path("runs/reference") / args.env / f"seed{args.seed}"
    try:
        spec = ReferenceRun(args.code, args.env, args.seed, args.steps, str(run), args.checkpoint_every)
        return train(spec)
    except ReferenceCodeError as e:
        parser.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
