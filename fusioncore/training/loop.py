"""The one training loop every method uses.

Full-batch (MM-dynamics' recipe: one optimiser step per epoch over the whole training set) or
mini-batch (transformers), Adam/AdamW, step or warm-up-cosine schedules, gradient clipping,
optional modality dropout, all driven by a :class:`TrainConfig` and the model's own ``loss``.

The same loop runs under ``torchrun``: when a process group is initialised (see
:mod:`fusioncore.training.distributed`) mini-batch training wraps the model in
DistributedDataParallel and every rank trains on its shard of the shared, per-epoch shuffled
order (global batch = ``batch_size`` x world size); full-batch training is not sharded (every
rank computes the same full batch). Optional bf16 autocast (``amp``) and training-state
checkpoints (``state_dir``/``state_every``/``resume``, see :mod:`fusioncore.training.resume`)
work in both modes. With one process and no state options the loop is exactly the
single-process loop it always was (same batches, same random streams, same numbers).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import SelectionConfig, TrainConfig, from_jsonable, to_jsonable
from ..data.dataset import MultimodalDataset, to_batch
from ..data.image_reference import ImageReference
from ..data.preprocessing import IdentityTransform, MinMaxScaler
from ..device import select_device
from ..types import Batch
from .distributed import (
    DistContext,
    all_gather_bytes,
    all_gather_json,
    all_reduce_mean,
    current_context,
    epoch_batches,
    resolve_device,
)
from .resume import (
    check_same_run,
    find_state,
    load_training_state,
    numpy_global_state,
    save_training_state,
    set_numpy_global_state,
)
from .seeding import seed_everything
from .selection import EpochSelector, validation_scores


@dataclass
class FitResult:
    """The trained model (eval mode) and how training went.

    history:            one record per epoch (mean loss terms over the epoch's global batches,
                        plus ``eval`` when evaluated); a resumed run includes the epochs before
                        the interruption.
    seconds:            wall time of this call (not of earlier, interrupted segments).
    world_size:         processes whose shards formed each global batch (1 = not sharded).
    steps:              optimiser steps taken in total (including before a resume).
    samples_per_second: training samples (all ranks together) per second in this call.
    resumed_from_step:  the optimiser step the run resumed from, None for a fresh run.
    selection:          with a validation split: the selected epoch, where training stopped,
                        the validation scores and ids (:meth:`EpochSelector.summary`); else None.
    """

    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    world_size: int = 1
    steps: int = 0
    samples_per_second: float = 0.0
    resumed_from_step: int | None = None
    selection: dict | None = None


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
        elif spec.kind == "image" and data.present[:, j].any():
            # still the identity; it also records what the training images look like (out-of-distribution checks)
            out[spec.name] = ImageReference.fit(data.features[spec.name], data.present[:, j])
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


def _with_defaults(stored: Any, current: Any) -> Any:
    """A config stored in a training state, completed with the defaults of fields added since it
    was written (new fields default to the old behaviour), so an older state still resumes.
    Anything that does not parse is returned as it is and reported by ``check_same_run``."""
    if not isinstance(stored, dict):
        return stored
    try:
        return to_jsonable(from_jsonable(type(current), stored, "training state"))
    except (TypeError, ValueError):
        return stored


class _ForwardLoss(torch.nn.Module):
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


def _step(net, batch: Batch, optimizer, params: list, cfg: TrainConfig, ctx: DistContext | None) -> dict:
    """One optimiser step; returns ``{"loss": ..., **terms}`` as Python floats.

    Under DDP ``loss`` is averaged over ranks first (the mean over the global batch, as
    equal-sized local batches make it), so a non-finite loss on any rank stops every rank
    together instead of leaving the others waiting in the gradient all-reduce. The other terms
    stay rank-local here (their set can differ between ranks: some depend on which modalities
    a local batch contains) and are averaged once per epoch (:func:`_epoch_means`).
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


def _epoch_means(sums: dict[str, float], count: int, ctx: DistContext | None, device: torch.device) -> dict[str, float]:
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


def _data_fingerprint(data: MultimodalDataset) -> str:
    """Short hash of the training sample ids (a resumed run must see the same samples)."""
    return hashlib.sha256("\n".join(data.sample_ids).encode()).hexdigest()[:16]


