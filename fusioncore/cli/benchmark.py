"""``fusioncore benchmark``: train methods and rank them under missing modalities."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_benchmark(args: argparse.Namespace) -> dict:
    from ..benchmark import BenchmarkSettings, run_benchmark, select_modalities
    from ..data.loaders import load_data

    settings = BenchmarkSettings(  # checked before the data is read
        methods=args.methods,
        missing_rates=args.missing,
        seeds=args.seeds,
        out_dir=Path(args.out),
        epochs=args.epochs,
        device=args.device,
        progress=not args.quiet,
        data_label=args.data + (f" ({args.modalities})" if args.modalities else ""),
        num_threads=args.threads,
    )
    splits = load_data(args.data)
    if args.modalities:
        splits = select_modalities(splits, [m.strip() for m in args.modalities.split(",") if m.strip()])
    return run_benchmark(splits, settings).summary()


def add_parser(sub) -> None:
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
