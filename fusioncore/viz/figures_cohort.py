"""Cohort and benchmark figures: TCP error views, robustness over modality subsets, metric vs
missing rate, deletion/insertion (fidelity) curves.

Each view has a ``*_data`` sibling returning the tidy frame the figure is drawn from.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..metrics import THRESHOLDS, all_subsets, fraction_above, relative_error
from ._common import PRESENT_COLOR, base_layout, to_numpy

DEFAULT_KS = THRESHOLDS  # the k of the TCP tables: the maths lives in metrics.py

# -- TCP errors (predicted confidence vs true-class probability) ----------------------------


def tcp_error_data(
    predicted: Mapping[str, Any],
    true: Mapping[str, Any],
    *,
    sample_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (sample, modality) where the modality is present: ``predicted`` confidence,
    ``true`` TCP, ``error`` (pred - true), ``relative_error`` = |error| / true (metrics.py's).

    Absent modalities carry NaN confidence (the contract) and are dropped, not counted as 0."""
    rows = []
    for name, pred in predicted.items():
        if name not in true:
            raise ValueError(f"true: no TCP for modality {name!r} (given for {sorted(true)})")
        p = to_numpy(pred, f"predicted[{name!r}]", ndim=1)
        t = to_numpy(true[name], f"true[{name!r}]", ndim=1)
        if p.shape != t.shape:
            raise ValueError(f"modality {name!r}: predicted has {p.shape[0]} samples, true has {t.shape[0]}")
        ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(len(p))]
        if len(ids) != len(p):
            raise ValueError(f"sample_ids: {len(ids)} ids for {len(p)} samples")
        keep = np.isfinite(p) & np.isfinite(t)
        err = p - t
        rel = relative_error(err, t)
        rows.append(pd.DataFrame({"modality": name, "sample_id": np.asarray(ids)[keep], "predicted": p[keep],
                                  "true": t[keep], "error": err[keep], "relative_error": rel[keep]}))
    if not rows:
        raise ValueError("predicted: no modality given")
    return pd.concat(rows, ignore_index=True)


def tcp_scatter_figure(predicted: Mapping[str, Any], true: Mapping[str, Any], *, sample_ids: Sequence[str] | None = None,
                       title: str | None = "Predicted confidence vs true TCP") -> go.Figure:
    """Scatter of predicted confidence against true TCP per modality, with the identity line."""
    frame = tcp_error_data(predicted, true, sample_ids=sample_ids)
    fig = go.Figure()
    for name, part in frame.groupby("modality", sort=False):
        fig.add_trace(go.Scatter(x=part["true"], y=part["predicted"], mode="markers", name=str(name),
                                 text=part["sample_id"], hovertemplate="%{text}: true %{x:.3f}, predicted %{y:.3f}<extra></extra>"))
    lo = float(min(frame["true"].min(), frame["predicted"].min(), 0.0))
    hi = float(max(frame["true"].max(), frame["predicted"].max(), 1.0))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="identity", line=dict(color="grey", dash="dash")))
    return base_layout(fig, title, xaxis=dict(title="true TCP (a probability)"),
                       yaxis=dict(title="predicted confidence<br>(linear output, not a probability)"))


def tcp_relative_error_histogram(predicted: Mapping[str, Any], true: Mapping[str, Any], *, nbins: int = 30,
                                 title: str | None = "Relative confidence error |pred - TCP| / TCP") -> go.Figure:
    """Overlaid histograms of the relative error per modality."""
    frame = tcp_error_data(predicted, true)
    fig = go.Figure()
    for name, part in frame.groupby("modality", sort=False):
        values = part["relative_error"].replace([np.inf, -np.inf], np.nan).dropna()
        fig.add_trace(go.Histogram(x=values, name=str(name), nbinsx=nbins, opacity=0.6))
    return base_layout(fig, title, barmode="overlay", xaxis=dict(title="relative error"), yaxis=dict(title="samples"))


