"""Inference latency of the tiny default VLA on this CPU (batch 1, one 96x96 camera frame).

    python -m bench.vla_latency [--quick] --json OUT

Times ``VLAPolicy.act`` end to end (input checks, image preprocessing, backbone, heads) with one
torch thread and with all threads, with the instruction cached (the usual case: it changes once
per episode) and changing on every call, and ``ResidualPolicy.act`` (the VLA plus the stream-x
residual actor). Each row: median and p99 over the timed calls, after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from bench.common import machine, print_table, write_json

INSTRUCTIONS = ["pick up the red cube", "put the cup on the plate", "open the top drawer slowly",
                "push the blue block to the left"]


def _observation(rng: np.random.Generator, image_size: int, state_dim: int) -> dict:
    return {"state": rng.standard_normal(state_dim).astype(np.float32),
            "image.front": rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8),
            "instruction": INSTRUCTIONS[0], "timestamp": time.monotonic()}


def measure(policy, obs: dict, calls: int, warmup: int, vary_instruction: bool = False) -> dict:
    for _ in range(warmup):
        policy.act(obs)
    times = []
    for i in range(calls):
        if vary_instruction:
            obs = {**obs, "instruction": INSTRUCTIONS[i % len(INSTRUCTIONS)]}
        start = time.perf_counter()
        policy.act(obs)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return {"median_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "calls": calls}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few calls per row (CI)")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args(argv)
    from policies.vla import ResidualPolicy, VLAPolicy, tiny_vla

    calls, warmup = (20, 3) if args.quick else (300, 20)
    model = tiny_vla(state_dim=8, action_dim=7, chunk_size=8, seed=0)
    vla = VLAPolicy(model)
    residual = ResidualPolicy(vla, scale=0.1, seed=0)
    obs = _observation(np.random.default_rng(0), model.config.image_size, 8)
    all_threads = os.cpu_count() or 1
    previous = torch.get_num_threads()
    results = {}
    try:
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            results[f"vla_{threads}t"] = measure(vla, obs, calls, warmup)
            results[f"vla_new_instruction_{threads}t"] = measure(vla, obs, calls, warmup,
                                                                 vary_instruction=True)
            results[f"vla_residual_{threads}t"] = measure(residual, obs, calls, warmup)
    finally:
        torch.set_num_threads(previous)
    params = sum(p.numel() for p in model.parameters())
    rows = [[name, r["median_ms"], r["p99_ms"], r["calls"]] for name, r in results.items()]
    print_table(f"VLAPolicy.act latency, tiny VLA ({params / 1e6:.2f} M params), batch 1, "
                f"{model.config.image_size}x{model.config.image_size} image",
                ["case", "median ms", "p99 ms", "calls"], rows, width=110)
    write_json(args.json, {**results, "_meta": {
        "quick": args.quick, "params": params,
        "backbone_params": sum(p.numel() for p in model.backbone.parameters()),
        "image_size": model.config.image_size, "prompt_tokens": int(vla.prompt(INSTRUCTIONS[0]).shape[1]),
        "chunk_size": model.config.chunk_size, "action_dim": model.config.action_dim, **machine()}})
    return results


if __name__ == "__main__":
    main()
