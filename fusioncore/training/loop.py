"""The one training loop every method uses.

Full-batch (MM-dynamics' recipe: one optimiser step per epoch over the whole training set) or
mini-batch (transformers), Adam/AdamW, step or warm-up-cosine schedules, gradient clipping,
optional modality dropout, all driven by a :class:`TrainConfig` and the model's own ``loss``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data.dataset import MultimodalDataset, iter_batches, to_batch
from ..data.preprocessing import IdentityTransform, MinMaxScaler
from ..device import select_device
from ..types import Batch
from .seeding import seed_everything


@dataclass
class FitResult:
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def fit_preprocessing(data: MultimodalDataset, mode: str | dict = "auto") -> dict:
    """Per-modality transforms fitted on ``data`` (the training split).

    ``auto``/``minmax``: min-max with train statistics for tabular modalities (the MOGONET
    contract), identity for images and sequences; ``none``: identity everywhere.
    """
    if isinstance(mode, dict):
        return mode
    if mode not in ("auto", "minmax", "none"):
        raise ValueError(f"preprocessing must be auto, minmax, none or a dict, got {mode!r}")
    out = {}
    for j, spec in enumerate(data.schema.modalities):
        if spec.kind == "tabular" and mode != "none":
            out[spec.name] = MinMaxScaler.fit(data.features[spec.name], data.present[:, j])
        else:
            out[spec.name] = IdentityTransform()
    return out


def inverse_frequency_weights(data: MultimodalDataset) -> torch.Tensor:
    """``1 / class frequency`` in the training data (spec §5a); absent classes get weight 0."""
    counts = data.class_counts().astype(np.float64)
    freq = counts / counts.sum()
    weights = np.where(counts > 0, 1.0 / np.clip(freq, 1e-12, None), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


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


def drop_modalities(batch: Batch, rate: float, generator: torch.Generator) -> Batch:
    """Randomly hide present modalities with probability ``rate``, keeping >= 1 per sample."""
    if rate <= 0:
        return batch
    keep = torch.rand(batch.present.shape, generator=generator) >= rate
    keep = keep.to(batch.present.device) & batch.present
    empty = ~keep.any(dim=1)
    keep[empty] = batch.present[empty]
    return batch.with_present(keep)


def _step(model, batch: Batch, optimizer, cfg: TrainConfig) -> dict:
    output = model(batch)
    loss = model.loss(output, batch)
    if not torch.isfinite(loss.total):
        raise FloatingPointError(f"the loss became {loss.total.item()} (terms: { {k: float(v) for k, v in loss.terms.items()} })")
    optimizer.zero_grad(set_to_none=True)
    loss.total.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return {"loss": float(loss.total.detach()), **{k: float(v) for k, v in loss.terms.items()}}


def fit(
    model,
    train_data: MultimodalDataset,
    train_config: TrainConfig,
    *,
    device: str | torch.device | None = "cpu",
    preprocessing: str | dict = "auto",
    eval_data: MultimodalDataset | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` on ``train_data``; returns the model (eval mode) and per-epoch history.

    Sets ``model.preprocessing`` (fitted on the training data unless given), ``model.train_config``
    and, for configs with ``class_weighted=True``, inverse-frequency class weights.
    """
    cfg = train_config
    if train_data.labels is None and getattr(model.config, "lambda_supervised", 1.0):
        raise ValueError(f"{train_data.source or 'training data'} has no labels; supervised training needs them")
    rng = seed_everything(cfg.seed)
    torch_gen = torch.Generator().manual_seed(cfg.seed)
    device = select_device(device)
    model.preprocessing = fit_preprocessing(train_data, preprocessing)
    model.train_config = cfg
    if getattr(model.config, "class_weighted", False):
        model.class_weights = inverse_frequency_weights(train_data)
    model.to(device)
    full = to_batch(train_data, model.preprocessing, device) if not cfg.batch_size else None
    steps_per_epoch = 1 if full is not None else math.ceil(len(train_data) / cfg.batch_size)
    optimizer = make_optimizer(model, cfg)
    scheduler, per_step = make_scheduler(optimizer, cfg, steps_per_epoch)
    history: list[dict] = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=f"train {model.method}", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        batches = [full] if full is not None else iter_batches(
            train_data, cfg.batch_size, model.preprocessing, device, shuffle=True, generator=rng
        )
        sums: dict[str, float] = {}
        count = 0
        for batch in batches:
            record = _step(model, drop_modalities(batch, cfg.modality_dropout, torch_gen), optimizer, cfg)
            for k, v in record.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if scheduler is not None and per_step:
                scheduler.step()
        if scheduler is not None and not per_step:
            scheduler.step()
        entry = {"epoch": epoch + 1, **{k: v / max(count, 1) for k, v in sums.items()}}
        if eval_data is not None and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0:
            from .evaluate import evaluate_model

            entry["eval"] = evaluate_model(model, eval_data, tcp=False)
        history.append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.4f}")
    model.eval()
    return FitResult(model=model, history=history, seconds=time.perf_counter() - start)
