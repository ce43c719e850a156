"""Patch attention over the image: where each reader of a token model looks on the tile.

Input is what :func:`fusioncore.explain.attention_patches.patch_attention` computes for one sample:
per reader (fusion channel, return token / readout, the image's own tokens) a ``(gh, gw)`` map of
the share of its image attention on each patch. :func:`patch_attention_figure` draws one panel per
reader — the tile with the map laid over it on one shared colour scale, the ``top_k`` patches
outlined — so the channels can be compared at a glance; a single reader at full size is
``image_heatmap_figure(image, map)`` (the grid is upsampled to the tile the way the tokeniser cut
it). :func:`patch_attention_data` is the tidy frame behind it (the CSV export).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._common import ABSENT_TEXT, base_layout, empty_figure, to_numpy
from .figures_maps import _image_hwc


def _check(maps: Any, readers: Sequence[str], mass: Any | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    m = to_numpy(maps, "maps", ndim=3)
    readers = [str(r) for r in readers]
    if len(readers) != m.shape[0]:
        raise ValueError(f"readers: {len(readers)} names for {m.shape[0]} maps")
    w = np.full(m.shape[0], np.nan) if mass is None else to_numpy(mass, "mass", ndim=1)
    if w.shape[0] != m.shape[0]:
        raise ValueError(f"mass: {w.shape[0]} values for {m.shape[0]} maps")
    return m, readers, w


def patch_attention_data(maps: Any, readers: Sequence[str], *, mass: Any | None = None, top_k: int = 0) -> pd.DataFrame:
    """One row per (reader, patch): ``reader, patch_row, patch_col, share`` (of the reader's image
    attention), ``rank`` within the reader (1 = most attended), ``top_k`` and the reader's total
    ``mass`` on the image."""
    m, readers, w = _check(maps, readers, mass)
    r, gh, gw = m.shape
    flat = m.reshape(r, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, gh * gw + 1)[None, :].repeat(r, 0), axis=1)
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    return pd.DataFrame({
        "reader": np.repeat(readers, gh * gw),
        "patch_row": np.tile(rows, r),
        "patch_col": np.tile(cols, r),
        "share": flat.reshape(-1),
        "rank": rank.reshape(-1),
        "top_k": (rank <= top_k).reshape(-1),
        "mass": np.repeat(w, gh * gw),
    })


def patch_attention_figure(
    image: Any,
    maps: Any,
    readers: Sequence[str],
    *,
    mass: Any | None = None,
    opacity: float = 0.55,
    colorscale: str = "Viridis",
    top_k: int = 5,
    columns: int = 3,
    present: bool = True,
    title: str | None = "Attention to each image patch, per reader",
) -> go.Figure:
    """Small multiples: the tile under each reader's patch-attention map (one colour scale: the share
    of that reader's image attention per patch), top-k patches outlined in red, the reader's total
    attention mass on the image in its panel title."""
    if not present:
        return empty_figure(f"image modality {ABSENT_TEXT}: no patch attention", title)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity: expected a value in [0, 1], got {opacity}")
    m, readers, w = _check(maps, readers, mass)
    img = _image_hwc(image)
    height, width = img.shape[:2]
    r, gh, gw = m.shape
    if height % gh or width % gw:
        raise ValueError(f"maps: a {gh} x {gw} patch grid does not tile the {height} x {width} image")
    ph, pw = height // gh, width // gw
    ncols = max(1, min(columns, r))
    nrows = math.ceil(r / ncols)
    names = [name if np.isnan(v) else f"{name} (mass {v:.2f})" for name, v in zip(readers, w)]
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=names, horizontal_spacing=0.03, vertical_spacing=0.08)
    frame = patch_attention_data(m, readers, mass=mass, top_k=top_k)
    zmax = float(np.nanmax(m)) if np.isfinite(m).any() and np.nanmax(m) > 0 else 1.0
    for i, name in enumerate(readers):
        row, col = divmod(i, ncols)
        row, col = row + 1, col + 1
        fig.add_trace(go.Image(z=img, name="image", hoverinfo="skip"), row=row, col=col)
        fig.add_trace(go.Heatmap(
            z=np.kron(m[i], np.ones((ph, pw))), coloraxis="coloraxis", opacity=opacity, name=name,
            hovertemplate=f"{name}<br>pixel row %{{y}}, col %{{x}}: share %{{z:.3f}}<extra></extra>",
        ), row=row, col=col)
        ref = "" if i == 0 else str(i + 1)
        top = frame[(frame["reader"] == name) & frame["top_k"]]
        for _, p in top.iterrows():
            x0, y0 = p["patch_col"] * pw - 0.5, p["patch_row"] * ph - 0.5
            fig.add_shape(type="rect", xref=f"x{ref}", yref=f"y{ref}", x0=x0, y0=y0, x1=x0 + pw, y1=y0 + ph,
                          line=dict(color="red", width=1.5))
    fig.update_xaxes(showticklabels=False, ticks="")
    fig.update_yaxes(showticklabels=False, ticks="", autorange="reversed")
    fig.update_annotations(font_size=11)
    side = 260
    return base_layout(fig, title, height=side * nrows + 100, width=side * ncols + 120,
                       coloraxis=dict(colorscale=colorscale, cmin=0.0, cmax=zmax,
                                      colorbar=dict(title="share of<br>image attention")))


__all__ = ["patch_attention_data", "patch_attention_figure"]