def tcp_fraction_data(predicted: Mapping[str, Any], true: Mapping[str, Any], *, ks: Sequence[float] = DEFAULT_KS) -> pd.DataFrame:
    """Fraction of samples with ``|pred - TCP| > k * TCP`` per modality and ``k`` (tcp_explain.py)."""
    frame = tcp_error_data(predicted, true)
    rows = []
    for name, part in frame.groupby("modality", sort=False):
        for k in ks:
            rows.append({"modality": name, "k": float(k), "n": len(part),
                         "fraction_above": fraction_above(part["error"].to_numpy(), part["true"].to_numpy(), k)})
    return pd.DataFrame(rows)


def tcp_fraction_table_figure(predicted: Mapping[str, Any], true: Mapping[str, Any], *, ks: Sequence[float] = DEFAULT_KS,
                              title: str | None = "Fraction of samples with |error| > k * TCP") -> go.Figure:
    """A table figure: one row per k, one column per modality."""
    frame = tcp_fraction_data(predicted, true, ks=ks)
    wide = frame.pivot(index="k", columns="modality", values="fraction_above")
    wide = wide[list(dict.fromkeys(frame["modality"]))]
    header = ["k", *map(str, wide.columns)]
    cells = [[f"{k:.1f}" for k in wide.index]] + [[f"{v:.3f}" for v in wide[c]] for c in wide.columns]
    fig = go.Figure(go.Table(header=dict(values=header, fill_color="#dbe5f1"), cells=dict(values=cells)))
    return base_layout(fig, title)


# -- robustness over modality subsets -------------------------------------------------------


def robustness_data(results: Mapping[Any, Any], modalities: Sequence[str], *, metric: str = "metric",
                    require_all: bool = False) -> pd.DataFrame:
    """One row per modality subset: ``subset`` label, a 0/1 column per modality, ``n_modalities``,
    ``value`` (and ``std`` when results hold (mean, std) pairs).

    ``results`` maps a subset (tuple/frozenset of names, or a ``"a+b"`` string) to a value or a
    ``(mean, std)`` pair. With ``require_all``, every non-empty subset must be there."""
    names = list(modalities)
    rows = []
    seen = set()
    for key, value in results.items():
        members = tuple(key.split("+")) if isinstance(key, str) else tuple(key)
        unknown = sorted(set(members) - set(names))
        if unknown or not members:
            raise ValueError(f"results: subset {key!r} names unknown modalities {unknown} (modalities are {names})")
        ordered = tuple(m for m in names if m in members)
        seen.add(ordered)
        mean, std = (value if isinstance(value, (tuple, list)) and len(value) == 2 else (value, float("nan")))
        row = {"subset": "+".join(ordered), "n_modalities": len(ordered), metric: float(mean), "std": float(std)}
        row.update({m: int(m in ordered) for m in names})
        rows.append(row)
    if require_all:
        missing = ["+".join(s) for s in all_subsets(names) if s not in seen]
        if missing:
            raise ValueError(f"results: no value for subset(s) {missing}")
    order = {s: i for i, s in enumerate("+".join(x) for x in all_subsets(names))}
    frame = pd.DataFrame(rows)
    frame = frame.assign(_o=frame["subset"].map(order)).sort_values("_o").drop(columns="_o").reset_index(drop=True)
    if frame["std"].isna().all():
        frame = frame.drop(columns="std")
    return frame


