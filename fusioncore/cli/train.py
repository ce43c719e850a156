"""``fusioncore train``: train a method and write its checkpoint folder (+ ``metrics.json``)."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from ..config import RECIPE_NAMES
from ..output_folder import guarded_output
from .args import apply_params, nan_to_none, report_data

#: Sub-folder of ``train --out`` that holds the resumable training state (``--state-every``).
TRAINING_STATE_DIR = "training_state"


def cmd_train(args: argparse.Namespace) -> dict | None:
    """Train and write the checkpoint; under torchrun every rank trains, only rank 0 writes.

    Returns None on ranks other than 0 (nothing is printed there). A Ctrl-C ends in a
    KeyboardInterrupt whose message says where the training state is and the command that
    continues the run (:func:`interrupted_message`; the CLI's boundary prints it).
    """
    from ..data.loaders import load_data
    from ..registry import get_method

    _check_options(args)
    entry = get_method(args.method)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out}: exists and is not a folder (a checkpoint is a folder)")
    splits = load_data(args.data)
    report_data("train", splits)  # notes and warnings on stderr (fusioncore.data.checks)
    recipe, model_config, train_config = _settings(args, entry, splits)
    try:
        return _train_and_save(args, splits, recipe, model_config, train_config)
    except KeyboardInterrupt as err:
        raise KeyboardInterrupt(interrupted_message(args, err)) from None


def _check_options(args: argparse.Namespace) -> None:
    """Refuse options argparse cannot check alone, naming them."""
    if args.state_every is not None and args.state_every < 0:
        raise ValueError(f"--state-every {args.state_every}: expected a number of optimiser steps >= 0")


def _settings(args: argparse.Namespace, entry, splits):
    """``(recipe, model config, train config)``: the method's recipe for the data with the options applied."""
    from ..config import override
    from ..registry import get_recipe
    from ..training.recipes import check_train_options, with_selection

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
    return recipe, model_config, train_config


def _train_and_save(args: argparse.Namespace, splits, recipe, model_config, train_config) -> dict | None:
    """Train by ``recipe`` (states in OUT/training_state), test, and write the checkpoint on rank 0."""
    from ..registry import create_model
    from ..training import evaluate_model, seed_everything
    from ..training.distributed import distributed_session
    from ..training.recipes import train_by_recipe

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
        record = _metrics_record(args, train_config, result, metrics, recipe_record)
        result.model.save(args.out, metrics=record, extra={"data": args.data, "recipe": recipe_record})
        record["checkpoint"] = str(Path(args.out))
        return record


def _metrics_record(args: argparse.Namespace, train_config, result, metrics: dict, recipe_record: dict) -> dict:
    """What ``metrics.json`` (and the command's output) says about the run."""
    from ..config import to_jsonable

    return {
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


def interrupted_message(args: argparse.Namespace, err: BaseException | None = None) -> str:
    """After a Ctrl-C: where the training state of ``train`` with ``args`` is and the exact
    command that continues from it (``--resume``), or that there is none yet.

    ``err``: the interrupt; a :class:`~fusioncore.training.interrupt.TrainingInterrupted` says
    which step its state holds, else the state folder's own record is read.
    """
    from ..training.interrupt import TrainingInterrupted
    from ..training.resume import STATE_JSON, find_state

    folder = Path(args.out) / TRAINING_STATE_DIR
    found = find_state(folder)
    if found is None:
        return ("no training state had been written yet, so there is nothing to resume; run the same command again "
                f"to start afresh (--state-every N keeps a state in {folder} every N optimiser steps)")
    if isinstance(err, TrainingInterrupted):
        step, total, finished = err.global_step, err.total_steps, err.global_step >= err.total_steps
    else:
        progress = json.loads((found / STATE_JSON).read_text())["progress"]
        step, total, finished = progress["global_step"], progress["total_steps"], bool(progress.get("finished"))
    kept = f"the training state after optimiser step {step} of {total} is kept in {folder}"
    if finished:
        kept += " (training had finished; resuming evaluates the model and writes the checkpoint)"
    return f"{kept}. Continue with: {resume_command(args)}"


def resume_command(args: argparse.Namespace) -> str:
    """The ``fusioncore train`` command line that gives ``args`` again, with ``--resume``: every
    option that differs from its default, in the order ``--help`` lists them, quoted for a shell."""
    parser = argparse.ArgumentParser(prog="fusioncore")
    sub = parser.add_subparsers()
    add_parser(sub)
    words = ["fusioncore", "train"]
    for action in sub.choices["train"]._actions:
        if not action.option_strings or action.dest == "help":
            continue
        option, value = action.option_strings[-1], getattr(args, action.dest, action.default)
        if action.dest == "resume":
            value = True
        if value is None or value == action.default:
            continue
        if action.nargs == 0:  # a flag that is set
            words.append(option)
        elif isinstance(value, list):  # a repeatable option
            for item in value:
                words += [option, str(item)]
        else:
            words += [option, str(value)]
    return shlex.join(words)


def _checked(cast, ok, expected: str):
    """An argparse type: ``cast(text)`` that passes ``ok`` (argparse names the option in its message)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


def _at_least(low: int, unit: str):
    """A whole number of ``unit`` >= ``low``."""
    return _checked(int, lambda v: v >= low, f"a whole number of {unit} >= {low}")


_positive_float = _checked(float, lambda v: 0 < v < float("inf"), "a finite number > 0")
_probability = _checked(float, lambda v: 0.0 <= v < 1.0, "a probability in [0, 1)")


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
    p.add_argument("--epochs", type=_at_least(1, "epochs"), help="change the recipe's epoch count (>= 1)")
    p.add_argument("--lr", type=_positive_float, help="change the recipe's learning rate (> 0)")
    p.add_argument("--batch-size", type=_at_least(1, "samples"), help="change the recipe's mini-batch size (>= 1)")
    p.add_argument("--modality-dropout", type=_probability, help="share of present modalities hidden during training, in [0, 1)")
    p.add_argument("--val-fraction", type=float, help="share of the training split held out for validation (default recipe)")
    p.add_argument("--refit", action="store_true", default=None,
                   help="default recipe: after picking the epoch count on validation, train again on the whole "
                        "training split for that many epochs")
    p.add_argument("--patience", type=_at_least(0, "epochs"),
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
