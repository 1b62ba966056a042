"""Behaviour-cloning samples from demonstrations, in the VLA's own input format.

Every step ``t`` of a demonstration episode becomes one sample: the camera frames and the
instruction it was acted on (as the VLA's prompt ids), the state, and the chunk of the next
``H`` actions the demonstrator meant from there (its ``label``s where it acted with noise, else
the actions sent: ``[t : t + H]``), with a mask where the
episode ended before the chunk did. A chunk, not one action, because the VLA plans chunks and the
control loop executes them.

Frames stay uint8 in memory (a 96x96 frame is 27 KB; a few hundred demonstrations fit easily) and
are normalised per batch, with the same arithmetic as ``policies.vla.preprocess``. Augmentation
(``shift``): each frame of a batch is translated by up to ``shift`` pixels (edge pixels repeated),
so a policy learnt from a few dozen scenes does not key on exact pixel positions.

Counterfactual samples: where a demonstration step carries ``counterfactual`` labels (a scripted
expert's action under each other instruction, for the same frame and state), each becomes a sample
too, its target chunk that action held for ``H`` ticks. The same picture with different words and
different targets is what teaches the policy to read.

Privileged targets (``privileged``): where demonstrations kept the simulator's ``privileged`` view
(``rill demos record`` keeps it when the robot has one), chosen entries of it (e.g. Meta-World's
goal position) come with each sample, for an auxiliary loss that asks the VLA's features to carry
what the camera shows but imitation alone did not make them see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from agent.demos.episodes import DemoFeatures, DemoSet, DemoSetError
from policies.vla.model import VLAModel
from policies.vla.prompt import PromptBuilder


@dataclass
class BCBatch:
    input_ids: torch.Tensor  # [B, L] long, right-padded
    attention_mask: torch.Tensor  # [B, L]
    pixel_values: torch.Tensor  # [B, n_cameras, 3, S, S]
    state: torch.Tensor  # [B, state_dim]
    actions: torch.Tensor  # [B, H, A]
    mask: torch.Tensor  # [B, H]: 1 where the chunk's step lies inside the episode
    privileged: torch.Tensor | None = None  # [B, K]: the privileged targets, where asked for
    privileged_mask: torch.Tensor | None = None  # [B, K]: 1 where a target is defined


def vla_features(model: VLAModel) -> DemoFeatures:
    """What a demonstration set must carry for ``model``: its state width, cameras, action width."""
    c = model.config
    return DemoFeatures(c.state_dim, {cam: (c.image_size, c.image_size, 3) for cam in c.camera_names},
                        c.action_dim)


def privileged_view(demos: DemoSet, episode: int, dims: list[int]) -> np.ndarray:
    """``[T, len(dims)]`` entries ``dims`` of an episode's ``privileged`` view, refused by name
    where the demonstrations did not keep it or it is narrower than ``dims`` asks."""
    ep = demos.episodes[episode]
    rows = [t.obs.get("privileged") for t in ep.steps]
    if any(r is None for r in rows):
        raise DemoSetError(f"demonstrations {demos.path}: episode {ep.episode} of {ep.actor_id} kept no "
                            f"'privileged' view (recorded from a robot without one, or before rill kept "
                            f"it); privileged targets need it: record them again")
    view = np.stack([np.asarray(r, np.float32).reshape(-1) for r in rows])
    if max(dims) >= view.shape[1]:
        raise DemoSetError(f"demonstrations {demos.path}: the privileged view has {view.shape[1]} "
                            f"entries, so index {max(dims)} does not exist")
    return view[:, dims]


class BCSamples:
    """All steps of ``demos`` (checked against ``model``'s features) as behaviour-cloning samples;
    with ``privileged`` (indices), those entries of each step's privileged view as well."""

    def __init__(self, demos: DemoSet, model: VLAModel, episodes: list[int] | None = None,
                 counterfactual: bool = True, privileged: list[int] | None = None) -> None:
        demos.check_matches(vla_features(model), "the VLA")
        c = model.config
        self.chunk_size, self.cameras = c.chunk_size, list(c.camera_names)
        prompt = PromptBuilder(model.tokenizer, len(self.cameras), c.image_tokens_per_camera,
                               int(c.vlm_config.image_token_id), c.max_instruction_tokens,
                               c.instruction_first)
        self.pad_id = int(model.tokenizer.pad_token_id)
        numbers = list(range(len(demos.episodes))) if episodes is None else list(episodes)
        chosen = [demos.episodes[i] for i in numbers]
        frames = {cam: [] for cam in self.cameras}
        states, chunks, masks, prompts, frame_of = [], [], [], [], []
        views = [privileged_view(demos, i, privileged) for i in numbers] if privileged else None
        instructions = []  # of each frame
        self.prompt_table: list[list[int]] = []
        index: dict[str, int] = {}

        def prompt_id(text: str) -> int:
            if text not in index:
                index[text] = len(self.prompt_table)
                self.prompt_table.append(prompt.ids(text))
            return index[text]

        base = 0  # the frame index of the episode's first step
        self.counterfactuals = 0
        for ep in chosen:
            acts = ep.targets()
            T, H = len(acts), self.chunk_size
            padded = np.concatenate([acts, np.repeat(acts[-1:], H, axis=0)])  # past the end: held
            chunks.append(np.stack([padded[t:t + H] for t in range(T)]))
            masks.append((np.arange(T)[:, None] + np.arange(H)[None, :] < T).astype(np.float32))
            states.append(ep.states())
            for cam in self.cameras:
                frames[cam].append(ep.frames(cam))
            prompts.append(np.full(T, prompt_id(ep.instruction)))
            frame_of.append(base + np.arange(T))
            instructions += [ep.instruction] * T
            if counterfactual:  # the same frame and state under another instruction: another target
                ep_states = ep.states()
                for t, step in enumerate(ep.steps):
                    for text, action in step.extras.get("counterfactual", {}).items():
                        states.append(ep_states[t:t + 1])
                        chunks.append(np.repeat(np.asarray(action, np.float32).reshape(1, 1, -1), H, axis=1))
                        masks.append(np.ones((1, H), np.float32))
                        prompts.append(np.array([prompt_id(text)]))
                        frame_of.append(np.array([base + t]))
                        self.counterfactuals += 1
            base += T
        self.frames = {cam: np.concatenate(v) for cam, v in frames.items()}
        self.states = np.concatenate(states).astype(np.float32)
        self.chunks = np.concatenate(chunks).astype(np.float32)
        self.masks = np.concatenate(masks)
        self.prompt_index = np.concatenate(prompts)
        self.frame_index = np.concatenate(frame_of)
        # Indexed by frame: a counterfactual sample shares its frame's scene. The raw entries; a
        # trainer replaces them with its targets (``set_privileged_targets``).
        self.privileged = np.concatenate(views) if views else None
        self.privileged_mask = None if views is None else np.ones_like(self.privileged)
        self.frame_instruction = np.array(instructions, dtype=object)
        self.episodes = len(chosen)
        std = np.asarray(c.image_std, np.float32).reshape(1, 1, 3, 1, 1)
        mean = np.asarray(c.image_mean, np.float32).reshape(1, 1, 3, 1, 1)
        self._scale = torch.from_numpy(1.0 / (255.0 * std))
        self._shift = torch.from_numpy(-mean / std)

    def __len__(self) -> int:
        return len(self.states)

    def batch(self, idx: np.ndarray, rng: np.random.Generator | None = None, shift: int = 0) -> BCBatch:
        """Samples ``idx``; with ``rng`` and ``shift`` > 0, frames are randomly translated."""
        ids = [self.prompt_table[i] for i in self.prompt_index[idx]]
        length = max(len(x) for x in ids)
        input_ids = torch.full((len(idx), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(idx), length), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, :len(x)] = torch.tensor(x)
            attention[row, :len(x)] = 1
        rows = self.frame_index[idx]
        stacked = np.stack([self.frames[cam][rows] for cam in self.cameras], axis=1)  # [B, C, H, W, 3]
        pixels = torch.from_numpy(stacked).permute(0, 1, 4, 2, 3).float()
        if rng is not None and shift > 0:
            pixels = _translate(pixels, rng.integers(-shift, shift + 1, size=(len(idx), 2)))
        pixels = pixels * self._scale + self._shift
        privileged = mask = None
        if self.privileged is not None:
            privileged = torch.from_numpy(self.privileged[rows])
            mask = torch.from_numpy(self.privileged_mask[rows])
        return BCBatch(input_ids, attention, pixels, torch.from_numpy(self.states[idx]),
                       torch.from_numpy(self.chunks[idx]), torch.from_numpy(self.masks[idx]),
                       privileged, mask)

    def privileged_statistics(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Mean and spread of the privileged entries over the frames of each instruction."""
        stats = {}
        for text in sorted(set(self.frame_instruction)):
            values = self.privileged[self.frame_instruction == text].astype(np.float64)
            stats[text] = (values.mean(0), values.std(0))
        return stats

    def set_privileged_targets(self, stats: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Standardise the privileged entries within each instruction by ``stats`` (a training
        set's): what the task alone tells, e.g. where its goals usually are, becomes 0, so a probe
        earns nothing from reading the instruction and must find this scene's values in the frame.
        An entry that does not vary within a task (or a task ``stats`` lacks) is masked out."""
        targets = np.zeros(self.privileged.shape, np.float32)
        mask = np.zeros(self.privileged.shape, np.float32)
        for text in set(self.frame_instruction):
            if text not in stats:
                continue
            rows = self.frame_instruction == text
            mean, std = stats[text]
            varies = std > 1e-6
            targets[rows] = np.where(varies, (self.privileged[rows] - mean) / np.where(varies, std, 1.0), 0.0)
            mask[rows] = varies
        self.privileged, self.privileged_mask = targets, mask


def _translate(pixels: torch.Tensor, offsets: np.ndarray) -> torch.Tensor:
    """Shift each sample's frames by ``offsets[b] = (dy, dx)`` pixels, repeating the edge."""
    B, C, ch, H, W = pixels.shape
    pad = int(np.abs(offsets).max())
    if pad == 0:
        return pixels
    flat = F.pad(pixels.reshape(B, C * ch, H, W), (pad, pad, pad, pad), mode="replicate")
    out = torch.empty_like(pixels.reshape(B, C * ch, H, W))
    for b, (dy, dx) in enumerate(offsets):
        out[b] = flat[b, :, pad + dy:pad + dy + H, pad + dx:pad + dx + W]
    return out.reshape(B, C, ch, H, W)
