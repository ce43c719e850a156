"""Figures about one sample: class probabilities, modality confidence, feature gates, attributions.

Every view is a pair: ``<view>_data(...) -> pandas.DataFrame`` (tidy: one row per plotted value,
what the CSV export writes) and ``<view>_figure(...) -> plotly Figure`` built *from that frame*,
so the exported table is exactly what the figure shows. Builders never show figures and never
touch models. Absent modalities are drawn as a labelled gap ("absent"), never as a zero bar.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._common import (
    ABSENT_COLOR,
    ABSENT_TEXT,
    PRESENT_COLOR,
    REFERENCE_COLOR,
    TRUE_COLOR,
    base_layout,
    check_names,
    empty_figure,
    presence_list,
    scalar_map,
    to_numpy,
)

#: The sign convention of attribution bars, written on their axis so no figure needs a legend.
ATTRIBUTION_AXIS = "attribution (blue +: towards the explained class, red −: away from it)"
#: A one-row legend under the plot: the narrow dashboard column keeps its width for the bars.
COMPACT_LEGEND = dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0)
#: MM-dynamics' confidence is a linear output trained towards TCP, not a probability.
CONFIDENCE_AXIS = "confidence = predicted TCP<br>(linear output, not a probability)"

# -- class probabilities --------------------------------------------------------------------


def class_probabilities_data(
    probabilities: Any,
    classes: Sequence[str] | None = None,
    *,
    reference: Any = None,
    true_class: int | None = None,
) -> pd.DataFrame:
    """One row per class: ``probability`` (K,), the all-present ``reference`` and the ``change``.

    ``reference`` is the prediction with every modality present; with modalities toggled off the
    change shows what the missing evidence moved.
    """
    p = to_numpy(probabilities, "probabilities", ndim=1)
    names = check_names(classes, p.shape[0], "classes", "class_")
    frame = pd.DataFrame({"class": names, "probability": p})
    if reference is not None:
        r = to_numpy(reference, "reference", ndim=1)
        if r.shape != p.shape:
            raise ValueError(f"reference: shape {r.shape} does not match probabilities {p.shape}")
        frame["reference_probability"] = r
        frame["change"] = p - r
    frame["predicted"] = np.arange(len(p)) == int(np.argmax(p))
    if true_class is not None:
        if not 0 <= int(true_class) < len(p):
            raise ValueError(f"true_class: {true_class} is not a class index in [0, {len(p)})")
        frame["true_class"] = np.arange(len(p)) == int(true_class)
    return frame


def class_probabilities_figure(
    probabilities: Any,
    classes: Sequence[str] | None = None,
    *,
    reference: Any = None,
    true_class: int | None = None,
    title: str | None = "Class probabilities",
) -> go.Figure:
    """Bars of the class probabilities; with ``reference``, the all-present bars beside them and
    the signed change written above each bar."""
    frame = class_probabilities_data(probabilities, classes, reference=reference, true_class=true_class)
    labels = [
        f"{c} (true)" if "true_class" in frame and t else c
        for c, t in zip(frame["class"], frame.get("true_class", [False] * len(frame)))
    ]
    fig = go.Figure()
    text = None
    if "change" in frame:
        text = [f"{d:+.3f}" for d in frame["change"]]
    fig.add_trace(
        go.Bar(
            name="current prediction",
            x=labels,
            y=frame["probability"],
            marker_color=[TRUE_COLOR if p else PRESENT_COLOR for p in frame["predicted"]],
            text=text,
            textposition="outside" if text else None,
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    if "reference_probability" in frame:
        fig.add_trace(
            go.Bar(
                name="all modalities present",
                x=labels,
                y=frame["reference_probability"],
                marker_color=REFERENCE_COLOR,
                opacity=0.6,
                hovertemplate="%{x}: %{y:.3f} (all present)<extra></extra>",
            )
        )
    base_layout(fig, title, barmode="group", yaxis=dict(title="probability", range=[0, 1.1]), xaxis=dict(title="class"),
                height=340, legend=COMPACT_LEGEND)
    return fig


# -- modality confidence (MM-dynamics' modality informativeness) ---------------------------


def modality_confidence_data(
    confidence: Mapping[str, Any],
    modalities: Sequence[str] | None = None,
    *,
    present: Sequence[bool] | Mapping[str, bool] | None = None,
    true_tcp: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per modality: ``confidence`` (predicted TCP), ``true_tcp`` and ``error`` when the
    label is known, ``status`` present/absent. Absent rows keep NaN values, never 0."""
    conf = scalar_map(confidence, "confidence")
    names = list(modalities) if modalities is not None else list(conf)
    flags = presence_list(present, names)
    tcp = scalar_map(true_tcp, "true_tcp")
    rows = []
    for name, here in zip(names, flags):
        c = conf.get(name, float("nan")) if here else float("nan")
        row = {"modality": name, "status": "present" if here else ABSENT_TEXT, "confidence": c}
        if true_tcp is not None:
            t = tcp.get(name, float("nan")) if here else float("nan")
            row.update(true_tcp=t, error=c - t)
        rows.append(row)
    return pd.DataFrame(rows)


