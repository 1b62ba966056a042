"""Privileged targets in pretraining: demonstrations keep the simulator's ``privileged`` view, a
linear probe on the VLA's features learns to predict chosen entries of it beside imitation, and a
run with the probe resumes bit for bit (probe included). Demonstrations without the view, indices
past its end and malformed settings are refused by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agent.demos.episodes import DemoSetError, read_demos
from agent.pretrain.config import PretrainConfig
from agent.pretrain.data import BCSamples
from agent.pretrain.scenes import SceneError, collect_scenes
from agent.pretrain.trainer import PROBE_FILE, Pretrainer, PretrainStateError
from hal.errors import ConfigError
from policies.vla.build import tiny_vla
from tests.agent.pretrain.conftest import arm, record

BLOCKS = [6, 7, 8, 9, 10, 11]  # the tabletop's red, blue and yellow x/y in its full state


def _config(demos: Path, out: Path, **over) -> PretrainConfig:
    values = {"demos": demos, "out": out, "steps": 6, "batch_size": 4, "warmup_steps": 50, "val_episodes": 2,
              "checkpoint_every": 2, "log_every": 2, "eval_every": 1000, "chunk_size": 4,
              "privileged_targets": BLOCKS, **over}
    return PretrainConfig.from_dict(values)


def test_demonstrations_keep_the_privileged_view_and_samples_carry_it(small_demos):
    demos = read_demos(small_demos)
    step = demos.episodes[0].steps[5]
    assert step.obs["privileged"].shape == (20,)  # the proprio arm's state is 6 wide; this is all of it
    model = tiny_vla(state_dim=6, action_dim=2, chunk_size=4, image_size=32)
    samples = BCSamples(demos, model, privileged=BLOCKS)  # counterfactual samples too
    assert samples.privileged.shape == (sum(e.length for e in demos.episodes), 6)
    batch = samples.batch(np.arange(len(samples)))
    expected = np.stack([np.asarray(t.obs["privileged"])[BLOCKS] for e in demos.episodes for t in e.steps])
    # every sample, counterfactual ones included, carries the scene of the frame it shows
    assert np.array_equal(batch.privileged.numpy(), expected[samples.frame_index])
    assert BCSamples(demos, model).batch(np.arange(3)).privileged is None


def test_targets_are_standardised_within_each_instruction(small_demos):
    """Where the task alone says where things are, the probe must earn nothing: each instruction's
    frames get mean 0 and spread 1 per entry, and an entry that does not vary within a task is
    masked out rather than divided by zero."""
    demos = read_demos(small_demos)
    model = tiny_vla(state_dim=6, action_dim=2, chunk_size=4, image_size=32)
    dims = [*BLOCKS, 12]
    samples = BCSamples(demos, model, counterfactual=False, privileged=dims)
    samples.privileged[:, -1] = 0.25  # as if the target never moved on this table
    raw = samples.privileged.copy()
    stats = samples.privileged_statistics()
    assert len(stats) == len({e.instruction for e in demos.episodes}) >= 2
    samples.set_privileged_targets(stats)
    for text in stats:
        rows = samples.frame_instruction == text
        values, mask = samples.privileged[rows], samples.privileged_mask[rows]
        varies = raw[rows].std(0) > 1e-6
        assert np.array_equal(mask[0], varies.astype(np.float32)) and not varies[-1]
        assert np.allclose(values[:, varies].mean(0), 0, atol=1e-5)
        assert np.allclose(values[:, varies].std(0), 1, atol=1e-4)
        assert not values[:, ~varies].any()
    other = BCSamples(demos, model, counterfactual=False, privileged=dims)
    other.set_privileged_targets({})  # a task the statistics never saw: nothing to learn from it
    assert not other.privileged_mask.any()


def test_a_run_with_the_probe_resumes_bit_for_bit(small_demos, tmp_path):
    # warm-up over the whole run: the learning rate does not depend on the run's length
    run = {"warmup_steps": 100, "checkpoint_every": 50, "log_every": 10, "privileged_weight": 5.0, "lr": 5e-3}
    whole = Pretrainer(_config(small_demos, tmp_path / "whole", steps=100, **run))
    initial = whole.probe.weight.detach().clone()
    whole.run()
    Pretrainer(_config(small_demos, tmp_path / "cut", steps=50, **run)).run()
    resumed = Pretrainer(_config(small_demos, tmp_path / "cut", steps=100, **run), resume=True)
    assert resumed.step == 50
    resumed.run()
    for name in ("model/model.safetensors", f"checkpoints/last/{PROBE_FILE}"):
        a, b = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "cut" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    rows = [json.loads(x) for x in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    probe = [r["privileged_loss"] for r in rows if "privileged_loss" in r]
    assert len(probe) == 10 and all(math.isfinite(v) for v in probe)
    assert not torch.equal(whole.probe.weight, initial)
    # How well a probe's training makes features carry a quantity is measured where it matters,
    # on Meta-World (bench.feature_probe, docs/results/metaworld.md), not on these 12 episodes.
    final = json.loads((tmp_path / "whole" / "eval.json").read_text())
    # held out: scored only on the tasks the training set saw vary (paraphrases are tasks of their own)
    stats = whole.train.privileged_statistics()
    seen = [t for t in set(whole.val.frame_instruction) if t in stats and (stats[t][1] > 1e-6).any()]
    if seen:
        assert final["val_privileged_loss"] > 0
        assert all("val_privileged_loss" in r for r in rows if "loss" in r)
    else:
        assert "val_privileged_loss" not in final and not [r for r in rows if "val_privileged_loss" in r]
    # the saved VLA is the same kind of VLA as without the probe: the probe is not part of it
    saved = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    assert not [k for k in saved if "probe" in k]


def test_the_probe_shapes_the_features_only_through_its_loss(small_demos, tmp_path):
    """Weight 0: the VLA learns exactly what it learns without a probe; weight > 0: its features
    (and so the backbone under them) are pulled toward the privileged targets."""
    weights = {}
    for name, over in (("none", {"privileged_targets": []}), ("zero", {"privileged_weight": 0.0}),
                       ("five", {"privileged_weight": 5.0})):
        Pretrainer(_config(small_demos, tmp_path / name, steps=4, **over)).run()
        weights[name] = load_file(str(tmp_path / name / "model" / "model.safetensors"))
    assert all(torch.equal(weights["none"][k], weights["zero"][k]) for k in weights["none"])
    moved = [k for k in weights["none"] if not torch.equal(weights["none"][k], weights["five"][k])]
    assert any(k.startswith("feature_head") for k in moved) and any(k.startswith("backbone") for k in moved)


def test_a_run_without_the_probe_writes_no_probe(small_demos, tmp_path):
    run = Pretrainer(_config(small_demos, tmp_path / "plain", steps=2, privileged_targets=[]))
    run.run()
    assert run.probe is None and not (tmp_path / "plain" / "checkpoints" / "last" / PROBE_FILE).exists()
    assert "privileged_loss" not in (tmp_path / "plain" / "metrics.jsonl").read_text()


def test_what_the_probe_cannot_use_is_refused_by_name(small_demos, tmp_path):
    with pytest.raises(DemoSetError, match=r"privileged view has 20 entries, so index 20 does not exist"):
        Pretrainer(_config(small_demos, tmp_path / "wide", privileged_targets=[3, 20]))
    full = tmp_path / "full-state-demos"  # the whole state is the observation: no privileged view
    assert record(full, 4, 32, state="full").episodes == 4
    with pytest.raises(DemoSetError, match=r"kept no 'privileged' view .*record them again"):
        Pretrainer(_config(full, tmp_path / "nothing", val_episodes=1, privileged_targets=[0]))
    for bad, message in (([-1], "non-negative indices"), ("6", "non-negative indices"),
                         ([True], "non-negative"), ([6, 6], "names an index twice")):
        with pytest.raises(ConfigError, match=rf"pretrain\.privileged_targets .*{message}"):
            _config(small_demos, tmp_path / "x", privileged_targets=bad)
    with pytest.raises(ConfigError, match=r"pretrain\.privileged_weight must be finite, got nan"):
        _config(small_demos, tmp_path / "x", privileged_weight=float("nan"))
    with pytest.raises(ConfigError, match=r"pretrain\.privileged_weight must be >= 0"):
        _config(small_demos, tmp_path / "x", privileged_weight=-1.0)
    # a run with the probe resumes only with the probe it saved
    Pretrainer(_config(small_demos, tmp_path / "run", steps=2)).run()
    (tmp_path / "run" / "checkpoints" / "last" / PROBE_FILE).write_bytes(b"not safetensors")
    with pytest.raises(PretrainStateError, match=r"privileged_probe\.safetensors: unreadable"):
        Pretrainer(_config(small_demos, tmp_path / "run", steps=4), resume=True)
    with pytest.raises(PretrainStateError, match="another config"):
        Pretrainer(_config(small_demos, tmp_path / "run", steps=4, privileged_targets=[6, 7]), resume=True)


def _eval_arm(**params) -> dict:
    return arm(32, 0, **params)


def test_probe_scenes_are_fresh_seeded_scenes_with_their_privileged_view():
    from hal.config import RobotConfig

    robot = RobotConfig(**_eval_arm())
    a, b = collect_scenes(robot, 5, 7), collect_scenes(robot, 5, 7)
    assert len(a.episodes) == 5 and all(e.length == 1 for e in a.episodes)
    first = [e.steps[0].obs for e in a.episodes]
    assert all(o["privileged"].shape == (20,) and o["image.front"].shape == (32, 32, 3) for o in first)
    # the same seed, the same scenes; scenes differ from each other and from another seed's
    assert all(np.array_equal(x.steps[0].obs["privileged"], y.steps[0].obs["privileged"])
               for x, y in zip(a.episodes, b.episodes))
    blocks = np.stack([o["privileged"][BLOCKS] for o in first])
    assert len({tuple(np.round(r, 4)) for r in blocks}) == 5
    other = collect_scenes(robot, 5, 8)
    assert not np.array_equal(other.episodes[0].steps[0].obs["privileged"], first[0]["privileged"])
    with pytest.raises(SceneError, match=r"no 'privileged' view"):
        collect_scenes(RobotConfig(**_eval_arm(state="full")), 2, 0)


def test_a_multi_task_robot_gives_scenes_of_every_task():
    pytest.importorskip("metaworld")
    from hal.config import RobotConfig

    params = {"tasks": ["reach-v3", "drawer-open-v3"], "image_height": 32, "image_width": 32}
    robot = RobotConfig(name="sawyer", type="sim-metaworld", params=params)
    pool = collect_scenes(robot, 5, 0)
    assert [e.instruction for e in pool.episodes] == ["Reach a goal position"] * 3 + ["Open a drawer"] * 2
    assert all(e.steps[0].obs["privileged"].shape == (39,) for e in pool.episodes)


def test_a_run_with_probe_scenes_learns_on_them_and_resumes_bit_for_bit(small_demos, tmp_path):
    run = {"warmup_steps": 100, "checkpoint_every": 3, "log_every": 3, "probe_scenes": 30, "probe_seed": 5,
           "eval_robot": _eval_arm(), "eval_episodes": 0}
    whole = Pretrainer(_config(small_demos, tmp_path / "whole", steps=6, **run))
    assert len(whole.scenes) == 30
    # the per-task statistics come from the scenes: they are standardised to mean 0 over each task
    texts = whole.scenes.frame_instruction
    shared = [t for t in set(texts) if (texts == t).sum() >= 2]  # a paraphrase seen once has no spread
    assert shared
    for text in shared:
        values, mask = whole.scenes.privileged[texts == text], whole.scenes.privileged_mask[texts == text]
        assert mask.all() and np.allclose(values.mean(0), 0, atol=1e-5)
    whole.run()
    Pretrainer(_config(small_demos, tmp_path / "cut", steps=3, **run)).run()
    resumed = Pretrainer(_config(small_demos, tmp_path / "cut", steps=6, **run), resume=True)
    resumed.run()
    for name in ("model/model.safetensors", f"checkpoints/last/{PROBE_FILE}"):
        a, b = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "cut" / name))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # without the scenes the same run ends elsewhere: they were learned on
    plain = Pretrainer(_config(small_demos, tmp_path / "plain", steps=6, **{**run, "probe_scenes": 0}))
    plain.run()
    assert not torch.equal(plain.probe.weight, whole.probe.weight)
    with pytest.raises(ConfigError, match=r"pretrain\.probe_scenes needs pretrain\.privileged_targets"):
        _config(small_demos, tmp_path / "x", probe_scenes=10, privileged_targets=[])
    with pytest.raises(ConfigError, match=r"pretrain\.probe_scenes needs pretrain\.eval_robot"):
        _config(small_demos, tmp_path / "x", probe_scenes=10)
    with pytest.raises(ConfigError, match=r"pretrain\.probe_scenes must be >= 0"):
        _config(small_demos, tmp_path / "x", probe_scenes=-1, eval_robot=_eval_arm())
