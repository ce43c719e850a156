"""``fusioncore explain KIND``: explanations written to files (heatmap | attributions | fidelity | trust | slide | slides).

Each kind is its own sub-command with its own options; a new kind is one ``add_*`` function
registered in :data:`KINDS`.
"""

from __future__ import annotations

import argparse

from ..explain.attributions import METHOD_LABELS, METHODS
from . import trust
from .args import select_split
from .slides import add_slide, add_slides


def cmd_heatmap(args: argparse.Namespace) -> dict:
    from ..reports.heatmap import explain_heatmap_cli

    return explain_heatmap_cli(args.checkpoint, args.image, args.out, tile=args.tile, overlap=args.overlap,
                               batch_size=args.batch_size, device=args.device)


def cmd_attributions(args: argparse.Namespace) -> dict:
    from ..data.loaders import load_data
    from ..reports.attributions import run_attributions

    data = select_split(load_data(args.data), args.split)
    out = run_attributions(args.checkpoint, data, args.method, args.out, batch_size=args.batch_size, device=args.device)
    return {"out": str(out)}


def cmd_fidelity(args: argparse.Namespace) -> dict:
    from ..data.loaders import load_data
    from ..reports.fidelity import run_fidelity

    data = select_split(load_data(args.data), args.split)
    out = run_fidelity(args.checkpoint, data, args.out, truth=planted_truth(args), methods=(args.method,),
                       batch_size=args.batch_size, device=args.device, max_samples=args.max_samples)
    return {"out": str(out)}


def planted_truth(args: argparse.Namespace):
    """The demo cohort's planted ground truth for the chosen split (``--truth demo``)."""
    if args.truth is None:
        return None
    if args.truth != "demo" or not args.data.startswith("demo"):
        raise ValueError("--truth demo needs --data demo (planted ground truth exists only for the demo cohort)")
    from ..demo import load_demo_cohort

    cohort = load_demo_cohort()
    split = {"train": cohort.train, "test": cohort.test}.get(args.split)
    if split is None:
        raise ValueError(f"--truth demo: the demo cohort has train and test splits, not {args.split!r}")
    return split.truth


def _common(p: argparse.ArgumentParser, *, data: bool) -> None:
    p.add_argument("--checkpoint", required=True)
    if data:
        p.add_argument("--data", required=True, help="dataset spec, e.g. demo or table:DIR")
        p.add_argument("--split", default="test")
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")


def add_heatmap(sub) -> None:
    p = sub.add_parser("heatmap", help="tiled informativeness map of an image larger than the model input")
    _common(p, data=False)
    p.add_argument("--image", required=True, help="image file (PNG, JPEG or TIFF)")
    p.add_argument("--tile", type=int, default=None)
    p.add_argument("--overlap", type=int, default=0)
    p.set_defaults(func=cmd_heatmap)




def add_attributions(sub) -> None:
    p = sub.add_parser("attributions", help="captum attributions per feature / patch over a dataset split")
    _common(p, data=True)
    p.add_argument("--method", default="ig", choices=METHODS, help="captum method: " + ", ".join(f"{k} ({v})" for k, v in METHOD_LABELS.items()))
    p.set_defaults(func=cmd_attributions)


def add_fidelity(sub) -> None:
    p = sub.add_parser("fidelity", help="deletion / insertion curves and planted-truth recovery")
    _common(p, data=True)
    p.add_argument("--method", default="ig", choices=METHODS, help="captum method: " + ", ".join(f"{k} ({v})" for k, v in METHOD_LABELS.items()))
    p.add_argument("--truth", choices=["demo"], help="score recovery of the demo cohort's planted features/patches")
    p.add_argument("--max-samples", type=int, help="explain at most this many samples")
    p.set_defaults(func=cmd_fidelity)


KINDS = [add_heatmap, add_attributions, add_fidelity, trust.add_trust, add_slide, add_slides]


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="explanations: " + " | ".join(k.__name__.removeprefix("add_") for k in KINDS))
    kinds = p.add_subparsers(dest="what", required=True, metavar="KIND")
    for add in KINDS:
        add(kinds)
