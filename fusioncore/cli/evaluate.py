"""``fusioncore evaluate``: a checkpoint's metrics on a dataset split, optionally without modalities."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from .args import nan_to_none, report_data, select_split


def removed_modalities(requested: list[str] | None, data) -> list[str]:
    """The ``--remove-modality`` names (repeatable, or comma-separated), each checked against the
    model's modalities. Removing every modality is refused: the model would predict from nothing,
    and the metrics would be those of a constant guess."""
    names = [n.strip() for item in requested or [] for n in item.split(",") if n.strip()]
    for name in names:
        if name not in data.modality_names:
            raise ValueError(f"--remove-modality {name!r}: not a modality of the model; its modalities are "
                             f"{', '.join(data.modality_names)}")
    names = list(dict.fromkeys(names))
    if names and set(names) >= set(data.modality_names):
        raise ValueError(f"--remove-modality: removing every modality ({', '.join(data.modality_names)}) leaves the "
                         "model nothing to predict from; keep at least one")
    return names


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from ..checkpoint import load
    from ..data.align import align_to_schema
    from ..data.checks import data_warnings
    from ..data.loaders import load_data
    from ..training import evaluate_model

    model = load(args.checkpoint, device=args.device)
    data = align_to_schema(select_split(load_data(args.data), args.split), model.schema)
    report_data("evaluate", data, model.preprocessing)
    masked = removed_modalities(args.remove_modality, data)
    for name in masked:
        present = data.present.copy()
        present[:, data.schema.index(name)] = False
        data = data.with_present(present)
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
        "warnings": data_warnings(data, model.preprocessing),
        **nan_to_none(metrics),
    }


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--remove-modality", action="append", metavar="NAME", help="treat this modality as absent (repeatable, or comma-separated)")
    p.add_argument("--gray-images", action="store_true", help="replace every image by constant gray 0.5 (Wenderoth's I*)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)
