"""``fusioncore explain trust``: every explanation a model gives, with its trust verdict.

Writes ``DIR/trust.json`` (one record per explanation: randomisation similarity, deletion gap
with its interval, ROAD gap for image maps, planted-truth recovery on the demo cohort, verdict
and why), ``trust.csv``, ``samples/<id>.csv`` and figures (``fusioncore.reports.trust``). On the
demo cohort (``--data demo[:MODALITIES]``) the planted truth of the split is used automatically.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..explain.attributions import METHODS
from .args import select_split


def _samples(args: argparse.Namespace):
    """The split to assess (its first ``--max-samples`` rows) and its planted truth (demo only)."""
    from ..data.loaders import load_data

    if args.max_samples is not None and args.max_samples < 1:
        raise ValueError(f"--max-samples: expected a positive integer, got {args.max_samples}")
    data = select_split(load_data(args.data), args.split)
    n = len(data) if args.max_samples is None else min(args.max_samples, len(data))
    keep = np.arange(n)
    if args.data.split(":")[0] == "demo" and args.split in ("train", "test"):
        from ..data.synthetic_cohort import SyntheticCohort
        from ..demo import load_demo_cohort

        cohort = load_demo_cohort()
        split = cohort.train if args.split == "train" else cohort.test
        if tuple(split.data.sample_ids) == tuple(data.sample_ids):
            sub = SyntheticCohort(data, split.truth).subset(keep)
            return sub.data, sub.truth
    return data.subset(keep), None


def _formats(text: str) -> tuple[str, ...]:
    from ..viz import ALL_FORMATS

    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = sorted(set(formats) - set(ALL_FORMATS))
    if bad:
        raise ValueError(f"--figure-formats: unknown {bad}; choose from {', '.join(ALL_FORMATS)}")
    return formats


def cmd_trust(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    from ..explain.attributions import load_model
    from ..explain.trust_assess import TrustSettings, assess_trust
    from ..reports.trust import write_trust_report

    formats = _formats(args.figure_formats)
    data, truth = _samples(args)
    model = load_model(args.checkpoint, args.device)
    settings = TrustSettings(attribution=None if args.attribution == "none" else args.attribution, n_stages=args.stages,
                             steps=args.steps, n_random=args.random_orderings, randomisation_samples=args.randomisation_samples,
                             batch_size=args.batch_size, seed=args.seed)
    with tqdm(total=1, desc="trust", file=sys.stderr, leave=False) as bar:
        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.set_postfix_str(what[:60])
            bar.update(done - bar.n)

        report = assess_trust(model, data, truth=truth, settings=settings, progress=progress)
    path = write_trust_report(report, args.out, checkpoint=args.checkpoint, config=model.config, figure_formats=formats)
    for r in report.records:
        if r.verdict != "trustworthy":
            print(f"fusioncore explain trust: {r.label} is {r.verdict}: " + "; ".join(c.line for c in r.checks if c.status != "pass"),
                  file=sys.stderr)
    return {"out": str(path), "seconds": round(report.seconds, 1), "device": report.device, "n_samples": len(report.sample_ids),
            "verdicts": {f"{r.explanation}:{r.modality}": r.verdict for r in report.records}}


def add_trust(sub) -> None:
    p = sub.add_parser("trust", help="trust verdict of every explanation: randomisation, deletion, ROAD, planted truth")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="dataset spec, e.g. demo or table:DIR (demo: planted truth is scored)")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True)
    p.add_argument("--max-samples", type=int, help="assess the first N samples of the split (default: all)")
    p.add_argument("--attribution", default="ig", choices=[*METHODS, "none"], help="captum method assessed beside the model's own")
    p.add_argument("--stages", type=int, default=4, help="randomisation cascade stages (output layer first)")
    p.add_argument("--randomisation-samples", type=int, default=8, help="samples the randomisation cascade runs on")
    p.add_argument("--steps", type=int, default=5, help="deletion / insertion steps")
    p.add_argument("--random-orderings", type=int, default=2, help="random orderings per sample (the chance reference)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure-formats", default="png,html,csv,json", help="comma-separated: png, svg, pdf, html, csv, json")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_trust)
