"""A tiny bundled-demo folder for dashboard tests (same layout as ``fusioncore/assets/demo/``, seconds to build).

``build_tiny_assets(root)`` writes ``root/demo/cohort.{npz,json}`` (a 60-sample demo cohort) and
small versions of the demo checkpoints; point ``FUSIONCORE_ASSETS`` at ``root`` to use them.
"""

from __future__ import annotations

from pathlib import Path

import torch

import fusioncore as fc
from fusioncore.config import TrainConfig
from fusioncore.data.synthetic_cohort import select_modalities
from fusioncore.demo import make_demo_cohort, save_demo_cohort
from fusioncore.training import fit

OMICS = ("mrna", "methylation", "noisy")
IMAGE_OMICS = ("histology", "mrna", "methylation", "noisy")


def build_tiny_assets(root: str | Path, *, n: int = 60, image: bool = True) -> Path:
    """The demo layout under ``root/demo``; returns ``root``."""
    root = Path(root)
    folder = root / "demo"
    cohort = make_demo_cohort(n=n)
    save_demo_cohort(cohort, folder)
    train = cohort.data.subset(cohort.train_index)
    torch.manual_seed(0)
    omics = fc.create_model("mmdynamics", select_modalities(train, OMICS).schema, hidden_dim=16, dropout=0.0)
    fit(omics, select_modalities(train, OMICS), TrainConfig(epochs=60, lr=1e-2, scheduler="none", seed=0), progress=False)
    omics.save(folder / "mmdynamics_omics")
    if image:
        torch.manual_seed(0)
        img = fc.create_model("mmdynamics", train.schema, hidden_dim=16, image_hidden_dim=16, image_gate="paper",
                              dropout=0.0)
        # untrained (epochs=0 fits the preprocessing only): the dashboard tests need its outputs, not its accuracy
        fit(img, train, TrainConfig(epochs=0, scheduler="none", seed=0), progress=False)
        img.save(folder / "mmdynamics_image_omics")
    return root


def tiny_model(data, method: str = "mmdynamics", epochs: int = 40, **overrides):
    """A small model of ``method`` trained briefly on ``data`` (seeded)."""
    torch.manual_seed(0)
    defaults = {"mmdynamics": dict(hidden_dim=16, dropout=0.0),
                "mca": dict(dim=16, depth=1, heads=2, dim_head=8, tokens_per_channel=1)}.get(method, {})
    model = fc.create_model(method, data.schema, **{**defaults, **overrides})
    cfg = TrainConfig(epochs=epochs, lr=1e-2, scheduler="none", seed=0, batch_size=None if method == "mmdynamics" else 32)
    fit(model, data, cfg, progress=False)
    return model.eval()


def write_table_folder(data, folder: str | Path) -> Path:
    """``data`` (tabular modalities) in the table layout: one CSV per modality + labels.csv."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for j, spec in enumerate(data.schema.modalities):
        rows = data.present[:, j]
        frame = pd.DataFrame(data.features[spec.name][rows], columns=list(spec.features))
        frame.insert(0, "sample_id", [s for s, r in zip(data.sample_ids, rows) if r])
        frame.to_csv(folder / f"{spec.name}.csv", index=False, float_format="%.9g")
    pd.DataFrame({"sample_id": data.sample_ids, "label": [data.schema.classes[k] for k in data.labels]}).to_csv(
        folder / "labels.csv", index=False)
    return folder
