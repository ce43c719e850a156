"""``fusioncore train``: train a method and write its checkpoint folder (+ ``metrics.json``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..output_folder import guarded_output
from .args import apply_params, nan_to_none

#: Sub-folder of ``train --out`` that holds the resumable training state (``--state-every``).
TRAINING_STATE_DIR = "training_state"


def cmd_train(args: argparse.Namespace) -> dict | None:
    """Train and write the checkpoint; under torchrun every rank trains, only rank 0 writes.

    Returns None on ranks other than 0 (nothing is printed there).
    """
    from ..config import override, to_jsonable
    from ..data.sources import load_data
    from ..registry import create_model, get_method
    from ..training import evaluate_model, fit, seed_everything
    from ..training.distributed import distributed_session

    if args.state_every is not None and args.state_every < 0:
        raise ValueError(f"--state-every {args.state_every}: expected a number of optimiser steps >= 0")
    entry = get_method(args.method)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out}: exists and is not a folder (a checkpoint is a folder)")
    splits = load_data(args.data)
    model_config = apply_params(entry.config_cls(), args.param, f"{args.method} hyper-parameters")
    train_config = override(
        entry.train_defaults,
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        modality_dropout=args.modality_dropout,
    )
    train_config = apply_params(train_config, args.train_param, "training settings")
    with distributed_session(args.device) as (ctx, device):
        seed_everything(train_config.seed)  # --seed also fixes the initial weights (same on every rank)
        model = create_model(args.method, splits.schema, model_config)
        result = fit(
            model, splits.train, train_config, device=device, progress=not args.quiet and ctx.is_main,
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
            "world_size": result.world_size,
            "samples_per_second": round(result.samples_per_second, 1),
            "amp": bool(args.amp),
            "resumed_from_step": result.resumed_from_step,
        }
        result.model.save(args.out, metrics=record, extra={"data": args.data})
        record["checkpoint"] = str(Path(args.out))
        return record


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a method and write a checkpoint folder + metrics.json")
    p.add_argument("--method", required=True)
    p.add_argument("--data", required=True, help="mogonet:DIR | table:DIR_OR_MANIFEST | demo | synthetic-sparse | tcga:DIR | cmu:DIR")
    p.add_argument("--out", required=True, help="checkpoint folder to write (new, empty, or a checkpoint with --force)")
    p.add_argument("--force", action="store_true", help="replace the checkpoint already in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--modality-dropout", type=float)
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
