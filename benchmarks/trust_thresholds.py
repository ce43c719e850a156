"""The measurements behind the trust thresholds (docs/trust.md): every bundled demo model and the
same architecture untrained, the numbers each check reads, side by side.

    python benchmarks/trust_thresholds.py --max-samples 8

For each demo checkpoint (``fusioncore.demo.DEMO_CHECKPOINTS``) and its untrained twin (same
method, config and preprocessing, seed 0), on the first ``--max-samples`` test samples of the demo
cohort with its planted truth: per explanation the randomisation |Spearman| (and SSIM), the
deletion and ROAD gaps as fractions of the modality's effect, the modality effect, the planted
truth AUROC and the verdict. Prints one markdown table; ``--json PATH`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fusioncore as fc  # noqa: E402
from fusioncore.demo import DEMO_CHECKPOINTS, demo_checkpoint, load_demo_cohort  # noqa: E402
from fusioncore.explain.trust_assess import TrustSettings, assess_trust  # noqa: E402


def untrained_twin(model, seed: int = 0):
    torch.manual_seed(seed)
    twin = fc.create_model(model.method, model.schema, **vars(model.config))
    twin.preprocessing = model.preprocessing
    return twin.eval()


def rows_for(name: str, variant: str, model, sub, settings: TrustSettings) -> list[dict]:
    start = time.perf_counter()
    report = assess_trust(model, sub.data, truth=sub.truth, settings=settings)
    rows = []
    for r in report.records:
        rel = lambda gap: None if gap is None or not abs(r.modality_effect) > 0 else gap.mean / abs(r.modality_effect)  # noqa: E731
        rows.append({"model": name, "variant": variant, "explanation": r.explanation, "modality": r.modality,
                     "randomisation": r.randomisation_similarity, "ssim": r.randomisation_ssim,
                     "deletion_rel": rel(r.deletion_gap), "deletion_low": r.deletion_gap.low, "road_rel": rel(r.road_gap),
                     "effect": r.modality_effect, "recovery": r.recovery_auroc, "verdict": r.verdict})
    print(f"{name} {variant}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return rows


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-samples", type=int, default=8)
    p.add_argument("--models", default=",".join(DEMO_CHECKPOINTS))
    p.add_argument("--json")
    args = p.parse_args()
    split = load_demo_cohort().test.subset(np.arange(args.max_samples))
    settings = TrustSettings(randomisation_samples=args.max_samples)
    rows = []
    for name in args.models.split(","):
        model = fc.load(demo_checkpoint(name), device="auto")
        rows += rows_for(name, "trained", model, split, settings)
        rows += rows_for(name, "untrained", untrained_twin(model).to(model.device), split, settings)
    keys = ["model", "variant", "explanation", "modality", "randomisation", "ssim", "deletion_rel", "deletion_low",
            "road_rel", "effect", "recovery", "verdict"]
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(fmt(r[k]) for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
