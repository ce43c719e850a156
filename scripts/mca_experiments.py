"""MCA vs Zorro vs EAO at several sparsities: train self-supervised, then evaluate embeddings.

Produces the tables of ``docs/results.md (section 5)``::

    python scripts/mca_experiments.py --dataset synthetic --sparsity 0 0.4 0.8 --seeds 0 --out runs/mca_synth
    python scripts/mca_experiments.py --dataset rosmap --sparsity 0 0.4 --seeds 0 1 2 --out runs/mca_rosmap

Each run: predrop once with a seed before training (ROSMAP: the given MOGONET split, each
split's samples dropped independently, seed = run seed), train with ``fusioncore.training.fit``
(``lambda_supervised = 0``: the paper's purely contrastive setting), then
``fusioncore.explain.embeddings.evaluate_embedding_model`` (retrieval on the test pool, linear
and MLP probes on the fusion embedding, uniformity / alignment). The presence matrices are
written beside each run's metrics (``presence_train.csv`` / ``presence_test.csv``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import fusioncore as fc
from fusioncore.config import TrainConfig
from fusioncore.data.predrop import apply_predrop, write_presence
from fusioncore.explain.embeddings import evaluate_embedding_model
from fusioncore.training import fit

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COLUMNS = [
    ("retrieval/mean/median_rank", "med. rank"),
    ("retrieval/mean/r1", "R@1"),
    ("retrieval/mean/r5", "R@5"),
    ("retrieval/mean/r10", "R@10"),
    ("probe/linear/f1", "lin F1"),
    ("probe/linear/auroc", "lin AUC"),
    ("probe/mlp/f1", "MLP F1"),
    ("probe/mlp/auroc", "MLP AUC"),
    ("probe/linear/pcc", "lin PCC"),
    ("norm_uniformity/fusion", "unif. fusion"),
    ("norm_alignment/mean", "align."),
]


def load(dataset: str, sparsity: float, seed: int, n: int = 800):
    """``(train, test, regression targets or None)`` with predrop applied once."""
    if dataset == "synthetic":
        from fusioncore.data.synthetic_sparse import make_synthetic_sparse

        syn = make_synthetic_sparse(n, sparsity=sparsity, seed=seed)
        return syn.splits.train, syn.splits.test, (syn.latent_train[:, 0], syn.latent_test[:, 0])
    if dataset == "rosmap":
        from fusioncore.data.mogonet import load_mogonet

        splits = load_mogonet(SHARED / "rosmap")
        train, test = splits.train, splits.test
        if sparsity > 0:
            train = apply_predrop(train, sparsity, seed=1000 + seed)
            test = apply_predrop(test, sparsity, seed=2000 + seed)
        return train, test, None
    raise ValueError(f"unknown dataset {dataset!r}: use synthetic or rosmap")


def run(args, method: str, sparsity: float, seed: int, out: Path) -> dict:
    train, test, reg = load(args.dataset, sparsity, seed, args.n)
    torch.manual_seed(seed)
    model = fc.create_model(
        method, train.schema, dim=args.dim, depth=args.depth, heads=args.heads, dim_head=args.dim_head,
        tokens_per_channel=args.tokens_per_channel, recipe=args.recipe, lambda_supervised=0.0,
        loss_normalize=args.loss_normalize,
    )
    cfg = TrainConfig(
        epochs=args.epochs, lr=args.lr, weight_decay=1e-4, optimizer="adamw", scheduler="cosine",
        warmup_steps=args.warmup, batch_size=args.batch_size, grad_clip=2.0, seed=seed,
    )
    t0 = time.perf_counter()
    res = fit(model, train, cfg, preprocessing="none", progress=False)
    metrics = evaluate_embedding_model(res.model, train, test, probe_epochs=args.probe_epochs, probe_lr=args.probe_lr,
                                       regression_targets=reg, seed=seed)
    metrics.update({"loss_normalize": bool(args.loss_normalize), "method": method, "sparsity": sparsity, "seed": seed, "train_seconds": res.seconds,
                    "final_loss": res.history[-1]["loss"], "seconds": time.perf_counter() - t0,
                    "missing_fraction_test": float(1 - test.present.mean())})
    folder = out / f"{method}_p{sparsity}_s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    write_presence(folder / "presence_train.csv", train)
    write_presence(folder / "presence_test.csv", test)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if args.save_checkpoints:
        res.model.save(folder / "checkpoint", metrics=metrics, extra={"predrop": {"p": sparsity, "seed": seed}})
    print(f"{method} p={sparsity} seed={seed}: loss {metrics['final_loss']:.3f}, "
          f"R@1 {metrics['retrieval/mean/r1']:.3f}, lin AUC {metrics['probe/linear/auroc']:.3f} "
          f"({metrics['seconds']:.0f} s)", flush=True)
    return metrics


def table(rows: list[dict]) -> str:
    """Markdown table, mean ± std over seeds per (sparsity, method)."""
    cols = [(k, h) for k, h in COLUMNS if any(k in r for r in rows)]
    lines = ["| sparsity | method | seeds | " + " | ".join(h for _, h in cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    keys = sorted({(r["sparsity"], r["method"]) for r in rows}, key=lambda k: (k[0], ["mca", "zorro", "eao"].index(k[1])))
    for sp, method in keys:
        group = [r for r in rows if r["sparsity"] == sp and r["method"] == method]
        cells = []
        for k, _ in cols:
            v = np.array([r.get(k, np.nan) for r in group], dtype=float)
            cells.append(f"{np.nanmean(v):.3f}" + (f" ± {np.nanstd(v):.3f}" if len(v) > 1 else ""))
        lines.append(f"| {sp} | {method} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="synthetic", choices=["synthetic", "rosmap"])
    p.add_argument("--methods", nargs="+", default=["mca", "zorro", "eao"])
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.0, 0.4, 0.8])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n", type=int, default=800, help="synthetic samples (train + test)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim-head", type=int, default=16)
    p.add_argument("--tokens-per-channel", type=int, default=2)
    p.add_argument("--recipe", default="tcga", choices=["tcga", "cmu"])
    p.add_argument("--probe-epochs", type=int, default=300)
    p.add_argument("--probe-lr", type=float, default=1e-3)
    p.add_argument("--loss-normalize", action="store_true", help="cosine logits in the contrastive loss (not the paper's default)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--save-checkpoints", action="store_true")
    p.add_argument("--out", default="runs/mca")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run(args, m, s, seed, out) for s in args.sparsity for seed in args.seeds for m in args.methods]
    (out / "all_metrics.json").write_text(json.dumps(rows, indent=2))
    text = table(rows)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
