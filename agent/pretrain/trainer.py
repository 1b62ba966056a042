"""``Pretrainer``: behaviour cloning of a VLA from demonstrations, resumable, checked in simulation.

Each step draws a batch of demonstration steps (the draw is a function of the seed and the step
number, so a resumed run draws exactly what an uninterrupted one would), predicts the action chunk
from the frames, the instruction and the state, and takes an AdamW step on the masked L1 (or MSE)
error against what the demonstrator did. The learning rate warms up linearly, then follows a
cosine to a tenth of its peak. With ``privileged_targets``, a linear probe on the VLA's features
learns to predict those entries of the simulator's view, standardised within each instruction by
the training set's statistics (so the task alone tells the probe nothing), and its squared error,
weighted, joins the loss: the features are made to carry this scene's values.

A checkpoint (``checkpoints/last``) is the VLA in the Hugging Face layout plus the optimizer's
moments (``optimizer.safetensors``), the privileged probe where there is one
(``privileged_probe.safetensors``) and the step (``trainer.json``): nothing is pickled, and a
resumed run continues bit for bit. Scalars go to TensorBoard and to ``metrics.jsonl``; the
success rate on held-out seeds is measured every ``eval_every`` steps and at the end.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from agent.demos.episodes import DemoSet, DemoSetError, read_demos
from agent.pretrain.config import PretrainConfig, PretrainStateError
from agent.pretrain.data import BCSamples
from agent.pretrain.evaluate import evaluate_policy
from hal.config import RobotConfig
from hal.registry import robot_class
from policies.vla.build import load_vla, tiny_vla
from policies.vla.checkpoint import VLACheckpointError
from policies.vla.model import VLAModel
from policies.vla.policy import VLAPolicy

log = logging.getLogger(__name__)

STATE_FILE, OPTIMIZER_FILE = "trainer.json", "optimizer.safetensors"
PROBE, PROBE_FILE = "privileged_probe", "privileged_probe.safetensors"


class Pretrainer:
    """Owns a pretraining run in ``config.out``; ``resume`` continues ``checkpoints/last``."""

    def __init__(self, config: PretrainConfig, resume: bool = False) -> None:
        self.config = c = config
        torch.set_num_threads(c.threads)
        self.demos = read_demos(c.demos)
        if c.eval_robot is not None:
            check_demo_tasks(self.demos, c.eval_robot)
        n = len(self.demos.episodes)
        if c.val_episodes >= n:
            raise DemoSetError(f"demonstrations {c.demos}: {n} episodes, so {c.val_episodes} cannot be held "
                             f"out for validation and leave some to train on")
        c.out.mkdir(parents=True, exist_ok=True)
        self.step = 0
        last = c.out / "checkpoints" / "last"
        if resume:
            self.model = self._load_model(last)
        else:
            if last.exists():
                raise PretrainStateError(f"{c.out} already holds a pretraining run: resume it (--resume) or "
                                         f"choose another out")
            self.model = self._new_model()
        self.model.set_backbone_frozen(c.trainable == "heads")
        # Episodes are held out from the end (the last recorded), so the split never depends on a draw.
        train_eps = list(range(n - c.val_episodes))
        if c.only_successful:  # imitate successes only (the failures stay in the set, for a reward model)
            train_eps = [i for i in train_eps if self.demos.episodes[i].success]
            if not train_eps:
                raise ValueError(f"demonstrations {c.demos}: no successful episode outside the "
                                 f"{c.val_episodes} held out for validation")
        dims = c.privileged_targets or None
        self.train = BCSamples(self.demos, self.model, train_eps, counterfactual=c.counterfactual,
                               privileged=dims)
        held_out = list(range(n - c.val_episodes, n))
        self.val = BCSamples(self.demos, self.model, held_out, counterfactual=False,
                             privileged=dims) if held_out else None
        self.params = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        self.scenes = None
        if dims and c.probe_scenes:
            from agent.pretrain.scenes import collect_scenes

            pool = collect_scenes(c.eval_robot, c.probe_scenes, c.probe_seed)
            self.scenes = BCSamples(pool, self.model, counterfactual=False, privileged=dims)
        self.probe = self._new_probe() if dims else None
        if self.probe is not None:
            if resume:
                self._load_probe(last)
            self.params += [(f"{PROBE}.{name}", p) for name, p in self.probe.named_parameters()]
        self.optimizer = torch.optim.AdamW([p for _, p in self.params], lr=c.lr, weight_decay=c.weight_decay)
        if resume:
            self._load_optimizer(last)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(c.out / "tensorboard"))
        (c.out / "config.json").write_text(json.dumps(c.to_dict(), indent=1, default=str))
        self.last_eval: dict[str, Any] | None = None
        self.probe_losses: list[float] = []

    # -- the model ---------------------------------------------------------------------------------
    def _new_model(self) -> VLAModel:
        c, f = self.config, self.demos.features
        if c.vla is not None:
            model = load_vla(c.vla)
            if c.new_heads:
                model.reset_heads(c.seed)
        else:
            size = {s[0] for s in f.cameras.values()}
            extra: dict[str, Any] = {"image_size": size.pop()} if len(size) == 1 else {}
            # The state standardised by the demonstrations' statistics (a few cm matter to a hand),
            # and the chunks made for the rate the demonstrations were recorded at.
            states = np.concatenate([e.states() for e in self.demos.episodes]).astype(np.float64)
            extra["state_mean"] = states.mean(0).tolist()
            extra["state_std"] = np.maximum(states.std(0), 1e-3).tolist()
            hz = self.demos.episodes[0].steps[0].extras.get("control_hz")
            if hz:
                extra["period_s"] = 1.0 / float(hz)
            model = tiny_vla(state_dim=f.state_dim, action_dim=f.action_dim, chunk_size=c.chunk_size,
                             seed=c.seed, camera_names=sorted(f.cameras), **{**extra, **c.extra})
        return model

    def _load_model(self, last: Path) -> VLAModel:
        state = last / STATE_FILE
        if not state.is_file():
            raise PretrainStateError(f"{last}: no {STATE_FILE}; nothing to resume")
        try:
            meta = json.loads(state.read_text())
            self.step = int(meta["step"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PretrainStateError(f"{state}: unreadable ({e})") from e
        if meta.get("config") != _resumable(self.config.to_dict()):
            raise PretrainStateError(f"{state}: written by a run with another config; resume with the "
                                     f"same one")
        try:
            return load_vla(last / "model")
        except VLACheckpointError as e:
            raise PretrainStateError(f"{last}: {e}") from e

    def _new_probe(self) -> torch.nn.Linear:
        """The linear probe from features to the privileged targets (standardised within each
        instruction by the training set's statistics, for training and validation alike)."""
        # the per-task statistics of the many scenes, where they were drawn
        stats = (self.scenes if self.scenes is not None else self.train).privileged_statistics()
        for samples in (self.train, self.val, self.scenes):
            if samples is not None:
                samples.set_privileged_targets(stats)
        probe = torch.nn.Linear(self.model.config.feature_dim, len(self.config.privileged_targets))
        generator = torch.Generator().manual_seed(int(self.config.seed) + 1)
        with torch.no_grad():
            probe.weight.normal_(0.0, 0.02, generator=generator)
            probe.bias.zero_()
        return probe

    def _load_probe(self, last: Path) -> None:
        try:
            tensors = load_file(str(last / PROBE_FILE))
        except Exception as e:  # safetensors raises its own error types on damaged or missing files
            raise PretrainStateError(f"{last / PROBE_FILE}: unreadable ({e})") from e
        for name, p in self.probe.named_parameters():
            saved = tensors.get(name)
            if saved is None or saved.shape != p.shape:
                raise PretrainStateError(f"{last / PROBE_FILE}: {name} missing or of another shape "
                                         f"than the probe's {tuple(p.shape)}")
            with torch.no_grad():
                p.copy_(saved)

    # -- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/last`` (staged, then swapped in: a crash leaves the previous one)."""
        root = self.config.out / "checkpoints"
        staging, last = root / f".staging-{os.getpid()}", root / "last"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.model.save_pretrained(staging / "model")
        tensors = {}
        for name, p in self.params:
            st = self.optimizer.state.get(p)
            if st:
                tensors[f"{name}.exp_avg"] = st["exp_avg"].contiguous()
                tensors[f"{name}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
                tensors[f"{name}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
        save_file(tensors, str(staging / OPTIMIZER_FILE))
        if self.probe is not None:
            save_file({k: v.detach().contiguous() for k, v in self.probe.state_dict().items()},
                      str(staging / PROBE_FILE))
        meta = {"step": self.step, "config": _resumable(self.config.to_dict()), "last_eval": self.last_eval}
        (staging / STATE_FILE).write_text(json.dumps(meta, indent=1))
        old = root / f".old-{os.getpid()}"
        if last.exists():
            last.rename(old)
        staging.rename(last)
        shutil.rmtree(old, ignore_errors=True)
        return last

    def _load_optimizer(self, last: Path) -> None:
        try:
            tensors = load_file(str(last / OPTIMIZER_FILE))
        except Exception as e:  # safetensors raises its own error types on damaged files
            raise PretrainStateError(f"{last / OPTIMIZER_FILE}: unreadable ({e})") from e
        for name, p in self.params:
            if f"{name}.exp_avg" not in tensors:
                continue
            avg, sq = tensors[f"{name}.exp_avg"], tensors[f"{name}.exp_avg_sq"]
            if avg.shape != p.shape or sq.shape != p.shape:
                raise PretrainStateError(f"{last / OPTIMIZER_FILE}: {name} has shape {tuple(avg.shape)}, "
                                         f"the model {tuple(p.shape)}")
            self.optimizer.state[p] = {"step": tensors[f"{name}.step"].reshape(()).clone(),
                                       "exp_avg": avg.clone(), "exp_avg_sq": sq.clone()}

    # -- training ----------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        progress = (step - c.warmup_steps) / max(c.steps - c.warmup_steps, 1)
        return c.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    def loss_of(self, batch) -> torch.Tensor:
        """The imitation loss of ``batch``."""
        return self.losses_of(batch)[0]

    def losses_of(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The imitation loss of ``batch`` and, with a probe, the probe's mean squared error on the
        privileged targets (over the defined ones)."""
        out = self.model(input_ids=batch.input_ids, pixel_values=batch.pixel_values, state=batch.state,
                         attention_mask=batch.attention_mask)
        diff = out.actions - batch.actions
        err = diff.abs() if self.config.loss == "l1" else diff.square()
        mask = batch.mask.unsqueeze(-1).expand_as(err)
        imitation = (err * mask).sum() / mask.sum().clamp_min(1.0)
        return imitation, None if self.probe is None else self._probe_error(out.features, batch)

    def scene_probe_loss(self, batch) -> torch.Tensor:
        """The probe's mean squared error on a batch of probe scenes (no actions to imitate)."""
        features = self.model.pooled_features(batch.input_ids, batch.pixel_values, batch.attention_mask)
        return self._probe_error(features, batch)

    def _probe_error(self, features: torch.Tensor, batch) -> torch.Tensor:
        """Mean squared error of the probe over the batch's defined privileged targets."""
        err = (self.probe(features) - batch.privileged).square() * batch.privileged_mask
        return err.sum() / batch.privileged_mask.sum().clamp_min(1.0)

    def train_step(self) -> float:
        c = self.config
        rng = np.random.default_rng([c.seed, self.step])  # the step's draw, the same after a resume
        batch = self.train.batch(rng.integers(0, len(self.train), c.batch_size), rng, c.shift)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        scene_batch = None
        if self.scenes is not None:  # drawn after the demonstrations' batch: the same draws as before
            scene_batch = self.scenes.batch(rng.integers(0, len(self.scenes), c.batch_size), rng, c.shift)
        self.model.train()
        loss, probe_loss = self.losses_of(batch)
        if scene_batch is not None:  # the probe learns on the demonstrations' frames and the scenes'
            probe_loss = (probe_loss + self.scene_probe_loss(scene_batch)) / 2
        total = loss if probe_loss is None else loss + self.config.privileged_weight * probe_loss
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in self.params], 1.0)
        self.optimizer.step()
        self.step += 1
        if probe_loss is not None:
            self.probe_losses.append(float(probe_loss.detach()))
        return float(loss.detach())

    def validation_loss(self) -> float | None:
        """The imitation loss on the held-out episodes."""
        losses = self.validation_losses()
        return None if losses is None else losses[0]

    @torch.no_grad()
    def validation_losses(self) -> tuple[float, float | None] | None:
        """The imitation and probe losses on the held-out episodes (the probe's None without one)."""
        if self.val is None:
            return None
        self.model.eval()
        sums, idx = np.zeros(3), np.arange(len(self.val))
        for start in range(0, len(idx), 64):
            part = idx[start:start + 64]
            batch = self.val.batch(part)
            loss, probe_loss = self.losses_of(batch)
            if probe_loss is None:
                sums[0] += float(loss) * len(part)
                continue
            defined = float(batch.privileged_mask.sum())
            sums += [float(loss) * len(part), float(probe_loss) * defined, defined]
        # None where no held-out target is defined (their tasks never varied, or were never trained on)
        return float(sums[0] / len(idx)), float(sums[1] / sums[2]) if sums[2] else None

    def evaluate(self) -> dict[str, Any] | None:
        c = self.config
        if c.eval_robot is None or c.eval_episodes == 0:
            return None
        self.model.eval()
        result = evaluate_policy(VLAPolicy(self.model), c.eval_robot, c.eval_episodes, c.eval_seed)
        self.last_eval = {"step": self.step, **result.to_dict()}
        self.writer.add_scalar("eval/success_rate", result.success_rate, self.step)
        return self.last_eval

    def run(self, on_step: Callable[[Pretrainer, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train to ``config.steps``; returns the final metrics (and writes ``model/``, ``eval.json``)."""
        c = self.config
        metrics_file = (c.out / "metrics.jsonl").open("a")
        began, losses = time.monotonic(), []
        try:
            while self.step < c.steps:
                losses.append(self.train_step())
                row: dict[str, Any] = {"step": self.step}
                if self.step % c.log_every == 0 or self.step == c.steps:
                    row.update(loss=float(np.mean(losses)), lr=self.lr_at(self.step - 1),
                               steps_per_s=len(losses) / max(time.monotonic() - began, 1e-9))
                    if self.probe_losses:
                        row["privileged_loss"] = float(np.mean(self.probe_losses))
                        self.writer.add_scalar("privileged/train", row["privileged_loss"], self.step)
                    val = self.validation_losses()
                    if val is not None:
                        row["val_loss"] = val[0]
                        self.writer.add_scalar("loss/val", val[0], self.step)
                        if val[1] is not None:
                            row["val_privileged_loss"] = val[1]
                            self.writer.add_scalar("privileged/val", val[1], self.step)
                    self.writer.add_scalar("loss/train", row["loss"], self.step)
                    self.writer.add_scalar("lr", row["lr"], self.step)
                    losses, began, self.probe_losses = [], time.monotonic(), []
                if self.step % c.eval_every == 0 and self.step < c.steps:
                    row["eval"] = self.evaluate()
                if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                    self.save_checkpoint()
                if len(row) > 1:
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                if on_step is not None:
                    on_step(self, row)
        finally:
            metrics_file.close()
            self.writer.flush()
        val = self.validation_losses()
        final = {"step": self.step, "val_loss": None if val is None else val[0], "eval": self.evaluate()}
        if val is not None and val[1] is not None:
            final["val_privileged_loss"] = val[1]
        self.model.set_backbone_frozen(True)  # as a policy it is frozen; online RL learns heads on top
        self.model.save_pretrained(c.out / "model")
        (c.out / "eval.json").write_text(json.dumps(final, indent=1))
        from agent.plots import plot_pretraining

        plot_pretraining(c.out / "metrics.jsonl", c.out / "curve.png", f"rill pretrain {c.out.name}")
        self.writer.close()
        return final


def check_demo_tasks(demos: DemoSet, robot: RobotConfig) -> None:
    """Refuse ``demos`` that do not demonstrate every task ``robot`` will ask for, where its type
    names its tasks (``task_instructions``, e.g. ``sim-metaworld``)."""
    cls = robot_class(robot.type)
    tasks = getattr(cls, "task_instructions", None)
    if tasks is not None:
        demos.check_tasks(tasks(robot.params), f"robot {robot.name!r} ({robot.type})")


def _resumable(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config a resumed run must share with the one it continues (not its length,
    nor how often it logs, checks or evaluates)."""
    keep = ("demos", "vla", "chunk_size", "batch_size", "lr", "weight_decay", "warmup_steps", "trainable",
            "loss", "shift", "val_episodes", "seed", "extra", "counterfactual", "new_heads",
            "only_successful")
    if config.get("privileged_targets"):  # absent otherwise, so runs from before the probe resume
        keep += ("privileged_targets", "privileged_weight", "probe_scenes", "probe_seed")
    return json.loads(json.dumps({k: config[k] for k in keep}, default=str))
