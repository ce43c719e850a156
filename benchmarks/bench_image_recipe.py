"""Image MM-dynamics on the demo cohort with the default recipe: training time and heatmap AUROC.

Runs what ``fusioncore train --method mmdynamics --data demo --seed S`` runs (the registry's
default recipe for an image + omics schema, its epoch picked on a validation split carved from
the training split), then scores the test split: accuracy and the AUROC of the image gate's
per-patch values against the planted evidence patches (``explanation_fidelity``). The aims are
AUROC >= 0.9 and training <= 180 s on a 2-core CPU. Wall seconds depend on what else runs on the machine; the
process's CPU seconds (all threads together) are printed beside them.

    python benchmarks/bench_image_recipe.py --seeds 0 1 2
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
from fusioncore.explain.planted import explanation_fidelity
from fusioncore.demo import load_demo_cohort
from fusioncore.registry import get_recipe
from fusioncore.training import evaluate_model, seed_everything
from fusioncore.training.recipes import train_by_recipe

AIM_AUROC, AIM_SECONDS = 0.9, 180.0


def run(seed: int, recipe_name: str, device: str) -> dict:
    """Train on the demo train split by ``recipe_name``; time it and score the test split."""
    cohort = load_demo_cohort()
    splits = cohort.splits()
    recipe = get_recipe("mmdynamics", splits.schema, recipe_name)
    seed_everything(seed)
    model = fc.create_model("mmdynamics", splits.schema, override(fc.get_method("mmdynamics").config_cls(),
                                                                   **recipe.model_params))
    start, cpu_start = time.perf_counter(), time.process_time()
    result, record = train_by_recipe(model, splits, recipe, override(recipe.train, seed=seed), device=device,
                                     progress=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    fidelity = explanation_fidelity(result.model, cohort.test)
    metrics = evaluate_model(result.model, splits.test, tcp=False)
    return {"seed": seed, "seconds": seconds, "cpu_seconds": cpu_seconds, "acc": 100 * metrics["acc"], "auroc": fidelity["heatmap_auroc"],
            "auroc_by_class": fidelity.get("heatmap_auroc_by_class"), "selected_epoch": record.get("selected_epoch"),
            "stopped_epoch": record.get("stopped_epoch", len(result.history))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--recipe", default="default", choices=["default", "paper"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"device {args.device}; other jobs on this machine inflate the seconds")
    print("| seed | test acc % | heatmap AUROC | by class | selected / stopped epoch | training s (wall) | CPU s |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for seed in args.seeds:
        row = run(seed, args.recipe, args.device)
        rows.append(row)
        by_class = " / ".join(f"{v:.2f}" for v in (row["auroc_by_class"] or {}).values())
        print(f"| {seed} | {row['acc']:.1f} | {row['auroc']:.3f} | {by_class} | {row['selected_epoch']} / "
              f"{row['stopped_epoch']} | {row['seconds']:.0f} | {row['cpu_seconds']:.0f} |", flush=True)
    auroc, seconds = np.array([r["auroc"] for r in rows]), np.array([r["seconds"] for r in rows])
    print(f"\nheatmap AUROC mean {auroc.mean():.3f} (min {auroc.min():.3f}; aim >= {AIM_AUROC}); training seconds "
          f"median {np.median(seconds):.0f} (max {seconds.max():.0f}; aim <= {AIM_SECONDS:.0f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
