"""With ``instruction_first`` the prompt is ``<s>``, the instruction, then the image blocks (so, in a
causal backbone, every image token attends to the words); the default keeps SmolVLM's layout. The
policy and the pretraining samples build the same ids, and a saved VLA keeps the choice."""

from __future__ import annotations

import numpy as np

from policies.vla.build import load_vla, tiny_vla
from policies.vla.policy import VLAPolicy


def test_instruction_first_puts_the_words_before_the_images(tmp_path):
    default = VLAPolicy(tiny_vla(state_dim=3, action_dim=2, chunk_size=2))
    first = VLAPolicy(tiny_vla(state_dim=3, action_dim=2, chunk_size=2, instruction_first=True))
    words = default.prompt.instruction_ids("reach the red block")
    image_id = default.prompt.image_token_id
    a, b = default.prompt.ids("reach the red block"), first.prompt.ids("reach the red block")
    assert sorted(a) == sorted(b) and a != b
    assert a[-len(words):] == words and b[1:1 + len(words)] == words and image_id not in b[:1 + len(words)]
    obs = {"state": np.zeros(3, np.float32), "image.front": np.zeros((96, 96, 3), np.uint8),
           "instruction": "reach the red block", "timestamp": 0.0}
    assert first.act(obs).actions.shape == (2, 2)
    first.model.save_pretrained(tmp_path / "vla")
    assert load_vla(tmp_path / "vla").config.instruction_first is True
