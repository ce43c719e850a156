"""Figures of the trust checks: the verdict table, the randomisation cascade, the faithfulness gaps.

Every builder takes the JSON-ready records of ``fusioncore.explain.trust`` (``TrustRecord.to_json()``
dicts, what ``trust.json`` holds) or the tidy frame its ``*_data`` sibling returns, so a figure
can be redrawn from the file alone.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._common import base_layout

VERDICT_COLORS = {"trustworthy": "#2ca02c", "doubtful": "#ff9f1c", "untrustworthy": "#d62728"}
TABLE_COLUMNS = ["explanation", "modality", "verdict", "randomisation_similarity", "randomisation_ssim", "deletion_gap",
                 "deletion_low", "deletion_high", "insertion_gap", "road_gap", "road_low", "road_high", "recovery_auroc",
                 "modality_effect", "n_samples"]


def _interval(record: Mapping, key: str) -> tuple[float, float, float]:
    value = record.get(key) or {}
    get = lambda k: np.nan if value.get(k) is None else float(value[k])  # noqa: E731
    return get("mean"), get("low"), get("high")


def trust_table_data(records: Sequence[Mapping]) -> pd.DataFrame:
    """One row per explanation: verdict and every number behind it (NaN where not computed)."""
    rows = []
    for r in records:
        d, i, road = _interval(r, "deletion_gap"), _interval(r, "insertion_gap"), _interval(r, "road_gap")
        num = lambda k: np.nan if r.get(k) is None else float(r[k])  # noqa: E731
        rows.append({"explanation": r["explanation"], "modality": r["modality"], "verdict": r["verdict"],
                     "randomisation_similarity": num("randomisation_similarity"), "randomisation_ssim": num("randomisation_ssim"),
                     "deletion_gap": d[0], "deletion_low": d[1], "deletion_high": d[2], "insertion_gap": i[0],
                     "road_gap": road[0], "road_low": road[1], "road_high": road[2], "recovery_auroc": num("recovery_auroc"),
                     "modality_effect": num("modality_effect"), "n_samples": int(r.get("n_samples", 0))})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def randomisation_curve_data(records: Sequence[Mapping], stage_labels: Sequence[str]) -> pd.DataFrame:
    """Tidy ``label, stage, stage_label, similarity``: mean |Spearman| after each cascade stage
    (stage 0 = the trained model, similarity 1 by definition)."""
    rows = []
    for r in records:
        label = f"{r['explanation']} ({r['modality']})"
        rows.append({"label": label, "stage": 0, "stage_label": "trained", "similarity": 1.0})
        for s, (value, name) in enumerate(zip(r["randomisation_curve"], stage_labels), start=1):
            rows.append({"label": label, "stage": s, "stage_label": name, "similarity": np.nan if value is None else float(value)})
    return pd.DataFrame(rows, columns=["label", "stage", "stage_label", "similarity"])


def randomisation_curve_figure(curve: pd.DataFrame, *, threshold: float | None = None,
                               title: str | None = "Cascading randomisation: similarity to the trained model's explanation") -> go.Figure:
    """Similarity against the number of stages re-initialised from the output layer down, one
    line per explanation; ``threshold``: the pass line of the randomisation check."""
    fig = go.Figure()
    for label, part in curve.groupby("label", sort=False):
        part = part.sort_values("stage")
        fig.add_trace(go.Scatter(x=part["stage"], y=part["similarity"], mode="lines+markers", name=str(label),
                                 customdata=part[["stage_label"]].to_numpy(),
                                 hovertemplate="%{fullData.name}<br>re-initialised up to: %{customdata[0]}<br>|Spearman| %{y:.2f}<extra></extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line=dict(color="#555", dash="dash"), annotation_text=f"pass <= {threshold}")
    fig.update_xaxes(title_text="stages re-initialised (output layer first)", dtick=1)
    fig.update_yaxes(title_text="|Spearman| to the original", range=[0, 1.05])
    return base_layout(fig, title)


def trust_gap_figure(table: pd.DataFrame, *, title: str | None = "Faithfulness: gap over random orderings") -> go.Figure:
    """Deletion gap (and ROAD gap for image maps) with intervals, one row per explanation,
    coloured by verdict; ``table`` is :func:`trust_table_data`'s frame."""
    panels = [("deletion_gap", "deletion_low", "deletion_high", "deletion-AUC gap")]
    if table["road_gap"].notna().any():
        panels.append(("road_gap", "road_low", "road_high", "ROAD gap (LeRF - MoRF)"))
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=[p[3] for p in panels])
    labels = [f"{e} ({m})" for e, m in zip(table["explanation"], table["modality"])]
    colors = [VERDICT_COLORS.get(v, "#7f7f7f") for v in table["verdict"]]
    for c, (mean, low, high, name) in enumerate(panels, start=1):
        err = dict(type="data", symmetric=False, array=(table[high] - table[mean]).to_numpy(),
                   arrayminus=(table[mean] - table[low]).to_numpy(), color="#444")
        fig.add_trace(go.Scatter(x=table[mean], y=labels, mode="markers", error_x=err, marker=dict(color=colors, size=10),
                                 name=name, showlegend=False, customdata=table[["verdict"]].to_numpy(),
                                 hovertemplate="%{y}<br>gap %{x:+.3f}<br>%{customdata[0]}<extra></extra>"), row=1, col=c)
        fig.add_vline(x=0, line=dict(color="#999"), row=1, col=c)
        fig.update_xaxes(title_text="gap in true-class probability", row=1, col=c)
    for verdict, color in VERDICT_COLORS.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=color, size=10), name=verdict))
    fig.update_yaxes(autorange="reversed")
    return base_layout(fig, title)
