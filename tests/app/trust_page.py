"""A page for the trust-panel tests: the bundled omics demo, one sample, the panel beside its
mrna gates and the cohort trust table (what the sample and cohort views call)."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))

import fusioncore as fc  # noqa: E402
import trust_panel  # noqa: E402
from fusioncore.demo import demo_checkpoint  # noqa: E402
from fusioncore.inspect import model_summary  # noqa: E402
from fusioncore.inspect.session import ensure_aligned  # noqa: E402
from fusioncore.inspect.sources import demo_cohort  # noqa: E402
from widgets import Context  # noqa: E402

model = fc.load(demo_checkpoint("mmdynamics_omics"))
data, split = demo_cohort()
ctx = Context(model, "omics-demo", "mmdynamics_omics", None, "", model_summary(model), ensure_aligned(model, data), "demo", split)
pattern = tuple(st.session_state.get("pattern", (True, True, True)))
trust_panel.trust_panel(ctx, 0, pattern, "gates", "mrna")
trust_panel.trust_panel(ctx, 0, pattern, "ig", "methylation")
trust_panel.cohort_trust_table(ctx)
