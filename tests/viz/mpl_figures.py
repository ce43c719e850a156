"""Plotly figures that reach every branch of the matplotlib fallback renderer: each trace kind
(grouped / horizontal / error bars, scatter lines, markers and error bars, heatmaps with named
and listed colour scales, images, histograms, tables, an unsupported kind) and each layout
element (categories, reversed and fixed ranges, axis titles, hidden axes and tick labels,
legends, rectangles and paper-anchored lines, annotations, the title), plus figures of the
package's own builders. ``python tests/viz/mpl_figures.py`` prints each one's PNG sha256 (a PNG
from matplotlib carries no date, so equal bytes mean an equal rendering)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import fusioncore.viz as V


def _bars() -> go.Figure:
    fig = make_subplots(rows=1, cols=2)
    fig.add_bar(x=["alpha", "beta", "gamma"], y=[1, 3, 2], name="first", marker_color="rgb(200, 30, 30)",
                error_y={"array": [0.1, 0.3, 0.2]}, row=1, col=1)
    fig.add_bar(x=["alpha", "beta", "gamma"], y=[2, 1, 4], name="second", marker_color=["red", "green", "blue"],
                opacity=0.6, row=1, col=1)
    fig.add_bar(y=["a", "b"], x=[0.5, 0.7], orientation="h", name="horizontal", row=1, col=2)
    fig.update_layout(title={"text": "<b>Bars</b> grouped"}, xaxis={"title": {"text": "category"}},
                      yaxis={"title": {"text": "count"}, "range": [0, 5]})
    return fig


def _overlay_bars() -> go.Figure:
    fig = go.Figure([go.Bar(x=[0, 1, 2], y=[3, 1, 2], name="a"), go.Bar(x=[0, 1, 2], y=[1, 2, 0.5], name="b")])
    fig.update_layout(barmode="overlay", showlegend=False)
    return fig


def _scatter() -> go.Figure:
    fig = go.Figure([
        go.Scatter(x=[0, 1, 2, 3], y=[0.1, 0.4, 0.2, 0.8], mode="lines+markers", name="line", line={"dash": "dash"}),
        go.Scatter(x=[0, 1, 2, 3], y=[0.3, 0.2, 0.5, 0.4], mode="markers", name="points",
                   marker={"color": ["red", "blue", "green", "black"]}),
        go.Scatter(x=[0, 1, 2], y=[0.5, 0.6, None], mode="lines", name="errors", error_y={"array": [0.05, 0.1, 0.0]},
                   line={"color": "rgba(10, 20, 200, 0.5)"}),
    ])
    fig.update_layout(yaxis={"autorange": "reversed", "title": {"text": "rank"}}, xaxis={"showticklabels": False},
                      annotations=[{"text": "peak", "x": 3, "y": 0.8, "xref": "x", "yref": "y",
                                    "font": {"color": "rgb(0, 100, 0)"}},
                                   {"text": "paper note", "x": 0.5, "y": 1.02, "xref": "paper", "yref": "paper",
                                    "yanchor": "bottom"}])
    return fig


def _heatmaps() -> go.Figure:
    rng = np.random.default_rng(1)
    fig = make_subplots(rows=1, cols=3)
    fig.add_heatmap(z=rng.random((4, 5)), x=[f"c{i}" for i in range(5)], y=[f"r{i}" for i in range(4)],
                    colorscale="Blues", row=1, col=1)
    z = rng.random((3, 3))
    z[1, 1] = np.nan
    fig.add_heatmap(z=z, colorscale=[[0, "white"], [0.5, "rgb(255, 0, 0)"], [1, "black"]], reversescale=True,
                    zmin=0, zmax=1, showscale=False, row=1, col=2)
    fig.add_heatmap(z=np.ones((2, 2)), colorscale=[[0, "lightgrey"], [0, "lightgrey"]], showscale=False,
                    opacity=0.5, row=1, col=3)
    fig.update_layout(shapes=[{"type": "rect", "x0": 0.5, "x1": 2.5, "y0": 0.5, "y1": 1.5, "xref": "x", "yref": "y",
                               "line": {"color": "red", "width": 2}},
                              {"type": "line", "x0": 1, "x1": 1, "y0": 0, "y1": 1, "xref": "x2", "yref": "paper"}],
                      yaxis3={"visible": False}, xaxis3={"visible": False})
    return fig


def _image_and_histogram() -> go.Figure:
    rng = np.random.default_rng(2)
    fig = make_subplots(rows=1, cols=2)
    fig.add_image(z=(rng.random((8, 8, 3)) * 255).astype(np.uint8), row=1, col=1)
    fig.add_histogram(x=np.concatenate([rng.normal(size=50), [np.nan]]), nbinsx=12, name="values", row=1, col=2)
    fig.update_layout(yaxis2={"showticklabels": False})
    return fig


def _table_and_unknown() -> go.Figure:
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "table"}, {"type": "domain"}]])
    fig.add_trace(go.Table(header={"values": ["k", "share"]}, cells={"values": [[1, 2, 5], [0.1, 0.25, 0.5]]}),
                  row=1, col=1)
    fig.add_trace(go.Pie(values=[1, 2], labels=["a", "b"]), row=1, col=2)
    return fig


def _empty_table() -> go.Figure:
    return go.Figure(go.Table(header={"values": ["nothing"]}, cells={"values": []}))


def handmade() -> dict[str, go.Figure]:
    return {"bars": _bars(), "overlay_bars": _overlay_bars(), "scatter": _scatter(), "heatmaps": _heatmaps(),
            "image_histogram": _image_and_histogram(), "table_unknown": _table_and_unknown(),
            "empty_table": _empty_table()}


def package_figures() -> dict[str, go.Figure]:
    """The figures the export tests use, and a few more of the package's builders."""
    from test_export_unclipped import figures

    rng = np.random.default_rng(0)
    pred, true = {"mrna": rng.random(40)}, {"mrna": rng.random(40) + 0.05}
    return {
        **figures(),
        "tcp_table": V.tcp_fraction_table_figure(pred, true),
        "missing_rate": V.missing_rate_figure([dict(method=m, missing_rate=r, value=v) for m in ("a", "b")
                                               for r in (0, 0.5) for v in (0.1, 0.2)]),
        "robustness": V.robustness_figure({("a",): 0.5, ("a", "b"): 0.7, ("b",): 0.4}, ["a", "b"]),
    }


def all_figures() -> dict[str, go.Figure]:
    return {**handmade(), **package_figures()}


def png_digests() -> dict[str, str]:
    from fusioncore.viz._mpl_render import render_matplotlib

    return {name: hashlib.sha256(render_matplotlib(fig, "png")).hexdigest() for name, fig in all_figures().items()}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(json.dumps(png_digests(), indent=1, sort_keys=True))
