"""``fusioncore list`` (the registered methods) and ``fusioncore import`` (official checkpoints)."""

from __future__ import annotations

import argparse

from ..output_folder import guarded_output


def cmd_list(args: argparse.Namespace) -> dict:
    from ..registry import get_method, list_models

    return {name: {"description": get_method(name).description, "supports": list(get_method(name).supports)}
            for name in list_models()}


def cmd_import(args: argparse.Namespace) -> dict:
    from ..data.sources import load_data
    from ..importers import import_mmdynamics

    if args.source != "mmdynamics":
        raise ValueError(f"import supports 'mmdynamics' checkpoints, not {args.source!r}")
    out = import_mmdynamics(args.state_dict, load_data(args.data), args.out)
    return {"checkpoint": str(out), "source": args.state_dict}


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list the registered methods")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import", help="convert an official checkpoint into a fusioncore checkpoint")
    p.add_argument("source", choices=["mmdynamics"])
    p.add_argument("--state-dict", required=True)
    p.add_argument("--data", required=True, help="the dataset the checkpoint was trained on (schema + train statistics)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (new, empty, or a checkpoint with --force)")
    p.add_argument("--force", action="store_true", help="replace the checkpoint already in --out")
    p.set_defaults(func=guarded_output(cmd_import))