def _rng_snapshot(ctx: DistContext | None, device: torch.device, dropout_gen: torch.Generator, order_state: dict) -> dict[str, Any]:
    """Every random stream the loop depends on. Torch CPU/CUDA states are per rank (gathered)."""
    gather_ctx = ctx if ctx is not None else DistContext()
    snapshot: dict[str, Any] = {
        "torch_cpu": all_gather_bytes(torch.get_rng_state(), gather_ctx, device),
        "modality_dropout": dropout_gen.get_state(),
        "data_order": copy.deepcopy(order_state),
    }
    if device.type == "cuda":
        snapshot["torch_cuda"] = all_gather_bytes(torch.cuda.get_rng_state(device), gather_ctx, device)
    np_meta, np_keys = numpy_global_state()
    snapshot["numpy_global"] = {"meta": np_meta, "keys": np_keys}
    import random

    snapshot["python_random"] = random.getstate()
    return snapshot


def _restore_rng(rng_state: dict, rank: int, device: torch.device, data_rng: np.random.Generator,
                 dropout_gen: torch.Generator) -> None:
    import random

    def mine(states: list) -> torch.Tensor:
        return states[rank] if rank < len(states) else states[0]

    torch.set_rng_state(mine(rng_state["torch_cpu"]))
    if device.type == "cuda" and "torch_cuda" in rng_state:
        torch.cuda.set_rng_state(mine(rng_state["torch_cuda"]), device)
    dropout_gen.set_state(rng_state["modality_dropout"])
    data_rng.bit_generator.state = rng_state["data_order"]
    set_numpy_global_state(rng_state["numpy_global"]["meta"], rng_state["numpy_global"]["keys"])
    py = rng_state["python_random"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def fit(
    model,
    train_data: MultimodalDataset,
    train_config: TrainConfig,
    *,
    device: str | torch.device | None = "cpu",
    preprocessing: str | dict = "auto",
    eval_data: MultimodalDataset | None = None,
    progress: bool = True,
    amp: bool = False,
    state_dir: str | Path | None = None,
    state_every: int = 0,
    resume: bool = False,
    distributed: bool | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    validation: MultimodalDataset | None = None,
    selection: SelectionConfig | None = None,
    stop_after_epochs: int | None = None,
) -> FitResult:
    """Train ``model`` on ``train_data``; returns the model (eval mode) and per-epoch history.

    Sets ``model.preprocessing`` (fitted on the training data unless given), ``model.train_config``
    and, for configs with ``class_weighted=True``, inverse-frequency class weights.

    amp:          bf16 autocast for forward + loss (CUDA; also accepted on CPU).
    state_dir:    folder for training-state checkpoints (model, optimiser, scheduler, RNG states,
                  position), written by rank 0 every ``state_every`` optimiser steps and at the
                  end; ``resume=True`` continues from the state there if one exists (else starts
                  afresh) and refuses a state from a different run.
    distributed:  None = use the default process group when one is initialised (torchrun);
                  False = train locally even then; True = require one.
    on_step:      ``callback(global_step, record)`` after every optimiser step (and after the
                  state of that step, if any, is written), on every rank.
    validation:   a split held out from the training data (never the test split); with
                  ``selection`` the model is scored on it after every epoch, the best epoch's
                  weights are restored at the end and training stops early after
                  ``selection.patience`` epochs without improvement (every rank scores it, so
                  all ranks stop together).
    stop_after_epochs: end after this many epochs, the schedule still laid out for
                  ``train_config.epochs`` (a refit for a validation-selected epoch count).
    """
    cfg = train_config
    if (validation is None) != (selection is None):
        raise ValueError("epoch selection needs both a validation split and a SelectionConfig")
    if train_data.labels is None and model.needs_labels:
        raise ValueError(f"{train_data.source or 'training data'} has no labels; supervised training needs them")
    if state_every < 0:
        raise ValueError(f"state_every must be >= 0 optimiser steps, got {state_every}")
    if (state_every or resume) and state_dir is None:
        raise ValueError("state_every / resume need a state_dir to write / read training states")
    ctx = current_context() if distributed is not False else DistContext()
    if distributed is True and not ctx.enabled:
        raise ValueError(
            "distributed=True but no multi-process group is initialised; launch with torchrun and wrap "
            "training in fusioncore.training.distributed.distributed_session()"
        )
    sharded = ctx.enabled and bool(cfg.batch_size)
    rank, world = (ctx.rank, ctx.world_size) if sharded else (0, 1)
    if ctx.enabled and not cfg.batch_size and ctx.is_main:
        warnings.warn(
            f"full-batch training (batch_size unset) is not sharded: all {ctx.world_size} processes compute the "
            "same full batch and only rank 0 writes; launch it without torchrun (see docs/scaling.md)",
            RuntimeWarning,
            stacklevel=2,
        )
    rng = seed_everything(cfg.seed)
    if sharded and rank:
        # Own dropout streams per rank (rank 0 keeps the single-process stream); the initial
        # weights are rank 0's in any case (DDP broadcasts them).
        torch.manual_seed(cfg.seed + 1_000_003 * rank)
    torch_gen = torch.Generator().manual_seed(cfg.seed)
    device = resolve_device(device, ctx.local_rank) if ctx.enabled else select_device(device)
    if amp and device.type not in ("cuda", "cpu"):
        raise ValueError(f"amp (bf16 autocast) is supported on cuda and cpu, not {device.type}")
    model.preprocessing = fit_preprocessing(train_data, preprocessing)
    model.train_config = cfg
    if model.uses_class_weights:
        model.class_weights = inverse_frequency_weights(train_data)
    model.to(device)
    full = to_batch(train_data, model.preprocessing, device) if not cfg.batch_size else None
    if sharded and len(train_data) < world:
        raise ValueError(f"{len(train_data)} training samples cannot be shared by {world} processes")
    steps_per_epoch = 1 if full is not None else math.ceil((len(train_data) // world) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    params = [p for p in model.parameters()]
    optimizer = make_optimizer(model, cfg)
    scheduler, per_step = make_scheduler(optimizer, cfg, steps_per_epoch)

    history: list[dict] = []
    start_epoch, start_batch, global_step = 0, 0, 0
    sums: dict[str, float] = {}
    count = 0
    resumed_from: int | None = None
    order_state = copy.deepcopy(rng.bit_generator.state)  # data-order generator before the next permutation
    meta = {
        "method": model.method,
        "model_config": to_jsonable(model.config),
        "train_config": to_jsonable(cfg),
        "world_size": world,
        "n_train": len(train_data),
        "train_ids": _data_fingerprint(train_data),
        "amp": bool(amp),
        "selection": None if selection is None else to_jsonable(selection),
    }
    selector = EpochSelector(selection) if selection is not None else None
    if resume and find_state(state_dir) is not None:
        state = load_training_state(state_dir)
        for key, current in (("model_config", model.config), ("train_config", cfg)):
            state.meta[key] = _with_defaults(state.meta.get(key), current)
        check_same_run(state, meta)
        model.load_state_dict(state.model, strict=True)
        optimizer.load_state_dict(state.optimizer)
        if scheduler is not None and state.scheduler is not None:
            scheduler.load_state_dict(state.scheduler)
        _restore_rng(state.rng, rank, device, rng, torch_gen)
        order_state = copy.deepcopy(rng.bit_generator.state)
        pos = state.progress
        start_epoch, start_batch, global_step = pos["epoch"], pos["batch"], pos["global_step"]
        rank_sums = pos["sums"]  # one dict per rank: terms are rank-local until the epoch ends
        sums = dict(rank_sums[rank] if rank < len(rank_sums) else rank_sums[0])
        count, history = pos["count"], list(pos["history"])
        if selector is not None and pos.get("selection"):
            selector.load_state(pos["selection"])
        resumed_from = global_step

    runner = _ForwardLoss(model, device.type if amp else None)
    net: torch.nn.Module = runner
    if sharded:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            runner,
            device_ids=[device.index] if device.type == "cuda" else None,
            # A modality absent from a whole local batch can leave its encoder without a gradient.
            find_unused_parameters=True,
        )

    def write_state(next_epoch: int, next_batch: int) -> None:
        snapshot = _rng_snapshot(ctx if sharded else None, device, torch_gen, order_state)
        rank_sums = all_gather_json(sums, ctx, device) if sharded else [sums]
        if not ctx.is_main:
            return
        save_training_state(
            state_dir,
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            scheduler_state=None if scheduler is None else scheduler.state_dict(),
            progress={
                "epoch": next_epoch, "batch": next_batch, "global_step": global_step, "total_steps": total_steps,
                "finished": global_step >= total_steps or (selector is not None and selector.stopped),
                "sums": rank_sums, "count": count, "history": history,
                "selection": None if selector is None else selector.state(),
            },
            rng=snapshot,
            meta=meta,
        )

    if selector is not None and selector.stopped:
        start_epoch = cfg.epochs  # the interrupted run had already stopped early: nothing left to train
    samples = 0
    stop = False
    start = time.perf_counter()
    bar = tqdm(total=cfg.epochs, initial=start_epoch, desc=f"train {model.method}",
               disable=not (progress and ctx.is_main), leave=False)
    end_epoch = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    for epoch in range(start_epoch, end_epoch):
        net.train()
        if full is None:
            order_state = copy.deepcopy(rng.bit_generator.state)
            batches = epoch_batches(rng.permutation(len(train_data)), cfg.batch_size, rank, world)
        else:
            batches = [None]
        first = start_batch if epoch == start_epoch else 0
        if first == 0:
            sums, count = {}, 0
        for k in range(first, len(batches)):
            batch = full if full is not None else to_batch(train_data, model.preprocessing, device, batches[k])
            batch = drop_modalities(batch, cfg.modality_dropout, torch_gen, shard=(rank, world))
            model.training_epoch = epoch + k / len(batches)  # for losses with a schedule (see FusionModel)
            record = _step(net, batch, optimizer, params, cfg, ctx if sharded else None)
            samples += batch.size * world
            for key, value in record.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            global_step += 1
            if scheduler is not None and per_step:
                scheduler.step()
            last = k == len(batches) - 1
            if last:
                if scheduler is not None and not per_step:
                    scheduler.step()
                entry = {"epoch": epoch + 1, **_epoch_means(sums, count, ctx if sharded else None, device)}
                if eval_data is not None and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and ctx.is_main:
                    from .evaluate import evaluate_model

                    entry["eval"] = evaluate_model(model, eval_data, tcp=False)
                if selector is not None:
                    entry["val"] = validation_scores(model, validation)
                    stop = selector.update(epoch + 1, entry["val"], model)
                history.append(entry)
                bar.update(1)
                bar.set_postfix(_postfix(entry, selector))
            if state_every and (global_step % state_every == 0 or global_step == total_steps or stop):
                if last:
                    order_state = copy.deepcopy(rng.bit_generator.state)
                write_state(epoch + 1 if last else epoch, 0 if last else k + 1)
            if on_step is not None:
                on_step(global_step, record)
        if stop:
            break
    bar.close()
    if selector is not None:
        selector.restore(model)
    model.training_epoch = None
    seconds = time.perf_counter() - start
    model.eval()
    return FitResult(
        model=model,
        history=history,
        seconds=seconds,
        world_size=world,
        steps=global_step,
        samples_per_second=samples / seconds if seconds > 0 and samples else 0.0,
        resumed_from_step=resumed_from,
        selection=None if selector is None else selector.summary(validation, history[-1]["epoch"] if history else 0),
    )


def _postfix(entry: dict, selector: EpochSelector | None) -> dict[str, str]:
    """The progress bar's numbers: training loss and, with a validation split, its score and the best epoch."""
    out = {"loss": f"{entry['loss']:.4f}"}
    if selector is not None and "val" in entry:
        monitor = selector.selection.monitor
        out[f"val_{monitor}"] = f"{entry['val'][monitor]:.4f}"
        if monitor != "acc":
            out["val_acc"] = f"{entry['val']['acc']:.3f}"
        out["best"] = str(selector.best_epoch) if selector.best_epoch is not None else "-"
    return out