def robustness_figure(results: Mapping[Any, Any], modalities: Sequence[str], *, metric: str = "metric",
                      require_all: bool = False, title: str | None = None) -> go.Figure:
    """A presence matrix (which modalities each subset keeps) above a bar of ``metric`` per subset."""
    frame = robustness_data(results, modalities, metric=metric, require_all=require_all)
    names = list(modalities)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    err = dict(type="data", array=frame["std"]) if "std" in frame else None
    fig.add_trace(go.Bar(x=frame["subset"], y=frame[metric], error_y=err, marker_color=PRESENT_COLOR, name=metric,
                         text=[f"{v:.3f}" for v in frame[metric]], textposition="outside"), row=1, col=1)
    z = frame[names].to_numpy().T.astype(float)
    fig.add_trace(go.Heatmap(z=z, x=frame["subset"], y=names, zmin=0, zmax=1, showscale=False, xgap=2, ygap=2,
                             colorscale=[[0, "#eeeeee"], [1, "#08306b"]], name="modalities used",
                             hovertemplate="%{x}: %{y} %{z}<extra></extra>"), row=2, col=1)
    fig.update_yaxes(title_text=metric, row=1, col=1)
    fig.update_xaxes(title_text="modalities present", row=2, col=1)
    return base_layout(fig, title if title is not None else f"{metric} for every modality subset", showlegend=False)


# -- benchmark: metric vs missing rate ------------------------------------------------------


def missing_rate_data(records: pd.DataFrame | Sequence[Mapping[str, Any]], *, value: str = "value",
                      group: str = "method", rate: str = "missing_rate") -> pd.DataFrame:
    """Mean, std and count of ``value`` per (``group``, ``rate``) from per-seed records."""
    frame = pd.DataFrame(records)
    missing = [c for c in (value, group, rate) if c not in frame.columns]
    if missing:
        raise ValueError(f"records: missing column(s) {missing}; columns are {list(frame.columns)}")
    agg = frame.groupby([group, rate], sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    return agg.rename(columns={"count": "n"})


def missing_rate_figure(records: pd.DataFrame | Sequence[Mapping[str, Any]], *, value: str = "value", group: str = "method",
                        rate: str = "missing_rate", metric_label: str | None = None, title: str | None = None) -> go.Figure:
    """One line per ``group`` of mean ``value`` against missing rate, with ± std error bars."""
    frame = missing_rate_data(records, value=value, group=group, rate=rate)
    fig = go.Figure()
    for name, part in frame.groupby(group, sort=False):
        fig.add_trace(go.Scatter(x=part[rate], y=part["mean"], mode="lines+markers", name=str(name),
                                 error_y=dict(type="data", array=part["std"].fillna(0.0), visible=True)))
    label = metric_label or value
    return base_layout(fig, title if title is not None else f"{label} vs missing rate (mean ± std)",
                       xaxis=dict(title="missing rate"), yaxis=dict(title=label))


# -- fidelity: deletion / insertion curves --------------------------------------------------


def fidelity_curve_figure(curves: pd.DataFrame, *, title: str | None = "Deletion and insertion curves") -> go.Figure:
    """Mean true-class probability against the fraction removed (deletion) or inserted
    (insertion), one line per explanation kind; ``curves`` has columns ``kind, mode, fraction,
    probability`` (the frame :func:`fusioncore.explain.fidelity.curves_frame` returns)."""
    need = {"kind", "mode", "fraction", "probability"}
    if not need <= set(curves.columns):
        raise ValueError(f"curves: needs columns {sorted(need)}, has {list(curves.columns)}")
    modes = list(dict.fromkeys(curves["mode"]))
    fig = make_subplots(rows=1, cols=len(modes), subplot_titles=modes, shared_yaxes=True)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    kinds = list(dict.fromkeys(curves["kind"]))
    for c, mode in enumerate(modes, start=1):
        part = curves[curves["mode"] == mode]
        mean = part.groupby(["kind", "fraction"], sort=False)["probability"].mean().reset_index()
        for i, kind in enumerate(kinds):
            k = mean[mean["kind"] == kind].sort_values("fraction")
            fig.add_trace(go.Scatter(x=k["fraction"], y=k["probability"], mode="lines", name=str(kind),
                                     line=dict(color=palette[i % len(palette)]), legendgroup=str(kind), showlegend=c == 1),
                          row=1, col=c)
        fig.update_xaxes(title_text=f"fraction {'removed' if mode == 'deletion' else 'inserted'}", row=1, col=c)
    fig.update_yaxes(title_text="true-class probability", row=1, col=1)
    return base_layout(fig, title)
