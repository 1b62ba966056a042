"""The backbone's input ids: one image block per camera, then the instruction.

``[<s>] + per camera ([<fake_token_around_image>] [<global-img>] <image> * N [<fake_token_around_image>])
+ instruction tokens`` — the SmolVLM / Idefics3 layout for one un-tiled image, with ``N`` visual
tokens per camera. Tokens the tokenizer lacks (a non-SmolVLM tokenizer has no ``<global-img>``)
are left out; ``<image>`` itself is required. The instruction changes once per episode while the
policy runs at the control rate, so the ids of the last instruction are cached.
"""

from __future__ import annotations

import logging

import torch

from policies.base import PolicyInputError
from policies.vla.tokenizer import GLOBAL_IMAGE_TOKEN, IMAGE_BOUNDARY_TOKEN, IMAGE_TOKEN, TokenizerError

log = logging.getLogger(__name__)


def _token_id(tokenizer, token: str) -> int | None:
    """The id of ``token`` if the tokenizer knows it as a whole token, else None."""
    ids = tokenizer.convert_tokens_to_ids([token])
    tid = ids[0] if ids else None
    if tid is None or tid == tokenizer.unk_token_id:
        return None
    return int(tid)


class PromptBuilder:
    """Builds (and caches) the ``[1, L]`` input ids for an instruction."""

    def __init__(self, tokenizer, n_cameras: int, image_tokens_per_camera: int, image_token_id: int,
                 max_instruction_tokens: int, instruction_first: bool = False) -> None:
        image_id = _token_id(tokenizer, IMAGE_TOKEN)
        if image_id is None:
            raise TokenizerError(f"the tokenizer has no {IMAGE_TOKEN!r} token")
        if image_id != image_token_id:
            raise TokenizerError(f"the tokenizer's {IMAGE_TOKEN!r} is id {image_id}, "
                                 f"but the backbone expects image_token_id {image_token_id}")
        self.tokenizer = tokenizer
        self.image_token_id = image_id
        self.max_instruction_tokens = int(max_instruction_tokens)
        boundary = _token_id(tokenizer, IMAGE_BOUNDARY_TOKEN)
        glob = _token_id(tokenizer, GLOBAL_IMAGE_TOKEN)
        block = [boundary, glob, *[image_id] * image_tokens_per_camera, boundary]
        bos = tokenizer.bos_token_id
        self.instruction_first = bool(instruction_first)
        self.images = [t for t in block * n_cameras if t is not None]
        self.bos = [bos] if bos is not None else []
        self.prefix = self.bos + self.images  # what comes before the instruction, image-first
        self.tokenizations = 0  # how often an instruction was actually tokenized (cache misses)
        self._instruction: str | None = None
        self._ids: torch.Tensor | None = None

    def instruction_ids(self, instruction: str) -> list[int]:
        """The instruction's token ids (no special tokens; a literal ``<image>`` stays text)."""
        ids = self.tokenizer(instruction, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        if self.image_token_id in ids:  # a tokenizer that ignores split_special_tokens
            raise PolicyInputError(f"instruction contains the image token {IMAGE_TOKEN!r}: {instruction!r}")
        if len(ids) > self.max_instruction_tokens:
            log.warning("instruction of %d tokens cut to max_instruction_tokens=%d: %r", len(ids),
                        self.max_instruction_tokens, instruction)
            ids = ids[: self.max_instruction_tokens]
        return ids

    def ids(self, instruction: str) -> list[int]:
        """The whole prompt's ids: ``<s>``, the image blocks and the instruction, or with
        ``instruction_first`` ``<s>``, the instruction, then the image blocks."""
        words = self.instruction_ids(instruction)
        return self.bos + words + self.images if self.instruction_first else self.prefix + words

    def __call__(self, instruction: str) -> torch.Tensor:
        if instruction != self._instruction:
            ids = self.ids(instruction)
            self._ids = torch.tensor([ids], dtype=torch.long)
            self._instruction = instruction
            self.tokenizations += 1
        return self._ids