def modality_confidence_figure(
    confidence: Mapping[str, Any],
    modalities: Sequence[str] | None = None,
    *,
    present: Sequence[bool] | Mapping[str, bool] | None = None,
    true_tcp: Mapping[str, Any] | None = None,
    title: str | None = "Modality informativeness (predicted TCP)",
) -> go.Figure:
    """Confidence bars per modality, true TCP as markers, absent modalities as labelled gaps."""
    frame = modality_confidence_data(confidence, modalities, present=present, true_tcp=true_tcp)
    here = frame["status"] == "present"
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            name="predicted confidence",
            x=frame["modality"],
            # None, not 0: an absent modality has no bar at all
            y=[v if h else None for v, h in zip(frame["confidence"], here)],
            marker_color=PRESENT_COLOR,
            text=[f"{v:.3f}" if h and np.isfinite(v) else "" for v, h in zip(frame["confidence"], here)],
            textposition="outside",
        )
    )
    if "true_tcp" in frame:
        fig.add_trace(
            go.Scatter(
                name="true TCP",
                x=frame["modality"],
                y=[v if h else None for v, h in zip(frame["true_tcp"], here)],
                mode="markers",
                marker=dict(symbol="diamond", size=12, color=TRUE_COLOR),
                customdata=frame["error"],
                hovertemplate="%{x}: true TCP %{y:.3f}, error %{customdata:+.3f}<extra></extra>",
            )
        )
    finite = frame["confidence"][np.isfinite(frame["confidence"])]
    top = max([1.0, *finite.tolist(), *(frame["true_tcp"].dropna().tolist() if "true_tcp" in frame else [])])
    for name in frame.loc[~here, "modality"]:
        fig.add_annotation(x=name, y=top * 0.05, text=ABSENT_TEXT, showarrow=False, font=dict(color=ABSENT_COLOR, size=14))
        fig.add_shape(
            type="rect", xref="x", yref="paper", x0=name, x1=name, y0=0, y1=1,
            line=dict(color=ABSENT_COLOR, width=1, dash="dot"),
        )
    base_layout(fig, title, yaxis=dict(title=CONFIDENCE_AXIS, range=[min(0.0, float(finite.min()) if len(finite) else 0.0), top * 1.15]),
                height=360, legend=COMPACT_LEGEND)
    return fig


# -- feature gates (feature informativeness) and tabular attributions -----------------------


