"""``fusioncore train``: train a method and write its checkpoint folder (+ ``metrics.json``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import RECIPE_NAMES
from ..output_folder import guarded_output
from .args import apply_params, nan_to_none, report_data

#: Sub-folder of ``train --out`` that holds the resumable training state (``--state-every``).
TRAINING_STATE_DIR = "training_state"


def cmd_train(args: argparse.Namespace) -> dict | None:
    """Train and write the checkpoint; under torchrun every rank trains, only rank 0 writes.

    Returns None on ranks other than 0 (nothing is printed there).
    """
    from ..config import override, to_jsonable
    from ..data.loaders import load_data
    from ..registry import create_model, get_method, get_recipe
    from ..training import evaluate_model, seed_everything
    from ..training.recipes import check_train_options, train_by_recipe, with_selection
    from ..training.distributed import distributed_session

    if args.state_every is not None and args.state_every < 0:
        raise ValueError(f"--state-every {args.state_every}: expected a number of optimiser steps >= 0")
    entry = get_method(args.method)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out}: exists and is not a folder (a checkpoint is a folder)")
    splits = load_data(args.data)
    report_data("train", splits)  # notes and warnings on stderr (fusioncore.data.checks)
    recipe = with_selection(get_recipe(args.method, splits.schema, args.recipe), fraction=args.val_fraction,
                            patience=args.patience, refit=args.refit)
    model_config = apply_params(override(entry.config_cls(), **recipe.model_params), args.param,
                                f"{args.method} hyper-parameters")
    train_config = override(
        recipe.train,
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        modality_dropout=args.modality_dropout,
    )
    train_config = apply_params(train_config, args.train_param, "training settings")
    check_train_options(train_config)
    with distributed_session(args.device) as (ctx, device):
        seed_everything(train_config.seed)  # --seed also fixes the initial weights (same on every rank)
        model = create_model(args.method, splits.schema, model_config)
        result, recipe_record = train_by_recipe(
            model, splits, recipe, train_config, device=device, progress=not args.quiet and ctx.is_main,
            amp=args.amp, state_dir=Path(args.out) / TRAINING_STATE_DIR, state_every=args.state_every or 0,
            resume=args.resume,
        )
        if not ctx.is_main:
            return None
        metrics = evaluate_model(result.model, splits.test)
        record = {
            "method": args.method,
            "data": args.data,
            "seed": train_config.seed,
            "train_seconds": round(result.seconds, 3),
            "final_loss": result.history[-1]["loss"] if result.history else None,
            "test": nan_to_none(metrics),
            "train": to_jsonable(train_config),
            "recipe": {k: v for k, v in recipe_record.items() if k != "validation_ids"},
            "world_size": result.world_size,
            "samples_per_second": round(result.samples_per_second, 1),
            "amp": bool(args.amp),
            "resumed_from_step": result.resumed_from_step,
        }
        result.model.save(args.out, metrics=record, extra={"data": args.data, "recipe": recipe_record})
        record["checkpoint"] = str(Path(args.out))
        return record


def _at_least(low: int, cast, unit: str):
    """An argparse type: a whole number >= ``low`` (argparse names the option in its message)."""

    def parse(text: str) -> int:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of {unit} >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of {unit} >= {low}, got {text}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a method and write a checkpoint folder + metrics.json")
    p.add_argument("--method", required=True)
    p.add_argument("--data", required=True, help="mogonet:DIR | table:DIR_OR_MANIFEST | demo | synthetic-sparse | tcga:DIR | cmu:DIR")
    p.add_argument("--out", required=True, help="checkpoint folder to write (new, empty, or a checkpoint with --force)")
    p.add_argument("--force", action="store_true", help="replace the checkpoint already in --out")
    p.add_argument("--recipe", choices=RECIPE_NAMES, default="default",
                   help="default: fits the data's modality kinds and picks the epoch on a validation split carved "
                        "from the training split; paper: the method's published procedure (final epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=_at_least(1, int, "epochs"), help="change the recipe's epoch count (>= 1)")
    p.add_argument("--lr", type=_positive_float, help="change the recipe's learning rate (> 0)")
    p.add_argument("--batch-size", type=_at_least(1, int, "samples"), help="change the recipe's mini-batch size (>= 1)")
    p.add_argument("--modality-dropout", type=_probability, help="share of present modalities hidden during training, in [0, 1)")
    p.add_argument("--val-fraction", type=float, help="share of the training split held out for validation (default recipe)")
    p.add_argument("--refit", action="store_true", default=None,
                   help="default recipe: after picking the epoch count on validation, train again on the whole "
                        "training split for that many epochs")
    p.add_argument("--patience", type=_at_least(0, int, "epochs"),
                   help="stop after this many epochs without a better validation score (default recipe; 0 = never)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="model hyper-parameter override (repeatable)")
    p.add_argument("--train-param", action="append", metavar="KEY=VALUE", help="training setting override (repeatable)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--amp", action="store_true", help="bf16 autocast for forward + loss (mixed precision; meant for GPUs)")
    p.add_argument("--state-every", type=int, metavar="N",
                   help=f"write a resumable training state to OUT/{TRAINING_STATE_DIR} every N optimiser steps (and at the end)")
    p.add_argument("--resume", action="store_true",
                   help=f"continue from OUT/{TRAINING_STATE_DIR} when it exists (same settings required), else start afresh")
    p.set_defaults(func=guarded_output(cmd_train))  # --out checked and locked before training
