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

:class:`TrainingRun` is the loop as named steps (prepare, one epoch, one step, the end of an
epoch, a training state, the result) so each can be tested alone; :func:`fit` runs it in one
call. The maths of a step lives in :mod:`fusioncore.training.steps`; Ctrl-C handling in
:mod:`fusioncore.training.interrupt`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import SelectionConfig, TrainConfig, to_jsonable
from ..data.dataset import MultimodalDataset, to_batch
from ..data.image_reference import ImageReference
from ..data.preprocessing import IdentityTransform, MinMaxScaler
from ..device import select_device
from .distributed import DistContext, all_gather_json, current_context, epoch_batches, resolve_device
from .interrupt import StepEndInterrupt, TrainingInterrupted
from .resume import (
    TrainingState,
    check_same_run,
    config_with_defaults,
    data_fingerprint,
    find_state,
    load_training_state,
    restore_rng,
    rng_snapshot,
    save_training_state,
)
from .seeding import seed_everything
from .selection import EpochSelector, validation_scores
from .steps import ForwardLoss, drop_modalities, epoch_means, make_optimizer, make_scheduler, optimiser_step


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


@dataclass(frozen=True)
class Validation:
    """The split held out from the training data (never the test split) and how an epoch is
    selected on it (:func:`fit`'s ``validation`` and ``selection``, which come as a pair)."""

    data: MultimodalDataset
    selection: SelectionConfig


@dataclass(frozen=True)
class StateCheckpoints:
    """Where training states go (``folder``), every how many optimiser steps (``every``; 0 = at a
    Ctrl-C only) and whether to continue from the state found there (``resume``)."""

    folder: Path | None = None
    every: int = 0
    resume: bool = False

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"state_every must be >= 0 optimiser steps, got {self.every}")
        if (self.every or self.resume) and self.folder is None:
            raise ValueError("state_every / resume need a state_dir to write / read training states")


@dataclass(frozen=True)
class RunSettings:
    """How a run trains, besides what it trains (the fields are :func:`fit`'s options of the same names)."""

    device: str | torch.device | None = "cpu"
    preprocessing: str | dict = "auto"
    eval_data: MultimodalDataset | None = None
    progress: bool = True
    amp: bool = False
    distributed: bool | None = None
    on_step: Callable[[int, dict], None] | None = None
    stop_after_epochs: int | None = None