def ranked_features_data(
    scores: Any,
    feature_names: Sequence[str] | None = None,
    *,
    top_k: int | None = 20,
    name_filter: str | None = None,
    by_magnitude: bool = False,
    value_name: str = "gate",
) -> pd.DataFrame:
    """The ``top_k`` features of a ``(d,)`` score vector, ranked (largest first; by ``|score|``
    when ``by_magnitude``), after keeping names that match ``name_filter`` (case-insensitive
    regular expression, e.g. ``"^ENSG"`` or ``"brca"``)."""
    s = to_numpy(scores, value_name, ndim=1)
    names = check_names(feature_names, s.shape[0], "feature_names", "feature_")
    frame = pd.DataFrame({"feature": names, value_name: s, "index": np.arange(len(s))})
    if name_filter:
        try:
            pattern = re.compile(name_filter, re.IGNORECASE)
        except re.error as err:
            raise ValueError(f"name_filter: {name_filter!r} is not a valid regular expression ({err})") from err
        frame = frame[[bool(pattern.search(n)) for n in frame["feature"]]]
    key = frame[value_name].abs() if by_magnitude else frame[value_name]
    frame = frame.assign(_key=key.fillna(-np.inf)).sort_values("_key", ascending=False, kind="stable").drop(columns="_key")
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k: expected a positive number of features, got {top_k}")
        frame = frame.head(top_k)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def feature_gates_data(
    gates: Any,
    feature_names: Sequence[str] | None = None,
    *,
    top_k: int | None = 20,
    name_filter: str | None = None,
    present: bool = True,
) -> pd.DataFrame:
    """Top-``top_k`` feature gates (``(d,)``) of one modality; empty when the modality is absent."""
    if not present:
        return pd.DataFrame(columns=["rank", "feature", "gate", "index"])
    return ranked_features_data(gates, feature_names, top_k=top_k, name_filter=name_filter, value_name="gate")


def _ranked_bar(frame: pd.DataFrame, value: str, title: str | None, axis_title: str) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=frame[value][::-1],
            y=frame["feature"][::-1],
            orientation="h",
            marker_color=[PRESENT_COLOR if v >= 0 else TRUE_COLOR for v in frame[value][::-1]],
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    return base_layout(fig, title, xaxis=dict(title=axis_title), yaxis=dict(title="feature"), height=max(300, 22 * len(frame) + 120))


def feature_gates_figure(
    gates: Any,
    feature_names: Sequence[str] | None = None,
    *,
    top_k: int | None = 20,
    name_filter: str | None = None,
    present: bool = True,
    modality: str = "",
    title: str | None = None,
) -> go.Figure:
    """Horizontal bars of the top-k feature gates, largest on top."""
    title = title if title is not None else f"Feature informativeness{f' ({modality})' if modality else ''}"
    if not present:
        return empty_figure(f"{modality or 'modality'} {ABSENT_TEXT}: no feature gates", title)
    frame = feature_gates_data(gates, feature_names, top_k=top_k, name_filter=name_filter)
    if frame.empty:
        return empty_figure(f"no feature matches {name_filter!r}", title)
    return _ranked_bar(frame, "gate", title, "gate")


def attribution_bar_data(
    attributions: Any,
    feature_names: Sequence[str] | None = None,
    *,
    top_k: int | None = 20,
    name_filter: str | None = None,
) -> pd.DataFrame:
    """Top-``top_k`` features of a ``(d,)`` attribution vector by ``|attribution|`` (sign kept)."""
    return ranked_features_data(
        attributions, feature_names, top_k=top_k, name_filter=name_filter, by_magnitude=True, value_name="attribution"
    )


def attribution_bar_figure(
    attributions: Any,
    feature_names: Sequence[str] | None = None,
    *,
    top_k: int | None = 20,
    name_filter: str | None = None,
    method: str = "",
    title: str | None = None,
) -> go.Figure:
    """Signed attribution bars (positive blue, negative red), largest magnitude on top."""
    title = title if title is not None else f"Attributions{f' ({method})' if method else ''}"
    a = to_numpy(attributions, "attributions", ndim=1)
    if not np.isfinite(a).any():
        return empty_figure(f"modality {ABSENT_TEXT}: no attributions", title)
    frame = attribution_bar_data(a, feature_names, top_k=top_k, name_filter=name_filter)
    if frame.empty:
        return empty_figure(f"no feature matches {name_filter!r}", title)
    return _ranked_bar(frame, "attribution", title, ATTRIBUTION_AXIS)


