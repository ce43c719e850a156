"""``fusioncore`` command line: train, evaluate, import, benchmark, explain.

Every command prints one JSON object on stdout (progress bars go to stderr), so runs can be
scripted and their results diffed. A bad input ends with a one-paragraph message on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

import numpy as np


def _parse_value(text: str, tp: Any) -> Any:
    """``text`` as the dataclass field type ``tp`` (bool, int, float, str, tuples, optionals)."""
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return None if text.lower() == "none" else _parse_value(text, args[0])
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if origin is tuple:
        inner = args[0] if args else str
        return tuple(_parse_value(t, inner) for t in text.split(",") if t)
    if typing.get_origin(tp) is typing.Literal:
        if text not in typing.get_args(tp):
            raise ValueError(f"expected one of {typing.get_args(tp)}, got {text!r}")
    return text


def apply_params(config: Any, params: list[str], what: str) -> Any:
    """Apply ``key=value`` overrides to a frozen dataclass, naming unknown keys."""
    hints = typing.get_type_hints(type(config))
    changes = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in hints:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE with KEY one of {sorted(hints)} ({what})")
        try:
            changes[key] = _parse_value(value.strip(), hints[key])
        except ValueError as err:
            raise ValueError(f"--param {item!r}: {err}") from err
    return dataclasses.replace(config, **changes)


def emit(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- commands
#: Sub-folder of ``train --out`` that holds the resumable training state (``--state-every``).
TRAINING_STATE_DIR = "training_state"


def cmd_list(args: argparse.Namespace) -> dict:
    from .registry import get_method, list_models

    return {name: {"description": get_method(name).description, "supports": list(get_method(name).supports)} for name in list_models()}


def cmd_train(args: argparse.Namespace) -> dict | None:
    """Train and write the checkpoint; under torchrun every rank trains, only rank 0 writes.

    Returns None on ranks other than 0 (nothing is printed there).
    """
    from .config import override, to_jsonable
    from .data.sources import load_data
    from .registry import create_model, get_method
    from .training import evaluate_model, fit, seed_everything
    from .training.distributed import distributed_session

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
            "test": _nan_to_none(metrics),
            "train": to_jsonable(train_config),
            "world_size": result.world_size,
            "samples_per_second": round(result.samples_per_second, 1),
            "amp": bool(args.amp),
            "resumed_from_step": result.resumed_from_step,
        }
        result.model.save(args.out, metrics=record, extra={"data": args.data})
        record["checkpoint"] = str(Path(args.out))
        return record


def _select_split(splits, name: str):
    if name == "train":
        return splits.train
    if name == "test":
        return splits.test
    if name == "val":
        if splits.val is None:
            raise ValueError("this dataset has no validation split")
        return splits.val
    raise ValueError(f"--split must be train, test or val, got {name!r}")


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from .checkpoint import load
    from .data.align import align_to_schema
    from .data.sources import load_data
    from .training import evaluate_model

    model = load(args.checkpoint, device=args.device)
    data = align_to_schema(_select_split(load_data(args.data), args.split), model.schema)
    masked = []
    for name in args.remove_modality or []:
        if name not in data.modality_names:
            raise ValueError(f"--remove-modality {name!r}: the model's modalities are {data.modality_names}")
        present = data.present.copy()
        present[:, data.schema.index(name)] = False
        data = data.with_present(present)
        masked.append(name)
    if args.gray_images:
        images = [m.name for m in data.schema.modalities if m.kind == "image"]
        if not images:
            raise ValueError("--gray-images: the model has no image modality")
        data = dataclasses.replace(
            data, features={**data.features, **{n: np.full_like(data.features[n], 0.5) for n in images}}
        )
    metrics = evaluate_model(model, data)
    return {
        "checkpoint": str(args.checkpoint),
        "method": model.method,
        "data": args.data,
        "split": args.split,
        "removed_modalities": masked,
        "gray_images": bool(args.gray_images),
        "notes": list(data.notes),
        **_nan_to_none(metrics),
    }


def cmd_import(args: argparse.Namespace) -> dict:
    from .data.sources import load_data
    from .importers import import_mmdynamics

    if args.source != "mmdynamics":
        raise ValueError(f"import supports 'mmdynamics' checkpoints, not {args.source!r}")
    out = import_mmdynamics(args.state_dict, load_data(args.data), args.out)
    return {"checkpoint": str(out), "source": args.state_dict}


def cmd_benchmark(args: argparse.Namespace) -> dict:
    from .data.sources import load_data

    from .benchmark import run_benchmark, select_modalities

    splits = load_data(args.data)
    if args.modalities:
        splits = select_modalities(splits, [m.strip() for m in args.modalities.split(",") if m.strip()])
    result = run_benchmark(
        splits,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        missing_rates=[float(r) for r in args.missing.split(",")],
        seeds=args.seeds,
        out_dir=Path(args.out),
        epochs=args.epochs,
        device=args.device,
        progress=not args.quiet,
        data_label=args.data + (f" ({args.modalities})" if args.modalities else ""),
        num_threads=args.threads,
    )
    return result.summary() if hasattr(result, "summary") else {"out": str(args.out)}


def cmd_explain(args: argparse.Namespace) -> dict:
    if args.what == "heatmap":
        from .explain.heatmap import explain_heatmap_cli

        return explain_heatmap_cli(args.checkpoint, args.image, args.out, tile=args.tile, overlap=args.overlap,
                  batch_size=args.batch_size, device=args.device)
    from .data.sources import load_data

    data = _select_split(load_data(args.data), args.split)
    if args.what == "attributions":
        from .explain.attributions import run_attributions

        out = run_attributions(args.checkpoint, data, args.method, args.out, batch_size=args.batch_size, device=args.device)
    else:
        from .explain.fidelity import run_fidelity

        out = run_fidelity(args.checkpoint, data, args.out, truth=_planted_truth(args), methods=(args.method,),
                 batch_size=args.batch_size, device=args.device, max_samples=args.max_samples)
    return {"out": str(out)}


def _planted_truth(args: argparse.Namespace):
    """The demo cohort's planted ground truth for the chosen split (``--truth demo``)."""
    if args.truth is None:
        return None
    if args.truth != "demo" or not args.data.startswith("demo"):
        raise ValueError("--truth demo needs --data demo (planted ground truth exists only for the demo cohort)")
    from .datasets import load_demo_cohort

    cohort = load_demo_cohort()
    split = {"train": cohort.train, "test": cohort.test}.get(args.split)
    if split is None:
        raise ValueError(f"--truth demo: the demo cohort has train and test splits, not {args.split!r}")
    return split.truth


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusioncore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the registered methods")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train", help="train a method and write a checkpoint folder + metrics.json")
    p.add_argument("--method", required=True)
    p.add_argument("--data", required=True, help="mogonet:DIR | table:DIR_OR_MANIFEST | demo | synthetic-sparse | tcga:DIR | cmu:DIR")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--remove-modality", action="append", metavar="NAME", help="treat this modality as absent (repeatable)")
    p.add_argument("--gray-images", action="store_true", help="replace every image by constant gray 0.5 (Wenderoth's I*)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("import", help="convert an official checkpoint into a fusioncore checkpoint")
    p.add_argument("source", choices=["mmdynamics"])
    p.add_argument("--state-dict", required=True)
    p.add_argument("--data", required=True, help="the dataset the checkpoint was trained on (schema + train statistics)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("benchmark", help="train methods and rank them under missing modalities")
    p.add_argument("--data", required=True)
    p.add_argument("--methods", default="early,late,hybrid,mmdynamics")
    p.add_argument("--missing", default="0,0.3,0.6")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, help="override every method's epochs (stated in the table)")
    p.add_argument("--modalities", help="comma-separated subset of the data's modalities to use")
    p.add_argument("--threads", type=int, help="torch threads (1 is often fastest for small models on a busy machine)")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("explain", help="explanations: heatmap | attributions | fidelity")
    p.add_argument("what", choices=["heatmap", "attributions", "fidelity"])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", help="image file (heatmap)")
    p.add_argument("--data", help="dataset (attributions, fidelity)")
    p.add_argument("--split", default="test")
    p.add_argument("--method", default="ig", choices=["ig", "gradshap", "ablation", "occlusion"])
    p.add_argument("--truth", choices=["demo"], help="fidelity: score recovery of the demo cohort's planted features/patches")
    p.add_argument("--max-samples", type=int, help="fidelity: explain at most this many samples")
    p.add_argument("--out", required=True)
    p.add_argument("--tile", type=int, default=None)
    p.add_argument("--overlap", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "explain":
        if args.what == "heatmap" and not args.image:
            parser.error("explain heatmap needs --image")
        if args.what != "heatmap" and not args.data:
            parser.error(f"explain {args.what} needs --data")
    try:
        result = args.func(args)
        if result is not None:  # None: a non-zero rank of a torchrun launch, which prints nothing
            emit(result)
    except (ValueError, OSError, FloatingPointError) as err:
        print(f"fusioncore {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
