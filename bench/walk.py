"""``python -m bench.walk``: the modules and hand-offs a transition's round trip crosses, measured.

An actor (``ActorRunner`` on a gymnasium env) streams to a learner (``LearnerService``) in this
process over loopback; after a warm-up, every call made in a steady-state window (all threads) is
traced. A module is counted when one of rill's functions in it runs; a hand-off is a distinct
caller-module -> callee-module pair among rill's modules. The window covers many transitions and
several weight publications, so the counts are the whole loop: observation -> transition -> link
-> cache -> update -> weights -> back into the actor's policy. Run it on two checkouts to compare
(it uses only ``agent.actor.ActorRunner`` and ``learners.service.LearnerService``).

The *data path* is the narrower count a reader following the transition sees: only calls that
pass it on in one of its forms (a ``Transition`` or a list of them, an array, encoded bytes of 32
or more, a tensor, or a dict of these: the weights), listed function by function in
``data_path``; calls that pass none of these (a wake-up, a counter, a lock, a config lookup) are
left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

PACKAGES = ("agent", "hal", "policies", "learners", "sim")


def _ours(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in PACKAGES


def _carries_data(value, nested: bool = False) -> bool:
    import numpy as np

    kind = type(value)
    if kind.__name__ == "Transition" or (isinstance(value, np.ndarray) and value.size > 1):
        return True
    if isinstance(value, (bytes, bytearray, memoryview)) and len(value) >= 32:
        return True
    if kind.__module__.startswith("torch") and kind.__name__ in ("Tensor", "Parameter"):
        return True
    if not nested and isinstance(value, (list, tuple)) and value:
        return any(_carries_data(v, True) for v in value[:4])
    if not nested and isinstance(value, dict) and value:
        return any(_carries_data(v, True) for v in list(value.values())[:4])
    return False


def walk(env: str = "InvertedPendulum-v5", warmup: int = 1500, window: int = 3000) -> dict:
    import numpy as np

    from agent.actor import ActorConfig, ActorRunner
    from learners.service import LearnerConfig, LearnerService
    from sim.envs import action_layout, make_env

    tmp = Path(tempfile.mkdtemp(prefix="rill-walk-"))
    probe = make_env(env)
    obs_dim, layout = int(np.prod(probe.observation_space.shape)) + 1, action_layout(probe)  # + time feature
    probe.close()
    modules: Counter[str] = Counter()
    edges: Counter[tuple[str, str]] = Counter()
    data_calls: Counter[tuple[str, str]] = Counter()  # (caller function, callee function)
    recording = threading.Event()

    def profile(frame, event, arg):
        if event != "call" or not recording.is_set():
            return
        callee = frame.f_globals.get("__name__")
        if not _ours(callee):
            return
        modules[callee] += 1
        caller = frame.f_back.f_globals.get("__name__") if frame.f_back is not None else None
        if _ours(caller) and caller != callee:
            edges[(caller, callee)] += 1
            code = frame.f_code
            arguments = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
            local = frame.f_locals
            if any(_carries_data(local.get(a)) for a in arguments if a != "self"):
                sender = f"{caller}:{frame.f_back.f_code.co_qualname}"
                data_calls[(sender, f"{callee}:{code.co_qualname}")] += 1

    # Installed before any thread of the learner or the actor starts, so all of them are traced.
    threading.setprofile(profile)
    sys.setprofile(profile)
    service = LearnerService(LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp / "learner", obs_dim=obs_dim,
                                           durability="none", publish_every_updates=100, **layout)).start()
    runner = ActorRunner(ActorConfig(learner=service.endpoint, env=env, actor_id="walker", run_dir=tmp / "a",
                                     durability="none", max_lag=64))
    versions = {}

    def on_step(r) -> None:
        if r.steps == warmup:
            versions["start"] = r.version
            recording.set()
        elif r.steps == warmup + window:
            recording.clear()
            versions["end"] = r.version

    try:
        runner.run(steps=warmup + window, on_step=on_step)
    finally:
        recording.clear()
        sys.setprofile(None)
        threading.setprofile(None)
        runner.close(drain_s=5.0)
        service.stop()
    weights = versions.get("end", 0) - versions.get("start", 0)
    data_modules = {f.split(":")[0] for call in data_calls for f in call}
    data_pairs = {(a.split(":")[0], b.split(":")[0]) for a, b in data_calls}
    return {
        "env": env,
        "window_steps": window,
        "weights_version_advance": weights,
        "modules": len(modules),
        "packages": len({m.split(".")[0] for m in modules}),
        "hand_offs": len(edges),
        "module_list": sorted(modules),
        "edge_list": sorted(f"{a} -> {b}" for a, b in edges),
        "data_modules": len(data_modules),
        "data_hand_offs": len(data_pairs),
        "data_path": sorted(f"{a} -> {b}" for a, b in data_calls),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short window (CI)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = walk(warmup=300, window=600) if args.quick else walk()
    print(f"modules crossed: {result['modules']} in {result['packages']} packages; "
          f"hand-offs (distinct module -> module calls): {result['hand_offs']}; "
          f"the actor's weights advanced {result['weights_version_advance']} learner updates in a "
          f"{result['window_steps']}-step window")
    print(f"data path (calls that pass the transition, its bytes or the weights on): "
          f"{result['data_modules']} modules, {result['data_hand_offs']} module -> module hand-offs")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
