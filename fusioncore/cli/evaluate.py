"""``fusioncore evaluate``: a checkpoint's metrics on a dataset split, optionally without modalities."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from .args import nan_to_none, select_split


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from ..checkpoint import load
    from ..data.align import align_to_schema
    from ..data.sources import load_data
    from ..training import evaluate_model

    model = load(args.checkpoint, device=args.device)
    data = align_to_schema(select_split(load_data(args.data), args.split), model.schema)
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
        **nan_to_none(metrics),
    }


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--remove-modality", action="append", metavar="NAME", help="treat this modality as absent (repeatable)")
    p.add_argument("--gray-images", action="store_true", help="replace every image by constant gray 0.5 (Wenderoth's I*)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)
