"""``train_reward_model``: fit a ``SuccessClassifier`` on labelled frames and choose its threshold.

Batches are drawn half from success frames and half from failure frames (success is rare in
episodes), frames are translated by up to ``shift`` pixels, and the loss is binary cross-entropy
with AdamW. The threshold is chosen on the held-out episodes' frames (``metrics.choose_threshold``)
and what it gives there is saved with the model and in ``metrics.json``: precision, recall, and the
rejection rate of each kind of failure (early frames, failed episodes, other goals' words).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from agent.reward.config import RewardTrainConfig
from agent.reward.data import KIND_NAMES, LabelledFrames, labelled_frames
from agent.reward.metrics import choose_threshold
from policies.reward import RewardModel, RewardModelConfig, SuccessClassifier, encode_instructions
from policies.reward.checkpoint import save_reward_model

log = logging.getLogger(__name__)


def _pixels(frames: np.ndarray, rng: np.random.Generator | None, shift: int) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if rng is None or shift == 0:
        return x
    B, _, H, W = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    out = torch.empty_like(x)
    for b, (dy, dx) in enumerate(rng.integers(0, 2 * shift + 1, size=(B, 2))):
        out[b] = padded[b, :, dy:dy + H, dx:dx + W]
    return out


@torch.no_grad()
def score(net: SuccessClassifier, data: LabelledFrames, batch: int = 256) -> np.ndarray:
    """P(success) of every frame of ``data``."""
    net.eval()
    out = []
    for i in range(0, len(data), batch):
        ids, offsets = encode_instructions(data.instructions[i:i + batch], net.config.word_buckets)
        out.append(torch.sigmoid(net(_pixels(data.frames[i:i + batch], None, 0), ids, offsets)).numpy())
    return np.concatenate(out).astype(np.float64)


def kind_rates(probs: np.ndarray, data: LabelledFrames, threshold: float) -> dict[str, float]:
    """Per kind of frame, the share the classifier gets right at ``threshold``."""
    out = {}
    for kind, name in KIND_NAMES.items():
        mask = data.kinds == kind
        if mask.any():
            pred = probs[mask] >= threshold
            out[name] = float(np.mean(pred == (data.labels[mask] > 0.5)))
    return out


def train_reward_model(config: RewardTrainConfig,
                       progress: Callable[[int, float], None] | None = None) -> tuple[RewardModel, dict]:
    """Train, choose the threshold on held-out episodes, save to ``config.out``; returns the model and
    its metrics."""
    c = config
    torch.manual_seed(c.seed)
    torch.set_num_threads(c.threads)
    rng = np.random.default_rng(c.seed)
    data = labelled_frames(c.episodes, c.camera, c.rules)
    train, held = data.split(c.held_out, c.seed)
    if int(held.labels.sum()) == 0 or int(train.labels.sum()) == 0:
        raise ValueError(f"reward: the split of {len(np.unique(data.episodes))} episodes left no success "
                         "frame on one side; record more successful episodes")
    h, w = data.frames.shape[1:3]
    net = SuccessClassifier(RewardModelConfig(**{**c.model, "camera": c.camera, "image_height": int(h),
                                                 "image_width": int(w)}))
    log.info("reward model: %d frames (%d success) from %d episodes; %d held out; %s", len(data),
             int(data.labels.sum()), len(np.unique(data.episodes)), len(held), data.counts())
    opt = torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=c.steps, pct_start=0.05)
    pos, neg = np.flatnonzero(train.labels > 0.5), np.flatnonzero(train.labels <= 0.5)
    half = c.batch_size // 2
    t0, curve = time.monotonic(), []
    net.train()
    for step in range(1, c.steps + 1):
        idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, c.batch_size - half)])
        ids, offsets = encode_instructions([train.instructions[i] for i in idx], net.config.word_buckets)
        logits = net(_pixels(train.frames[idx], rng, c.shift), ids, offsets)
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(train.labels[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % c.log_every == 0 or step == c.steps:
            curve.append({"step": step, "loss": loss.item(), "elapsed_s": round(time.monotonic() - t0, 1)})
            if progress is not None:
                progress(step, loss.item())
            net.train()
    probs = score(net, held)
    chosen = choose_threshold(probs, held.labels, c.target_precision)
    metrics = {"held_out": chosen, "held_out_by_kind": kind_rates(probs, held, chosen["threshold"]),
               "train_frames": len(train), "held_out_frames": len(held), "frames_by_kind": data.counts(),
               "episodes": len(np.unique(data.episodes)), "steps": c.steps,
               "train_s": round(time.monotonic() - t0, 1), "curve": curve, "config": c.to_dict()}
    if not chosen["reached"]:
        log.warning("reward model: no threshold reaches precision %.2f on held-out episodes; using the "
                    "best F1 (precision %.3f, recall %.3f)", c.target_precision, chosen["precision"],
                    chosen["recall"])
    info = {k: chosen[k] for k in ("precision", "recall", "f1", "frames", "positives")}
    model = RewardModel(net, chosen["threshold"],
                        {"held_out": info, "episodes": [str(p) for p in c.episodes]})
    save_reward_model(c.out, model)
    (c.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return model, metrics
