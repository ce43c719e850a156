"""Training a model by a named recipe (``default`` or ``paper``), and checking its options.

The recipe itself comes from the method (:func:`fusioncore.registry.get_recipe`); this module
checks what a user changed in it, carves the validation split a default recipe selects its
epoch on (from the training split only: the test split is never read here), trains, and says
in the checkpoint which recipe ran and which samples validated it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..config import Recipe, SelectionConfig, TrainConfig, to_jsonable
from ..data.dataset import DatasetSplits, MultimodalDataset
from .loop import FitResult, fit
from .selection import holdout_split


def check_train_options(cfg: TrainConfig) -> None:
    """Refuse training settings that cannot run, naming the option (``--epochs`` / ``--train-param``)."""
    if not isinstance(cfg.epochs, int) or cfg.epochs < 1:
        raise ValueError(f"--epochs {cfg.epochs}: expected a whole number of epochs >= 1")
    if cfg.batch_size is not None and (not isinstance(cfg.batch_size, int) or cfg.batch_size < 1):
        raise ValueError(f"--batch-size {cfg.batch_size}: expected a whole number of samples >= 1 "
                         "(or --train-param batch_size=none for full-batch training)")
    if not (isinstance(cfg.modality_dropout, (int, float)) and 0.0 <= cfg.modality_dropout < 1.0):
        raise ValueError(f"--modality-dropout {cfg.modality_dropout}: expected a probability in [0, 1) "
                         "(the share of present modalities hidden per sample during training)")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"--lr {cfg.lr}: expected a learning rate > 0")
    if not (math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0):
        raise ValueError(f"--train-param weight_decay={cfg.weight_decay}: expected a number >= 0")
    if cfg.grad_clip is not None and not cfg.grad_clip > 0:
        raise ValueError(f"--train-param grad_clip={cfg.grad_clip}: expected a number > 0 (or none)")
    for name in ("step_size", "warmup_steps", "eval_every"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < (1 if name == "step_size" else 0):
            raise ValueError(f"--train-param {name}={value}: expected a whole number >= {1 if name == 'step_size' else 0}")


def with_selection(recipe: Recipe, *, fraction: float | None = None, patience: int | None = None,
                   refit: bool | None = None) -> Recipe:
    """``recipe`` with its validation fraction / patience / refit changed (``--val-fraction``,
    ``--patience``, ``--refit``)."""
    if fraction is None and patience is None and refit is None:
        return recipe
    if recipe.selection is None:
        raise ValueError(f"--val-fraction / --patience / --refit: recipe {recipe.name!r} keeps the final epoch and holds "
                         "out no validation split; use --recipe default")
    if fraction is not None and not 0.0 < fraction < 0.5:
        raise ValueError(f"--val-fraction {fraction}: expected a share of the training split in (0, 0.5)")
    if patience is not None and patience < 0:
        raise ValueError(f"--patience {patience}: expected a whole number of epochs >= 0 (0 = never stop early)")
    changes = {k: v for k, v in (("fraction", fraction), ("patience", patience), ("refit", refit)) if v is not None}
    return dataclasses.replace(recipe, selection=dataclasses.replace(recipe.selection, **changes))


def validation_split(splits: DatasetSplits, selection: SelectionConfig, seed: int) -> tuple[MultimodalDataset, MultimodalDataset]:
    """``(train, validation)``: the data's own validation split when it has one, else a stratified,
    seeded ``selection.fraction`` of the training split."""
    if splits.val is not None:
        return splits.train, splits.val
    return holdout_split(splits.train, selection.fraction, seed)


def train_by_recipe(model, splits: DatasetSplits, recipe: Recipe, train: TrainConfig, **fit_options: Any) -> tuple[FitResult, dict]:
    """Train ``model`` on ``splits.train`` by ``recipe`` (with settings ``train``); never reads ``splits.test``.

    Returns the fit result and the record for the checkpoint's ``extra["recipe"]``: the recipe's
    name, its selection settings and, with a validation split, the selected epoch, the epoch
    training stopped at, the validation scores and the validation sample ids.
    """
    record: dict[str, Any] = {"name": recipe.name, "model_params": to_jsonable(recipe.model_params)}
    if recipe.selection is None:
        result = fit(model, splits.train, train, **fit_options)
        record.update(selection=None, epoch="final", trained_epochs=len(result.history))
        return result, record
    train_part, val_part = validation_split(splits, recipe.selection, train.seed)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()} if recipe.selection.refit else None
    result = fit(model, train_part, train, validation=val_part, selection=recipe.selection, **fit_options)
    record.update(selection=to_jsonable(recipe.selection), epoch="validation-selected", n_train=len(train_part),
                  n_validation=len(val_part), **(result.selection or {}))
    if initial is not None and result.selection and result.selection["selected_epoch"]:
        result = _refit(model, initial, splits.train, train, result.selection["selected_epoch"], fit_options)
        record.update(epoch="refit on the whole training split for the selected epoch count", n_train=len(splits.train))
    return result, record


def _refit(model, initial: dict, data: MultimodalDataset, train: TrainConfig, epochs: int, fit_options: dict) -> FitResult:
    """Train ``model`` again from its initial weights on all of ``data`` for ``epochs`` epochs.

    The schedule keeps the recipe's length (a cosine or step schedule is not compressed), so
    the refit model sees the learning rates the selected epoch saw. No training state is
    written (the state folder belongs to the selection run).
    """
    model.load_state_dict(initial, strict=True)
    options = {k: v for k, v in fit_options.items() if k not in ("state_dir", "state_every", "resume")}
    return fit(model, data, train, stop_after_epochs=epochs, **options)


__all__ = ["check_train_options", "train_by_recipe", "validation_split", "with_selection"]
