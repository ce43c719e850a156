"""Build ``fusioncore/assets/demo/`` reproducibly: the demo cohort and the trained demo checkpoints.

    python scripts/build_assets.py [--out fusioncore/assets] [--seed 0] [--n 500]

Same seed on CPU -> same bytes (single thread, deterministic algorithms, fixed zip
timestamps). Writes:

* ``cohort.npz`` + ``cohort.json`` — the synthetic H&E + omics cohort with planted ground truth;
* ``mmdynamics_image_omics/`` — MM-dynamics on histology + mrna + methylation + noisy;
* ``mmstatic_image_omics/``   — MM-static on the same four modalities;
* ``mmdynamics_omics/``       — MM-dynamics on the three tabular modalities only;
* ``mca_image_omics/``, ``zorro_image_omics/``, ``eao_image_omics/``, ``hybrid_image_omics/`` — the
  attention models on histology + mrna + methylation + noisy, the tile cut into 8 x 8-px patch
  tokens (the planted patches), so the dashboard's Attention view shows the mask, the per-layer /
  per-head maps, the channel x modality mass and the attention each reader pays to each patch;
* ``fidelity.json``           — metrics on the held-out split and explanation fidelity against
  the planted truth (also in each checkpoint's ``metrics.json``); for the attention models the
  AUROC of each reader's patch attention against the planted patches
  (``fusioncore.explain.attention_patches.patch_attention_fidelity``).

The three MM checkpoints are trained first and each model starts from its own seed, so adding the
attention models left their bytes unchanged.

Image MM-dynamics is trained with the gate decoupled from its evaluator
(``image_gate_training="decoupled"``: the image encoder and classifier learn from randomly masked
tiles, the gate through a frozen copy of them), a white gate fill, a pooled smp encoder for the
image, and one cosine-decayed run whose sparsity term follows a schedule
(``sparsity_warmup_epochs`` without it, then a linear ramp over ``sparsity_ramp_epochs``). Each of
those choices is measured in docs/results.md, section 3: trained jointly, as published, the gate
learns to *encode* the class in which patches it opens instead of showing the evidence (heatmap
AUROC 0.61-0.66 on two of three training seeds); with a black fill a closed patch looks like
dense stain, and the gate keeps the background instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fusioncore as fc  # noqa: E402
from fusioncore.config import TrainConfig  # noqa: E402
from fusioncore.data.synthetic_cohort import SyntheticCohort  # noqa: E402
from fusioncore.demo import make_demo_cohort, save_demo_cohort  # noqa: E402
from fusioncore.explain.attention_patches import patch_attention_fidelity  # noqa: E402
from fusioncore.explain.planted import explanation_fidelity  # noqa: E402
from fusioncore.training import evaluate_model, fit  # noqa: E402

IMAGE_OMICS = ("histology", "mrna", "methylation", "noisy")
OMICS = ("mrna", "methylation", "noisy")

# Small, fast demo models (the paper's sizes are 1000/500; these keep assets < 25 MB and the
# build to minutes on two CPU cores).
DYN_IMAGE = dict(hidden_dim=64, image_hidden_dim=64, image_gate="smp", image_gate_encoder="resnet18",
                 image_encoder="resnet18", image_encoder_depth=3, image_gate_fill="white", class_weighted=True,
                 image_gate_training="decoupled")
DYN_OMICS = dict(hidden_dim=128, class_weighted=True)
STATIC = dict(hidden_dim=64, image_hidden_dim=64, image_encoder="smallcnn", class_weighted=True)
# Token models: CPU scale (D 32, 2 layers, 4 heads x 8), 8 x 8-px patch tokens, cosine logits in the
# contrastive loss (raw dot products saturate in a short training: docs/results.md, section 5).
# Every field is pinned here, so a change of the registry's defaults cannot change the assets.
TOKEN = dict(dim=32, depth=2, heads=4, dim_head=8, ff_mult=4, tokens_per_channel=2, recipe="tcga", lambda_supervised=1.0,
             loss_normalize=True, image_patch_size=8, image_positions="sinusoidal")
HYBRID = dict(image_tokens="patches", image_patch_size=8, hidden_dim=128, encoder_dropout=0.5, tokens_per_modality=4,
              token_dim=64, n_heads=4, n_layers=2, ff_mult=2, dropout=0.1)
TOKEN_METHODS = ("mca", "zorro", "eao", "hybrid")


def _determinism(seed: int) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)


def _metrics(model, test: SyntheticCohort) -> dict:
    keep = ("acc", "balanced_acc", "f1_weighted", "f1_macro", "recall_weighted", "precision_weighted", "auc")
    ev = evaluate_model(model, test.data)
    out = {k: round(float(ev[k]), 6) for k in keep if k in ev}
    fid = explanation_fidelity(model, test)
    if any(model.patch_grid(m.name) is not None for m in model.schema.modalities):
        fid.update(patch_attention_fidelity(model, test))
    for k, v in fid.items():
        out[f"fidelity_{k}"] = round(v, 6) if isinstance(v, float) else (
            {m: round(c, 6) for m, c in v.items()} if isinstance(v, dict) else v)
    return out


def train_dynamics_image(train: SyntheticCohort, seed: int, epochs: int, warmup: float, ramp: float, sparsity: float):
    _determinism(seed)
    model = fc.create_model("mmdynamics", train.data.schema, lambda_sparsity=sparsity, sparsity_warmup_epochs=warmup,
                            sparsity_ramp_epochs=ramp, **DYN_IMAGE)
    cfg = TrainConfig(epochs=epochs, lr=2e-3, weight_decay=1e-4, scheduler="cosine", batch_size=32, seed=seed)
    fit(model, train.data, cfg, progress=False)
    return model, {"epochs": epochs, "sparsity_warmup_epochs": warmup, "sparsity_ramp_epochs": ramp,
                   "lambda_sparsity": sparsity, "lr": cfg.lr, "scheduler": cfg.scheduler, "batch_size": cfg.batch_size}


def train_static(train: SyntheticCohort, seed: int, epochs: int):
    _determinism(seed)
    model = fc.create_model("mmstatic", train.data.schema, **STATIC)
    cfg = TrainConfig(epochs=epochs, lr=1e-3, weight_decay=1e-4, scheduler="none", batch_size=32, seed=seed)
    fit(model, train.data, cfg, progress=False)
    return model, {"epochs": epochs}


def train_dynamics_omics(train: SyntheticCohort, seed: int, epochs: int):
    _determinism(seed)
    model = fc.create_model("mmdynamics", train.data.schema, **DYN_OMICS)
    cfg = TrainConfig(epochs=epochs, lr=1e-3, weight_decay=1e-4, scheduler="none", seed=seed)
    fit(model, train.data, cfg, progress=False)
    return model, {"epochs": epochs}


def train_token_model(method: str, train: SyntheticCohort, seed: int, epochs: int):
    """MCA / Zorro / EAO / hybrid with patch tokens for the image (the explicit demo recipe, not the
    registry default): AdamW, cosine schedule, batch 16, gradient clip 2."""
    _determinism(seed)
    model = fc.create_model(method, train.data.schema, **(HYBRID if method == "hybrid" else TOKEN))
    cfg = TrainConfig(epochs=epochs, lr=1e-3, weight_decay=1e-4, optimizer="adamw", scheduler="cosine",
                      batch_size=16, grad_clip=2.0, seed=seed)
    fit(model, train.data, cfg, progress=False)
    return model, {"epochs": epochs, "lr": cfg.lr, "optimizer": cfg.optimizer, "scheduler": cfg.scheduler,
                   "batch_size": cfg.batch_size, "grad_clip": cfg.grad_clip}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "fusioncore" / "assets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--image-epochs", type=int, default=24)
    ap.add_argument("--image-sparsity-warmup", type=float, default=6)
    ap.add_argument("--image-sparsity-ramp", type=float, default=10)
    ap.add_argument("--image-sparsity", type=float, default=0.3, help="lambda_sparsity of the image model")
    ap.add_argument("--static-epochs", type=int, default=20)
    ap.add_argument("--omics-epochs", type=int, default=400)
    ap.add_argument("--token-epochs", type=int, default=20, help="epochs of the mca/zorro/eao/hybrid demo models")
    ap.add_argument("--image-gate-fill", choices=["black", "white"], default="white",
                    help="MMDynamicsConfig.image_gate_fill of the image model (the bundled assets use white)")
    ap.add_argument("--image-gate-training", choices=["joint", "decoupled"], default="decoupled",
                    help="MMDynamicsConfig.image_gate_training of the image model (the bundled assets use decoupled)")
    ap.add_argument("--image-encoder", default="resnet18",
                    help="image encoder of the MM-dynamics model: 'smallcnn' or an smp encoder name")
    args = ap.parse_args(argv)
    DYN_IMAGE["image_gate_fill"] = args.image_gate_fill
    DYN_IMAGE["image_encoder"] = args.image_encoder
    DYN_IMAGE["image_gate_training"] = args.image_gate_training
    start = time.perf_counter()
    folder = args.out / "demo"
    cohort = make_demo_cohort(seed=args.seed, n=args.n)
    save_demo_cohort(cohort, folder)
    train, test = cohort.train, cohort.test
    report: dict = {"seed": args.seed, "n": args.n, "n_train": len(cohort.train_index), "n_test": len(cohort.test_index)}
    jobs = [
        ("mmdynamics_omics", OMICS, lambda tr: train_dynamics_omics(tr, args.seed, args.omics_epochs)),
        ("mmstatic_image_omics", IMAGE_OMICS, lambda tr: train_static(tr, args.seed, args.static_epochs)),
        ("mmdynamics_image_omics", IMAGE_OMICS,
         lambda tr: train_dynamics_image(tr, args.seed, args.image_epochs, args.image_sparsity_warmup,
                                         args.image_sparsity_ramp, args.image_sparsity)),
    ] + [(f"{method}_image_omics", IMAGE_OMICS, lambda tr, method=method: train_token_model(method, tr, args.seed, args.token_epochs))
         for method in TOKEN_METHODS]
    for name, mods, train_fn in jobs:
        t0, c0 = time.perf_counter(), time.process_time()
        model, recipe = train_fn(train.select(mods))
        metrics = _metrics(model, test.select(mods))
        model.save(folder / name, metrics=metrics, extra={"demo": True, "modalities": list(mods), "recipe": recipe,
                                                          "cohort_seed": args.seed})
        report[name] = metrics
        print(f"{name}: {time.perf_counter() - t0:.0f} s ({time.process_time() - c0:.0f} s CPU)  " + json.dumps(metrics),
              flush=True)
    (folder / "fidelity.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    print(f"assets: {total / 1e6:.2f} MB in {folder}; sha256 {digest.hexdigest()}; {time.perf_counter() - start:.0f} s "
          f"({time.process_time():.0f} s CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
