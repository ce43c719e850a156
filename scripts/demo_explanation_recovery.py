"""Planted-truth recovery on the demo cohort (CPU, reduced so it finishes on a loaded 2-core box).

    FUSIONCORE_STATIC_RENDERER=matplotlib python scripts/demo_explanation_recovery.py omics runs/recovery_omics

Stage "omics": MM-dynamics on mrna + methylation + noisy (train split), explained on the test split.
Stage "image": MM-dynamics on histology alone (a train subset, few epochs), explained on test samples.
"""
import sys, time
import numpy as np, torch
import pandas as pd
import fusioncore as fc
from fusioncore.config import DataSchema, TrainConfig
from fusioncore.data.dataset import MultimodalDataset
from fusioncore.demo import make_demo_cohort
from fusioncore.training import fit, evaluate_model
from fusioncore.reports.fidelity import run_fidelity

stage, out = sys.argv[1], sys.argv[2]
cohort = make_demo_cohort()
train, test = cohort.train, cohort.test

def keep(data, names):
    schema = DataSchema(tuple(m for m in data.schema.modalities if m.name in names), data.schema.classes)
    cols = [data.schema.index(n) for n in schema.modality_names]
    return MultimodalDataset(schema, {n: data.features[n] for n in schema.modality_names}, data.present[:, cols],
                             data.labels, data.sample_ids, source=data.source)

t0 = time.time()
torch.manual_seed(0)
if stage == "omics":
    names = ["mrna", "methylation", "noisy"]
    tr, te = keep(train.data, names), keep(test.data, names)
    model = fc.create_model("mmdynamics", tr.schema, hidden_dim=64)
    fit(model, tr, TrainConfig(epochs=300, lr=1e-3, scheduler="none", seed=0), progress=False)
    truth = {n: np.isin(np.asarray(tr.schema.modality(n).features), test.truth.informative_features[n])
             for n in ("mrna", "methylation")}
    max_samples = None
else:
    tr, te = keep(train.data, ["histology"]), keep(test.data, ["histology"])
    tr = tr.subset(np.arange(240))
    model = fc.create_model("mmdynamics", tr.schema, image_hidden_dim=64, image_gate="paper")
    fit(model, tr, TrainConfig(epochs=8, lr=2e-3, batch_size=48, scheduler="none", seed=0), progress=False)
    truth = {"histology": test.truth.patch_masks.reshape(len(te), -1)}
    max_samples = 48
m = evaluate_model(model, te)
print(stage, "train s", round(time.time() - t0, 1), "test acc", round(m["acc"], 3), "f1_macro", round(m.get("f1_macro", float("nan")), 3), flush=True)
ckpt = model.save(f"{out}/ckpt")
t1 = time.time()
path = run_fidelity(ckpt, te, f"{out}/fidelity", truth=truth, methods=("ig", "ablation"), steps=8, batch_size=48,
                    device="cpu", max_samples=max_samples, figure_formats=("png", "csv", "json"))
print(stage, "fidelity s", round(time.time() - t1, 1), flush=True)
pd.set_option("display.width", 200)
for name in ("fidelity.csv", "recovery.csv", "agreement.csv"):
    print(name); print(pd.read_csv(f"{out}/fidelity/{name}").round(3).to_string(index=False), flush=True)