def attribution_heatmap_data(
    matrix: Any, row_labels: Sequence[str] | None = None, column_labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Long form of an ``(R, C)`` attribution matrix (samples x features): row, column, value."""
    m = to_numpy(matrix, "matrix", ndim=2)
    rows = check_names(row_labels, m.shape[0], "row_labels", "sample_")
    cols = check_names(column_labels, m.shape[1], "column_labels", "feature_")
    return pd.DataFrame(
        {"row": np.repeat(rows, len(cols)), "column": np.tile(cols, len(rows)), "value": m.reshape(-1)}
    )


def attribution_heatmap_figure(
    matrix: Any,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    *,
    title: str | None = "Attributions",
    colorscale: str = "RdBu",
) -> go.Figure:
    """Heatmap of an attribution matrix, colour scale symmetric around 0 (NaN = absent, blank)."""
    frame = attribution_heatmap_data(matrix, row_labels, column_labels)
    rows = list(dict.fromkeys(frame["row"]))
    cols = list(dict.fromkeys(frame["column"]))
    z = frame["value"].to_numpy().reshape(len(rows), len(cols))
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(
        go.Heatmap(z=z, x=cols, y=rows, colorscale=colorscale, zmid=0, zmin=-bound, zmax=bound, reversescale=True,
                   colorbar=dict(title="attribution"), hoverongaps=False)
    )
    return base_layout(fig, title, yaxis=dict(autorange="reversed"))


# -- modality-level contributions (Shapley values, leave-one-out deltas) --------------------


def modality_contribution_data(
    values: Mapping[str, Any],
    modalities: Sequence[str] | None = None,
    *,
    present: Sequence[bool] | Mapping[str, bool] | None = None,
    value_name: str = "contribution",
) -> pd.DataFrame:
    """One row per modality with its contribution; absent modalities get NaN and status absent."""
    vals = scalar_map(values, "values")
    names = list(modalities) if modalities is not None else list(vals)
    flags = presence_list(present, names)
    return pd.DataFrame(
        {
            "modality": names,
            "status": ["present" if h else ABSENT_TEXT for h in flags],
            value_name: [vals.get(n, float("nan")) if h else float("nan") for n, h in zip(names, flags)],
        }
    )


def modality_contribution_figure(
    values: Mapping[str, Any],
    modalities: Sequence[str] | None = None,
    *,
    present: Sequence[bool] | Mapping[str, bool] | None = None,
    title: str | None = "Modality contributions",
    value_name: str = "contribution",
) -> go.Figure:
    """Signed bars of per-modality contributions; absent modalities labelled, not drawn."""
    frame = modality_contribution_data(values, modalities, present=present, value_name=value_name)
    here = frame["status"] == "present"
    ys = [v if h else None for v, h in zip(frame[value_name], here)]
    fig = go.Figure(
        go.Bar(
            x=frame["modality"],
            y=ys,
            marker_color=[PRESENT_COLOR if (v or 0) >= 0 else TRUE_COLOR for v in ys],
            text=[f"{v:+.3f}" if v is not None and np.isfinite(v) else ABSENT_TEXT for v in ys],
            textposition="outside",
        )
    )
    for name in frame.loc[~here, "modality"]:
        fig.add_annotation(x=name, y=0, text=ABSENT_TEXT, showarrow=False, yshift=12, font=dict(color=ABSENT_COLOR, size=14))
    return base_layout(fig, title, yaxis=dict(title=value_name, zeroline=True))
