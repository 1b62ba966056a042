"""``python -m bench.walk``: the modules and hand-offs a transition's round trip crosses, measured.

An actor (``ActorRunner`` on a gymnasium env) streams to a learner (``LearnerService``) in this
process over loopback; after a warm-up, every call made in a steady-state window (all threads) is
traced. A module is counted when one of rill's functions in it runs; a hand-off is a distinct
caller-module -> callee-module pair among rill's modules. The window covers many transitions and
several weight publications, so the counts are the whole loop: observation -> transition -> link
-> cache -> update -> weights -> back into the actor's policy. Run it on two checkouts to compare
(it uses only ``agent.actor.ActorRunner`` and ``learners.service.LearnerService``).
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
    return {
        "env": env,
        "window_steps": window,
        "weights_version_advance": weights,
        "modules": len(modules),
        "packages": len({m.split(".")[0] for m in modules}),
        "hand_offs": len(edges),
        "module_list": sorted(modules),
        "edge_list": sorted(f"{a} -> {b}" for a, b in edges),
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
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
