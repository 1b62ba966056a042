"""``rill pretrain`` as a run: it resumes bit for bit from its last checkpoint, writes the VLA in
the Hugging Face layout (loaded strictly), TensorBoard scalars and metrics, and refuses what it
cannot use: demonstrations that do not fit the VLA, a damaged checkpoint, a resume under another
config, a run directory already in use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agent.demos.episodes import DemoSetError
from agent.pretrain.config import PretrainConfig
from agent.pretrain.trainer import Pretrainer, PretrainStateError
from hal.errors import ConfigError
from policies.vla.build import load_vla, tiny_vla


def _config(demos: Path, out: Path, **over) -> PretrainConfig:
    # warmup covers every step: the learning rate then does not depend on the run's length
    values = {"demos": demos, "out": out, "steps": 6, "batch_size": 4, "warmup_steps": 50, "val_episodes": 2,
              "checkpoint_every": 2, "log_every": 2, "eval_every": 1000, "chunk_size": 4, **over}
    return PretrainConfig.from_dict(values)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_a_resumed_run_continues_bit_for_bit(small_demos, tmp_path):
    whole = Pretrainer(_config(small_demos, tmp_path / "whole"))
    whole.run()
    first = Pretrainer(_config(small_demos, tmp_path / "cut", steps=4))
    first.run()
    resumed = Pretrainer(_config(small_demos, tmp_path / "cut", steps=6), resume=True)
    assert resumed.step == 4
    resumed.run()
    a, b = _weights(tmp_path / "whole" / "model"), _weights(tmp_path / "cut" / "model")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    last = _weights(tmp_path / "whole" / "checkpoints" / "last" / "model")
    assert all(torch.equal(last[k], a[k]) for k in a)  # the final model is the last checkpoint's
    rows = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    assert [r["step"] for r in logged] == [2, 4, 6] and all(r["loss"] > 0 for r in logged)
    assert list((tmp_path / "whole" / "tensorboard").glob("events.out.tfevents.*"))
    model = load_vla(tmp_path / "whole" / "model")  # strict: every tensor, the tokenizer, the config
    assert model.backbone_frozen and model.config.state_dim == 6 and model.config.camera_names == ["front"]
    assert model.config.image_size == 32 and model.config.chunk_size == 4


def test_what_pretraining_cannot_use_is_refused_by_name(small_demos, tmp_path):
    Pretrainer(_config(small_demos, tmp_path / "run", steps=2)).run()
    with pytest.raises(PretrainStateError, match="already holds a pretraining run"):
        Pretrainer(_config(small_demos, tmp_path / "run", steps=4))
    with pytest.raises(PretrainStateError, match="another config"):
        Pretrainer(_config(small_demos, tmp_path / "run", steps=4, lr=1e-3), resume=True)
    optimizer = tmp_path / "run" / "checkpoints" / "last" / "optimizer.safetensors"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    with pytest.raises(PretrainStateError, match=r"optimizer\.safetensors: unreadable"):
        Pretrainer(_config(small_demos, tmp_path / "run", steps=4), resume=True)
    with pytest.raises(PretrainStateError, match="nothing to resume"):
        Pretrainer(_config(small_demos, tmp_path / "fresh"), resume=True)
    # A VLA that reads 96x96 frames and a 20-wide state cannot learn from 32x32, 6-wide demonstrations
    tiny_vla(state_dim=20, action_dim=2, chunk_size=4).save_pretrained(tmp_path / "vla96")
    with pytest.raises(DemoSetError, match=r"state width 6, expected 20; .*frames \(32, 32, 3\), "
                                           r"expected \(96, 96"):
        Pretrainer(_config(small_demos, tmp_path / "other", vla=tmp_path / "vla96"))
    with pytest.raises(ConfigError, match=r"pretrain\.trainable must be one of all, heads"):
        _config(small_demos, tmp_path / "x", trainable="backbone")
    with pytest.raises(ConfigError, match="missing out"):
        PretrainConfig.from_dict({"demos": str(small_demos)})
    # extra: fields of the new VLA's config; a typo used to be written into its config.json, unused
    with pytest.raises(ConfigError, match=r"unknown VLA setting 'instruction_frist'; did you mean "
                                          r"'instruction_first'\?"):
        _config(small_demos, tmp_path / "x", extra={"instruction_frist": True})
    with pytest.raises(ConfigError, match=r"pretrain\.extra\.state_dim: set from the demonstrations"):
        _config(small_demos, tmp_path / "x", extra={"state_dim": 3})


def test_samples_carry_the_experts_labels_and_its_counterfactuals(small_demos):
    """Each step of the expert's demonstrations is a sample; each also gives one more sample per
    other block: the same frame and state, the instruction naming that block, and the expert's
    action toward it as the target. The counterfactual instructions differ from the real one only
    in the colour word."""
    from agent.demos.episodes import read_demos
    from agent.pretrain.data import BCSamples

    demos = read_demos(small_demos)
    model = tiny_vla(state_dim=6, action_dim=2, chunk_size=4, image_size=32)
    plain = BCSamples(demos, model, counterfactual=False)
    both = BCSamples(demos, model)
    steps = sum(e.length for e in demos.episodes)
    assert len(plain) == steps and len(both) == 3 * steps and both.counterfactuals == 2 * steps
    step = demos.episodes[0].steps[0]
    texts = set(step.extras["counterfactual"])
    assert len(texts) == 2 and step.obs["instruction"] not in texts
    assert all(len(t.split()) == len(step.obs["instruction"].split()) for t in texts)
    swapped = {w for t in texts for w in t.split()} - set(step.obs["instruction"].split())
    assert swapped <= {"red", "blue", "yellow"} and len(swapped) == 2
    rows = [k for k in range(len(both)) if both.frame_index[k] == 0]
    assert len(rows) == 3 and len({int(both.prompt_index[k]) for k in rows}) == 3  # one frame, three texts
    batch = both.batch(np.array(rows))
    assert torch.equal(batch.pixel_values[0], batch.pixel_values[1])
    assert torch.equal(batch.state[0], batch.state[2])
    assert not torch.equal(batch.actions[0], batch.actions[1])  # another block, another way to go


def test_the_pretrain_configs_rill_ships_are_valid():
    shipped = sorted((Path(__file__).resolve().parents[3] / "config").glob("pretrain_*.yaml"))
    assert len(shipped) >= 3
    for path in shipped:
        config = PretrainConfig.from_yaml(path)
        assert config.steps > 0 and config.eval_robot is not None, path
    goal = PretrainConfig.from_yaml(shipped[0].with_name("pretrain_metaworld_mt10_goal.yaml"))
    assert goal.privileged_targets == [36, 37, 38] and str(goal.vla) == "pretrained:metaworld-mt10"
