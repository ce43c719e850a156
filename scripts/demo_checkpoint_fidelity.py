"""Planted-truth recovery and fidelity of the bundled demo checkpoint on the demo cohort's test split.

    FUSIONCORE_STATIC_RENDERER=matplotlib python scripts/demo_checkpoint_fidelity.py runs/fidelity_ckpt 40
"""
import sys, time
import pandas as pd
from fusioncore.demo import demo_checkpoint, load_demo_cohort
from fusioncore.reports.fidelity import run_fidelity

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
test = load_demo_cohort().test
t = time.time()
run_fidelity(demo_checkpoint("mmdynamics_image_omics"), test.data, out, truth=test.truth, methods=("ig",), steps=8,
             batch_size=40, device="cpu", max_samples=n, figure_formats=("png", "csv", "json"))
print("fidelity s", round(time.time() - t, 1), "samples", n, flush=True)
pd.set_option("display.width", 200)
for name in ("fidelity.csv", "recovery.csv", "agreement.csv"):
    print(name); print(pd.read_csv(f"{out}/{name}").round(3).to_string(index=False), flush=True)