class TrainingRun:
    """One training run as named steps, each of which can be called (and tested) alone.

    :meth:`run` is :meth:`prepare` (process group, seeds and device; the model's preprocessing
    and class weights; optimiser and scheduler; the resumed position), then :meth:`run_epoch`
    per epoch -- :meth:`train_step` per batch and :meth:`end_epoch` after the last (schedule,
    epoch means, evaluation, epoch selection) -- with :meth:`save_state` every ``states.every``
    steps and :meth:`checkpoint_on_interrupt` after a Ctrl-C, and last :meth:`finish` (the
    selected weights, eval mode, the :class:`FitResult`). :func:`fit` is this class behind the
    function's signature; the steps run in the order the single loop ran them, so the random
    streams, batches and numbers are the same.
    """

    def __init__(self, model, data: MultimodalDataset, config: TrainConfig, *, settings: RunSettings = RunSettings(),
                 validation: Validation | None = None, states: StateCheckpoints = StateCheckpoints()) -> None:
        self.model, self.data, self.train_config = model, data, config
        self.settings, self.validation, self.states = settings, validation, states
        self._check_labels()
        self.selector = EpochSelector(validation.selection) if validation is not None else None
        self.history: list[dict] = []
        self.start_epoch, self.start_batch, self.global_step = 0, 0, 0
        self.sums: dict[str, float] = {}
        self.count = 0
        self.samples = 0
        self.stop = False
        self.resumed_from: int | None = None
        self.interrupt = StepEndInterrupt(enabled=False)  # replaced by an active one while run() trains
        self._saved_at: int | None = None

    def _check_labels(self) -> None:
        """Refuse unlabelled training data for a model that trains on labels (before any work)."""
        model, train_data = self.model, self.data
        if train_data.labels is None and model.needs_labels:
            raise ValueError(f"{train_data.source or 'training data'} has no labels; supervised training needs them")

    # -- before the first step -------------------------------------------------------------------
    def prepare(self) -> None:
        """Everything before the first optimiser step; then :meth:`run_epoch` can be called."""
        self._join_processes()
        self._prepare_model()
        self._prepare_optimisation()
        self.order_state = copy.deepcopy(self.rng.bit_generator.state)  # data order before the next permutation
        self.meta = self._run_meta()
        if self.states.resume and find_state(self.states.folder) is not None:
            self._resume(load_training_state(self.states.folder))
        self.net = self._wrap()
        self.bar = tqdm(total=self.train_config.epochs, initial=self.start_epoch, desc=f"train {self.model.method}",
                        disable=not (self.settings.progress and self.ctx.is_main), leave=False)
        self._started = time.perf_counter()

    def _join_processes(self) -> None:
        """The process group (when one is used), this rank's shard, the seeds and the device."""
        cfg, distributed = self.train_config, self.settings.distributed
        ctx = current_context() if distributed is not False else DistContext()
        if distributed is True and not ctx.enabled:
            raise ValueError(
                "distributed=True but no multi-process group is initialised; launch with torchrun and wrap "
                "training in fusioncore.training.distributed.distributed_session()"
            )
        self.ctx, self.sharded = ctx, ctx.enabled and bool(cfg.batch_size)
        self.rank, self.world = (ctx.rank, ctx.world_size) if self.sharded else (0, 1)
        self.shard_ctx = ctx if self.sharded else None  # what the collective steps need (None: local)
        if ctx.enabled and not cfg.batch_size and ctx.is_main:
            warnings.warn(
                f"full-batch training (batch_size unset) is not sharded: all {ctx.world_size} processes compute the "
                "same full batch and only rank 0 writes; launch it without torchrun (see docs/scaling.md)",
                RuntimeWarning,
                stacklevel=5,  # fit's caller (fit -> run -> prepare -> here)
            )
        self.rng = seed_everything(cfg.seed)
        if self.sharded and self.rank:
            # Own dropout streams per rank (rank 0 keeps the single-process stream); the initial
            # weights are rank 0's in any case (DDP broadcasts them).
            torch.manual_seed(cfg.seed + 1_000_003 * self.rank)
        self.torch_gen = torch.Generator().manual_seed(cfg.seed)
        device = self.settings.device
        self.device = resolve_device(device, ctx.local_rank) if ctx.enabled else select_device(device)
        if self.settings.amp and self.device.type not in ("cuda", "cpu"):
            raise ValueError(f"amp (bf16 autocast) is supported on cuda and cpu, not {self.device.type}")

    def _prepare_model(self) -> None:
        """Preprocessing fitted on the training data, the training config and class weights set on
        the model, the model on the device."""
        model, cfg, train_data = self.model, self.train_config, self.data
        model.preprocessing = fit_preprocessing(train_data, self.settings.preprocessing)
        model.train_config = cfg
        if model.uses_class_weights:
            model.class_weights = inverse_frequency_weights(train_data)
        model.to(self.device)

    def _prepare_optimisation(self) -> None:
        """The full batch (full-batch training), the step counts, optimiser and scheduler."""
        cfg = self.train_config
        self.full = to_batch(self.data, self.model.preprocessing, self.device) if not cfg.batch_size else None
        if self.sharded and len(self.data) < self.world:
            raise ValueError(f"{len(self.data)} training samples cannot be shared by {self.world} processes")
        self.steps_per_epoch = 1 if self.full is not None else math.ceil((len(self.data) // self.world) / cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.params = list(self.model.parameters())
        self.optimizer = make_optimizer(self.model, cfg)
        self.scheduler, self.per_step = make_scheduler(self.optimizer, cfg, self.steps_per_epoch)

    def _run_meta(self) -> dict[str, Any]:
        """What a training state records of the run, so that resuming a different run is refused."""
        return {
            "method": self.model.method,
            "model_config": to_jsonable(self.model.config),
            "train_config": to_jsonable(self.train_config),
            "world_size": self.world,
            "n_train": len(self.data),
            "train_ids": data_fingerprint(self.data.sample_ids),
            "amp": bool(self.settings.amp),
            "selection": None if self.validation is None else to_jsonable(self.validation.selection),
        }

    def _resume(self, state: TrainingState) -> None:
        """Continue from ``state``: weights, optimiser, scheduler, random streams, position, selection."""
        for key, current in (("model_config", self.model.config), ("train_config", self.train_config)):
            state.meta[key] = config_with_defaults(state.meta.get(key), current)
        check_same_run(state, self.meta)
        self.model.load_state_dict(state.model, strict=True)
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None and state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        restore_rng(state.rng, self.rank, self.device, self.rng, self.torch_gen)
        self.order_state = copy.deepcopy(self.rng.bit_generator.state)
        pos = state.progress
        self.start_epoch, self.start_batch, self.global_step = pos["epoch"], pos["batch"], pos["global_step"]
        rank_sums = pos["sums"]  # one dict per rank: terms are rank-local until the epoch ends
        self.sums = dict(rank_sums[self.rank] if self.rank < len(rank_sums) else rank_sums[0])
        self.count, self.history = pos["count"], list(pos["history"])
        if self.selector is not None and pos.get("selection"):
            self.selector.load_state(pos["selection"])
            if self.selector.stopped:
                self.start_epoch = self.train_config.epochs  # the run had already stopped early: nothing left to train
        self.resumed_from = self.global_step

    def _wrap(self) -> torch.nn.Module:
        """Forward + loss as one module, inside DistributedDataParallel when sharded."""
        runner = ForwardLoss(self.model, self.device.type if self.settings.amp else None)
        if not self.sharded:
            return runner
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            runner,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            # A modality absent from a whole local batch can leave its encoder without a gradient.
            find_unused_parameters=True,
        )

    # -- training ----------------------------------------------------------------------------------
    def run(self) -> FitResult:
        """Prepare, train epoch by epoch until the end (or an early stop), finish."""
        self.prepare()
        stop_after = self.settings.stop_after_epochs
        end_epoch = self.train_config.epochs if stop_after is None else min(self.train_config.epochs, stop_after)
        try:
            with StepEndInterrupt(enabled=self.states.folder is not None and not self.sharded) as self.interrupt:
                for epoch in range(self.start_epoch, end_epoch):
                    if self.run_epoch(epoch):
                        break
        finally:
            self.bar.close()
        return self.finish()

    def run_epoch(self, epoch: int) -> bool:
        """Train epoch ``epoch`` (0-based; from the resumed batch when it is the first); True = stop now."""
        self.net.train()
        if self.full is None:
            self.order_state = copy.deepcopy(self.rng.bit_generator.state)
            batches = epoch_batches(self.rng.permutation(len(self.data)), self.train_config.batch_size, self.rank, self.world)
        else:
            batches = [None]
        first = self.start_batch if epoch == self.start_epoch else 0
        if first == 0:
            self.sums, self.count = {}, 0
        every = self.states.every
        for k in range(first, len(batches)):
            record = self.train_step(epoch + k / len(batches), batches[k])
            last = k == len(batches) - 1
            if last:
                self.end_epoch(epoch)
            if every and (self.global_step % every == 0 or self.global_step == self.total_steps or self.stop):
                self.save_state(epoch, k, last)
            if self.settings.on_step is not None:
                self.settings.on_step(self.global_step, record)
            if self.interrupt.requested:
                self.checkpoint_on_interrupt(epoch, k, last)
        return self.stop

    def train_step(self, position: float, rows: np.ndarray | None) -> dict:
        """One optimiser step on training rows ``rows`` (None: the full batch) with modality dropout,
        at ``position`` epochs into training (for losses with a schedule, see FusionModel);
        adds the step's record to the epoch's sums and steps a per-step schedule."""
        batch = self.full if rows is None else to_batch(self.data, self.model.preprocessing, self.device, rows)
        batch = drop_modalities(batch, self.train_config.modality_dropout, self.torch_gen, shard=(self.rank, self.world))
        self.model.training_epoch = position
        record = optimiser_step(self.net, batch, self.optimizer, self.params, self.train_config, self.shard_ctx)
        self.samples += batch.size * self.world
        for key, value in record.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1
        self.global_step += 1
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()
        return record

    def end_epoch(self, epoch: int) -> dict:
        """After epoch ``epoch``'s last step: a per-epoch schedule step and the history entry (epoch
        means, evaluation, validation scores); sets :attr:`stop` when selection stops training."""
        cfg, eval_data = self.train_config, self.settings.eval_data
        if self.scheduler is not None and not self.per_step:
            self.scheduler.step()
        entry = {"epoch": epoch + 1, **epoch_means(self.sums, self.count, self.shard_ctx, self.device)}
        if eval_data is not None and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and self.ctx.is_main:
            from .evaluate import evaluate_model

            entry["eval"] = evaluate_model(self.model, eval_data, tcp=False)
        if self.selector is not None:
            entry["val"] = validation_scores(self.model, self.validation.data)
            self.stop = self.selector.update(epoch + 1, entry["val"], self.model)
        self.history.append(entry)
        self.bar.update(1)
        self.bar.set_postfix(_postfix(entry, self.selector))
        return entry

    # -- training states ---------------------------------------------------------------------------
    def save_state(self, epoch: int, k: int, last: bool) -> None:
        """Write the training state after step ``k`` of epoch ``epoch`` (``last``: the epoch's last
        step), so that a resumed run starts with the next step (rank 0 writes; all ranks gather)."""
        if last:
            self.order_state = copy.deepcopy(self.rng.bit_generator.state)
        next_epoch, next_batch = (epoch + 1, 0) if last else (epoch, k + 1)
        snapshot = rng_snapshot(self.shard_ctx, self.device, self.torch_gen, self.order_state)
        rank_sums = all_gather_json(self.sums, self.ctx, self.device) if self.sharded else [self.sums]
        self._saved_at = self.global_step
        if not self.ctx.is_main:
            return
        save_training_state(
            self.states.folder,
            model_state=self.model.state_dict(),
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=None if self.scheduler is None else self.scheduler.state_dict(),
            progress={
                "epoch": next_epoch, "batch": next_batch, "global_step": self.global_step,
                "total_steps": self.total_steps,
                "finished": self.global_step >= self.total_steps or (self.selector is not None and self.selector.stopped),
                "sums": rank_sums, "count": self.count, "history": self.history,
                "selection": None if self.selector is None else self.selector.state(),
            },
            rng=snapshot,
            meta=self.meta,
        )

    def checkpoint_on_interrupt(self, epoch: int, k: int, last: bool) -> None:
        """Ctrl-C came during step ``k`` of epoch ``epoch``: keep its state (unless it was just
        written) and stop with :class:`TrainingInterrupted`, which says where the state is."""
        if self._saved_at != self.global_step:
            self.save_state(epoch, k, last)
        raise TrainingInterrupted(self.states.folder, self.global_step, self.total_steps)

    # -- after the last step -----------------------------------------------------------------------
    def finish(self) -> FitResult:
        """The selected epoch's weights restored, the model in eval mode, the :class:`FitResult`."""
        if self.selector is not None:
            self.selector.restore(self.model)
        self.model.training_epoch = None
        seconds = time.perf_counter() - self._started
        self.model.eval()
        selection = None
        if self.selector is not None:
            selection = self.selector.summary(self.validation.data, self.history[-1]["epoch"] if self.history else 0)
        return FitResult(
            model=self.model,
            history=self.history,
            seconds=seconds,
            world_size=self.world,
            steps=self.global_step,
            samples_per_second=self.samples / seconds if seconds > 0 and self.samples else 0.0,
            resumed_from_step=self.resumed_from,
            selection=selection,
        )


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
    and, for configs with ``class_weighted=True``, inverse-frequency class weights. A
    :class:`TrainingRun` does the work; this function keeps the one-call form.

    amp:          bf16 autocast for forward + loss (CUDA; also accepted on CPU).
    state_dir:    folder for training-state checkpoints (model, optimiser, scheduler, RNG states,
                  position), written by rank 0 every ``state_every`` optimiser steps and at the
                  end; ``resume=True`` continues from the state there if one exists (else starts
                  afresh) and refuses a state from a different run. With a ``state_dir``, Ctrl-C
                  in the main thread (not sharded) stops when the current step ends, writes its
                  state and raises :class:`TrainingInterrupted` (:mod:`fusioncore.training.interrupt`).
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
    if (validation is None) != (selection is None):
        raise ValueError("epoch selection needs both a validation split and a SelectionConfig")
    settings = RunSettings(device=device, preprocessing=preprocessing, eval_data=eval_data, progress=progress, amp=amp,
                           distributed=distributed, on_step=on_step, stop_after_epochs=stop_after_epochs)
    states = StateCheckpoints(None if state_dir is None else Path(state_dir), state_every, resume)
    run = TrainingRun(model, train_data, train_config, settings=settings,
                      validation=None if validation is None else Validation(validation, selection), states=states)
    return run.run()


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
