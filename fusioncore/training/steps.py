"""One optimiser step of the training loop and the pieces it is made of.

The optimiser and schedule a :class:`~fusioncore.config.TrainConfig` names, modality dropout
(drawn for the whole global batch, so a sharded run hides what a single process would), the
forward + loss module that DistributedDataParallel wraps, the step itself and the epoch means
of its records. :class:`fusioncore.training.loop.TrainingRun` calls them in order.
"""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig
from ..types import Batch
from .distributed import DistContext, all_gather_json, all_reduce_mean


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use adam or adamw")


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """``(scheduler, per_step)``: StepLR steps per epoch (as MM-dynamics), cosine per step."""
    if cfg.scheduler == "none":
        return None, False
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma), False
    if cfg.scheduler == "cosine":
        total = max(cfg.epochs * steps_per_epoch, 1)
        warmup = min(cfg.warmup_steps, total - 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(warmup, 1)
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}: use step, cosine or none")


def drop_modalities(batch: Batch, rate: float, generator: torch.Generator, *, shard: tuple[int, int] = (0, 1)) -> Batch:
    """Randomly hide present modalities with probability ``rate``, keeping >= 1 per sample.

    ``shard=(rank, world_size)``: ``batch`` is this rank's part of a global batch whose row
    ``rank + world_size * j`` is local row ``j`` (see :func:`~fusioncore.training.distributed.epoch_batches`).
    The mask is drawn for the whole global batch from the generator every rank shares and
    the rank keeps its rows, so a sharded run hides exactly what a single-process run would.
    """
    if rate <= 0:
        return batch
    rank, world = shard
    rows, m = batch.present.shape
    draw = torch.rand((rows * world, m), generator=generator)[rank::world]
    keep = (draw >= rate).to(batch.present.device) & batch.present
    empty = ~keep.any(dim=1)
    keep[empty] = batch.present[empty]
    return batch.with_present(keep)


class ForwardLoss(torch.nn.Module):
    """``model(batch)`` and ``model.loss(output, batch)`` as one module call.

    DistributedDataParallel tracks the parameters reached from its wrapped module's output;
    some methods have parameters used only in their loss (MCA's learnable contrastive
    temperature), so the loss must be computed inside the wrapped call. ``amp`` runs both
    under bf16 autocast (the backward pass is left outside, as autocast recommends).
    """

    def __init__(self, model: torch.nn.Module, amp_device: str | None) -> None:
        super().__init__()
        self.model = model
        self.amp_device = amp_device

    def forward(self, batch: Batch):
        if self.amp_device is None:
            output = self.model(batch)
            return output, self.model.loss(output, batch)
        with torch.autocast(device_type=self.amp_device, dtype=torch.bfloat16):
            output = self.model(batch)
            return output, self.model.loss(output, batch)


def optimiser_step(net, batch: Batch, optimizer, params: list, cfg: TrainConfig, ctx: DistContext | None) -> dict:
    """One optimiser step; returns ``{"loss": ..., **terms}`` as Python floats.

    Under DDP ``loss`` is averaged over ranks first (the mean over the global batch, as
    equal-sized local batches make it), so a non-finite loss on any rank stops every rank
    together instead of leaving the others waiting in the gradient all-reduce. The other terms
    stay rank-local here (their set can differ between ranks: some depend on which modalities
    a local batch contains) and are averaged once per epoch (:func:`epoch_means`).
    """
    output, loss = net(batch)
    total = loss.total.detach().double().reshape(1)
    if ctx is not None:
        total = all_reduce_mean(total, ctx)
    value = float(total[0])
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss became {value} (terms: { {k: float(v) for k, v in loss.terms.items()} })")
    optimizer.zero_grad(set_to_none=True)
    loss.total.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    optimizer.step()
    return {"loss": value, **{k: float(v) for k, v in loss.terms.items()}}


def epoch_means(sums: dict[str, float], count: int, ctx: DistContext | None, device: torch.device) -> dict[str, float]:
    """Epoch means of the step records: ``sum / steps``, and under DDP also over ranks.

    ``loss`` is already global per step. Every other term is summed over ranks and divided by
    ``world_size * steps`` -- for a per-sample-mean term, the single-process epoch mean; a term
    a rank did not report counts as 0 there, as a step without it does in a single process.
    """
    count = max(count, 1)
    if ctx is None:
        return {key: value / count for key, value in sums.items()}
    names: list[str] = []
    for keys in all_gather_json([k for k in sums if k != "loss"], ctx, device):
        names.extend(k for k in keys if k not in names)
    local = torch.tensor([sums.get(k, 0.0) for k in names], dtype=torch.float64, device=device)
    totals = all_reduce_mean(local, ctx).tolist() if names else []
    return {"loss": sums.get("loss", 0.0) / count, **{k: v / count for k, v in zip(names, totals)}}


__all__ = ["ForwardLoss", "drop_modalities", "epoch_means", "make_optimizer", "make_scheduler", "optimiser_step"]
