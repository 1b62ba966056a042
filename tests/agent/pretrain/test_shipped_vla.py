"""The VLA rill ships (``policies/vla/pretrained/tabletop-reach``, made by ``rill pretrain
config/pretrain_tabletop_reach.yaml``) sees and reads: on held-out scenes of the arm whose state
says nothing of the blocks it reaches the block its instruction names; with the camera blanked it
fails; with the instruction re-pointed it goes to the other block; policies that neither see nor
read fall far short of it. It loads strictly and drives the arm through the control loop."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import dataclasses

import pytest
import torch

from agent.experts.baselines import ForwardPolicy, MiddlePolicy, RandomPolicy
from agent.pretrain.evaluate import InstructionSwap, blank_cameras, evaluate_policy
from hal.config import RobotConfig
from policies.vla.build import load_vla, pretrained_vla_path
from policies.vla.checkpoint import VLACheckpointError
from policies.vla.policy import VLAPolicy

COLORS = ["red", "blue", "yellow"]
# A frame per chunk of four (the VLA's): it plans from the very frames it would have at every tick
# (sim/camera_rate.py; the same episodes and outcomes), for less rendering.
ARM = RobotConfig("arm", "sim-tabletop", {"task": "reach", "state": "proprio", "colors": COLORS,
                                          "cameras": ["front"], "max_delta": 1.0, "camera_every": 4})
EPISODES, SEED = 15, 300_000  # held out: demonstrations used seeds from 0, pretraining's checks 100,000


@pytest.fixture(scope="module")
def vla():
    torch.set_num_threads(1)
    model = load_vla(pretrained_vla_path("tabletop-reach"))
    assert model.backbone_frozen and model.config.state_dim == 6 and model.config.instruction_first
    assert model.config.chunk_size == ARM.params["camera_every"]
    return VLAPolicy(model)


def test_it_reaches_the_named_block_and_fails_blind(vla):
    seeing = evaluate_policy(vla, ARM, EPISODES, SEED)
    blind = evaluate_policy(vla, ARM, EPISODES, SEED, edit=blank_cameras)
    floor = max(evaluate_policy(p, ARM, EPISODES, SEED).success_rate
                for p in (RandomPolicy(seed=SEED), ForwardPolicy(), MiddlePolicy()))
    assert seeing.episodes == blind.episodes == EPISODES
    assert seeing.success_rate >= 0.6, seeing
    assert blind.success_rate <= seeing.success_rate - 0.4, (blind, seeing)
    assert floor <= seeing.success_rate - 0.4, (floor, seeing)


def test_it_goes_where_the_instruction_says(vla):
    swap = InstructionSwap(COLORS)
    arm = dataclasses.replace(ARM, params={**ARM.params, "terminate_on_success": False})
    result = evaluate_policy(vla, arm, EPISODES, SEED, edit=swap.edit, on_tick=swap.on_tick)
    assert len(swap.closest) == EPISODES
    assert swap.reached_rate >= 0.5, swap.closest  # chance: about one in three
    assert result.success_rate <= 0.3, result  # and it ends away from the block the scene asked for


def test_an_unknown_shipped_name_is_refused():
    with pytest.raises(VLACheckpointError, match=r"no shipped VLA 'tabletop-push'; rill ships "
                                                 r"\['metaworld-mt10', 'tabletop-reach'\]"):
        pretrained_vla_path("tabletop-push")
