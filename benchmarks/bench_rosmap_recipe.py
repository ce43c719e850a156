"""ROSMAP with the MM-dynamics paper recipe, end to end, over several seeds.

Times each seed (load + scale + 1000 full-batch epochs + evaluation) and prints the test
metrics, their mean ± std, and the time per seed against the 60 s goal, side by side.

    python benchmarks/bench_rosmap_recipe.py --data ../shared/data/rosmap --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

import fusioncore as fc
from fusioncore.config import override
from fusioncore.data.mogonet import load_mogonet
from fusioncore.training import evaluate_model, fit, seed_everything

GOAL_SECONDS = 60.0
PUBLISHED = {"acc": (84.2, 1.3), "f1": (84.6, 0.7), "auc": (91.2, 0.7)}
BAR = {"acc": 83.0, "f1": 83.9, "auc": 90.0}


def run_seed(data_dir: str, seed: int, device: str, epochs: int | None, trajectory_every: int = 0) -> dict:
    start = time.perf_counter()
    splits = load_mogonet(data_dir)
    entry = fc.get_method("mmdynamics")
    seed_everything(seed)  # the seed fixes the initial weights too, as `fusioncore train --seed` does
    model = fc.create_model("mmdynamics", splits.schema)
    cfg = override(entry.train_defaults, seed=seed, epochs=epochs, eval_every=trajectory_every)
    result = fit(model, splits.train, cfg, device=device, progress=False,
                 eval_data=splits.test if trajectory_every else None)
    seconds = time.perf_counter() - start
    metrics = evaluate_model(model, splits.test)
    row = {"seed": seed, "seconds": seconds, **{k: 100 * metrics[k] for k in ("acc", "f1", "auc")}}
    if trajectory_every:
        # What a run that prints test metrics every N epochs (as the official script does) would
        # let one pick: the best test accuracy over the printed epochs. Reported only to explain
        # a gap to published numbers; our own figures are always the final epoch.
        curve = [(h["epoch"], 100 * h["eval"]["acc"]) for h in result.history if "eval" in h]
        row["best_printed_acc"], row["best_printed_epoch"] = max((a, e) for e, a in curve)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/rosmap")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper's 1000")
    parser.add_argument("--json", help="also write the rows and summary to this JSON file")
    parser.add_argument("--trajectory-every", type=int, default=0,
                        help="also evaluate on test every N epochs (timing then includes those evaluations)")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, device {args.device}")
    print(f"{'seed':>4} {'ACC':>6} {'F1':>6} {'AUC':>6} {'seconds':>8} {'s/goal':>7}")
    rows = []
    for seed in args.seeds:
        row = run_seed(args.data, seed, args.device, args.epochs, args.trajectory_every)
        rows.append(row)
        extra = f"  best printed acc {row['best_printed_acc']:.1f} @ epoch {row['best_printed_epoch']}" if "best_printed_acc" in row else ""
        print(f"{seed:>4} {row['acc']:6.1f} {row['f1']:6.1f} {row['auc']:6.1f} {row['seconds']:8.1f} {row['seconds'] / GOAL_SECONDS:7.2f}{extra}", flush=True)
    summary = {}
    for key in ("acc", "f1", "auc"):
        values = np.array([r[key] for r in rows])
        summary[key] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    seconds = np.array([r["seconds"] for r in rows])
    if "best_printed_acc" in rows[0]:
        best = np.array([r["best_printed_acc"] for r in rows])
        print(f"\nbest-of-printed-epochs test ACC (selection on the test set, NOT a valid estimate): {best.mean():.1f} ± {best.std(ddof=1) if len(best) > 1 else 0:.1f}")
    print()
    print("| metric | fusioncore mean ± std | bar | published MM-dynamics |")
    print("|---|---|---|---|")
    for key in ("acc", "f1", "auc"):
        mean, std = summary[key]
        pub = PUBLISHED[key]
        print(f"| {key.upper()} | {mean:.1f} ± {std:.1f} | >= {BAR[key]} | {pub[0]} ± {pub[1]} |")
    print(f"\nseconds per seed: median {np.median(seconds):.1f}, max {seconds.max():.1f}; goal {GOAL_SECONDS:.0f} s "
          f"-> ratio {np.median(seconds) / GOAL_SECONDS:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "summary": summary, "device": args.device}, fh, indent=2)


if __name__ == "__main__":
    main()
