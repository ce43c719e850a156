"""Map-like figures: image + patch heatmap overlays, attention masks and attention maps.

As in :mod:`figures_sample`, each view has a ``*_data`` sibling returning the tidy frame behind
it. Image heatmaps may come at pixel resolution ``(H, W)`` or as a patch grid ``(h, w)`` (e.g.
MM-dynamics' 8x8 gate grid): a grid is upsampled to the image by nearest neighbour, the way
the model applies it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..types import AttentionMaps
from ._common import ABSENT_COLOR, ABSENT_TEXT, base_layout, empty_figure, percentile_range, presence_list, to_numpy

# -- image + heatmap -----------------------------------------------------------------------


def _image_hwc(image: Any) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8 from ``(C, H, W)``/``(H, W, C)``/``(H, W)``, values in
    [0, 1] or [0, 255]."""
    img = to_numpy(image, "image", ndim=(2, 3))
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.shape[-1] != 3:
        raise ValueError(f"image: expected 1 or 3 channels, got shape {img.shape}")
    finite = img[np.isfinite(img)]
    scale = 255.0 if finite.size and finite.max() <= 1.0 + 1e-6 else 1.0
    return np.clip(np.nan_to_num(img) * scale, 0, 255).astype(np.uint8)


def _heatmap_hw(heatmap: Any, height: int, width: int) -> tuple[np.ndarray, int | None]:
    """``(H, W)`` heatmap at image resolution, and the patch size when a grid was given."""
    h = to_numpy(heatmap, "heatmap", ndim=(2, 3))
    if h.ndim == 3:
        if h.shape[0] != 1:
            raise ValueError(f"heatmap: expected (H, W) or (1, H, W), got shape {h.shape}")
        h = h[0]
    if h.shape == (height, width):
        return h, None
    gh, gw = h.shape
    if height % gh or width % gw or height // gh != width // gw:
        raise ValueError(
            f"heatmap: shape {h.shape} is neither the image size ({height}, {width}) nor a square-patch grid of it"
        )
    patch = height // gh
    return np.kron(h, np.ones((patch, patch))), patch


def image_heatmap_data(
    image: Any,
    heatmap: Any,
    *,
    patch_size: int | None = None,
    top_k: int = 0,
) -> pd.DataFrame:
    """One row per pixel: ``row, col, value`` and its patch (``patch_row, patch_col``), the
    patch's mean score ``patch_score``, its ``patch_rank`` (1 = most important) and whether it is
    among the ``top_k`` outlined patches."""
    img = _image_hwc(image)
    H, W = img.shape[:2]
    hm, grid_patch = _heatmap_hw(heatmap, H, W)
    patch = grid_patch or patch_size or 1
    if H % patch or W % patch:
        raise ValueError(f"patch_size: {patch} does not divide the image size ({H}, {W})")
    gh, gw = H // patch, W // patch
    scores = np.nanmean(hm.reshape(gh, patch, gw, patch), axis=(1, 3)) if np.isfinite(hm).any() else np.full((gh, gw), np.nan)
    order = np.argsort(-np.nan_to_num(scores.reshape(-1), nan=-np.inf), kind="stable")
    rank = np.empty(gh * gw, dtype=int)
    rank[order] = np.arange(1, gh * gw + 1)
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    pr, pc = rows // patch, cols // patch
    flat_patch = (pr * gw + pc).reshape(-1)
    return pd.DataFrame(
        {
            "row": rows.reshape(-1),
            "col": cols.reshape(-1),
            "value": hm.reshape(-1),
            "patch_row": pr.reshape(-1),
            "patch_col": pc.reshape(-1),
            "patch_size": patch,
            "patch_score": scores.reshape(-1)[flat_patch],
            "patch_rank": rank[flat_patch],
            "top_k": rank[flat_patch] <= top_k,
        }
    )


def image_heatmap_figure(
    image: Any,
    heatmap: Any,
    *,
    opacity: float = 0.6,
    colorscale: str = "Viridis",
    clip_percentiles: tuple[float, float] | None = None,
    top_k: int = 0,
    patch_size: int | None = None,
    side_by_side: bool = True,
    title: str | None = "Image informativeness",
    present: bool = True,
) -> go.Figure:
    """The image with the heatmap laid over it (``opacity``, ``colorscale``; colour range clipped
    at ``clip_percentiles`` e.g. (2, 98) so a few extreme pixels do not wash out the map), the
    ``top_k`` patches outlined, and the raw image beside it when ``side_by_side``."""
    if not present:
        return empty_figure(f"image modality {ABSENT_TEXT}: no heatmap", title)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity: expected a value in [0, 1], got {opacity}")
    frame = image_heatmap_data(image, heatmap, patch_size=patch_size, top_k=top_k)
    img = _image_hwc(image)
    H, W = img.shape[:2]
    z = frame["value"].to_numpy().reshape(H, W)
    zmin, zmax = percentile_range(z, clip_percentiles)
    cols = 2 if side_by_side else 1
    fig = make_subplots(rows=1, cols=cols, subplot_titles=(["image", "heatmap overlay"] if side_by_side else None),
                        horizontal_spacing=0.05)
    if side_by_side:
        fig.add_trace(go.Image(z=img, name="image", hoverinfo="skip"), row=1, col=1)
    col = cols
    fig.add_trace(go.Image(z=img, name="image (overlay base)", hoverinfo="skip"), row=1, col=col)
    fig.add_trace(
        go.Heatmap(
            z=z, zmin=zmin, zmax=zmax, colorscale=colorscale, opacity=opacity, name="heatmap",
            colorbar=dict(title="score"), hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>",
        ),
        row=1, col=col,
    )
    patch = int(frame["patch_size"].iloc[0])
    outlined = frame[frame["top_k"]].drop_duplicates(["patch_row", "patch_col"]).sort_values("patch_rank")
    xref = "x" if col == 1 else f"x{col}"
    yref = "y" if col == 1 else f"y{col}"
    for _, p in outlined.iterrows():
        x0, y0 = p["patch_col"] * patch - 0.5, p["patch_row"] * patch - 0.5
        fig.add_shape(type="rect", xref=xref, yref=yref, x0=x0, y0=y0, x1=x0 + patch, y1=y0 + patch,
                      line=dict(color="red", width=2), name=f"top patch {int(p['patch_rank'])}")
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed", scaleanchor=None)
    return base_layout(fig, title, height=420, width=420 * cols + 80)


# -- attention -----------------------------------------------------------------------------


def token_labels(attention: AttentionMaps, modality_names: Sequence[str]) -> list[str]:
    """A readable label per token from ``attention.token_modality`` (modality ``m`` -> its
    name with a running index, channel ``-1-c`` -> the channel's name)."""
    if attention.token_modality is None:
        raise ValueError("attention.token_modality is None: the method did not say which modality each token is")
    tm = to_numpy(attention.token_modality, "attention.token_modality", ndim=1, dtype=np.int64)
    counts: dict[int, int] = {}
    labels = []
    for t in tm:
        t = int(t)
        i = counts[t] = counts.get(t, -1) + 1
        if t >= 0:
            if t >= len(modality_names):
                raise ValueError(f"attention.token_modality names modality {t}, only {len(modality_names)} given")
            base = modality_names[t]
        else:
            c = -1 - t
            base = attention.channel_names[c] if c < len(attention.channel_names) else f"channel{c}"
        labels.append(f"{base}[{i}]")
    return labels


def _absent_tokens(attention: AttentionMaps, present: Sequence[bool] | None, modality_names: Sequence[str]) -> np.ndarray:
    """``(S,)`` bool: tokens whose modality is toggled off."""
    if attention.token_modality is None or present is None:
        n = None if attention.token_modality is None else len(attention.token_modality)
        return np.zeros(n or 0, dtype=bool)
    flags = presence_list(present, modality_names)
    tm = to_numpy(attention.token_modality, "attention.token_modality", ndim=1, dtype=np.int64)
    return np.array([t >= 0 and not flags[t] for t in tm], dtype=bool)


def attention_map_data(
    attention: AttentionMaps,
    modality_names: Sequence[str],
    *,
    layer: int = -1,
    head: int | None = None,
    sample: int = 0,
    present: Sequence[bool] | None = None,
) -> pd.DataFrame:
    """Long form of one ``(S, S)`` attention map: ``query, key, weight, allowed, absent``.

    ``head=None`` averages the heads. ``weight`` is NaN where the query or key belongs to a
    toggled-off modality (it is masked, not "zero attention")."""
    if not attention.layers:
        raise ValueError("attention.layers is empty: ask the model for attention (return_attention=True)")
    if not -len(attention.layers) <= layer < len(attention.layers):
        raise ValueError(f"layer: {layer} out of range for {len(attention.layers)} layers")
    maps = to_numpy(attention.layers[layer], f"attention.layers[{layer}]", ndim=4)
    if not 0 <= sample < maps.shape[0]:
        raise ValueError(f"sample: {sample} out of range for a batch of {maps.shape[0]}")
    if head is not None and not 0 <= head < maps.shape[1]:
        raise ValueError(f"head: {head} out of range for {maps.shape[1]} heads")
    a = maps[sample].mean(axis=0) if head is None else maps[sample, head]
    S = a.shape[0]
    labels = token_labels(attention, modality_names) if attention.token_modality is not None else [f"t{i}" for i in range(S)]
    if len(labels) != S:
        raise ValueError(f"attention.token_modality has {len(labels)} tokens, the maps have {S}")
    allowed = np.ones((S, S), dtype=bool)
    if attention.mask is not None:
        m = to_numpy(attention.mask, "attention.mask", ndim=(2, 3), dtype=bool)
        allowed = m if m.ndim == 2 else m[sample]
    absent = _absent_tokens(attention, present, modality_names)
    if absent.size == 0:
        absent = np.zeros(S, dtype=bool)
    off = absent[:, None] | absent[None, :]
    w = np.where(off, np.nan, a)
    return pd.DataFrame(
        {
            "query": np.repeat(labels, S),
            "key": np.tile(labels, S),
            "weight": w.reshape(-1),
            "allowed": allowed.reshape(-1),
            "absent": off.reshape(-1),
        }
    )


def attention_map_figure(
    attention: AttentionMaps,
    modality_names: Sequence[str],
    *,
    layer: int = -1,
    head: int | None = None,
    sample: int = 0,
    present: Sequence[bool] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of one layer's attention (one head or the head mean); tokens of toggled-off
    modalities are grey bands (masked), not zeros."""
    frame = attention_map_data(attention, modality_names, layer=layer, head=head, sample=sample, present=present)
    labels = list(dict.fromkeys(frame["query"]))
    S = len(labels)
    z = frame["weight"].to_numpy().reshape(S, S)
    off = frame["absent"].to_numpy().reshape(S, S)
    fig = go.Figure()
    if off.any():
        fig.add_trace(go.Heatmap(z=np.where(off, 1.0, np.nan), x=labels, y=labels, colorscale=[[0, ABSENT_COLOR], [1, ABSENT_COLOR]],
                                 showscale=False, name=ABSENT_TEXT, hovertemplate=f"{ABSENT_TEXT}<extra></extra>"))
    fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", zmin=0, name="attention", hoverongaps=False,
                             colorbar=dict(title="weight"), hovertemplate="%{y} -> %{x}: %{z:.3f}<extra></extra>"))
    title = title if title is not None else f"Attention, layer {layer}, {'mean of heads' if head is None else f'head {head}'}"
    return base_layout(fig, title, xaxis=dict(title="key"), yaxis=dict(title="query", autorange="reversed"))


def attention_mask_data(mask: Any, labels: Sequence[str] | None = None, *, sample: int = 0) -> pd.DataFrame:
    """Long form of an ``(S, S)`` (or ``(B, S, S)``) bool mask, True = may attend."""
    m = to_numpy(mask, "mask", ndim=(2, 3), dtype=bool)
    m = m if m.ndim == 2 else m[sample]
    S = m.shape[0]
    labels = [f"t{i}" for i in range(S)] if labels is None else [str(x) for x in labels]
    if len(labels) != S:
        raise ValueError(f"labels: {len(labels)} labels for a {S}x{S} mask")
    return pd.DataFrame({"query": np.repeat(labels, S), "key": np.tile(labels, S), "allowed": m.reshape(-1)})


def attention_mask_figure(mask: Any, labels: Sequence[str] | None = None, *, sample: int = 0,
                          title: str | None = "Attention mask (dark = may attend)") -> go.Figure:
    """The attention rule as a black/white matrix."""
    frame = attention_mask_data(mask, labels, sample=sample)
    names = list(dict.fromkeys(frame["query"]))
    z = frame["allowed"].to_numpy().reshape(len(names), len(names)).astype(float)
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, zmin=0, zmax=1, colorscale=[[0, "white"], [1, "#08306b"]],
                               showscale=False, hovertemplate="%{y} -> %{x}: %{z}<extra></extra>"))
    return base_layout(fig, title, xaxis=dict(title="key"), yaxis=dict(title="query", autorange="reversed"))


def channel_modality_data(
    attention: AttentionMaps, modality_names: Sequence[str], *, sample: int = 0, present: Sequence[bool] | None = None
) -> pd.DataFrame:
    """Long form of the ``(C, M)`` channel x modality attention mass for ``sample``; absent
    modalities have NaN mass and status absent."""
    if attention.channel_modality is None:
        raise ValueError("attention.channel_modality is None: this method has no fusion channels")
    cm = to_numpy(attention.channel_modality, "attention.channel_modality", ndim=3)
    if cm.shape[2] != len(modality_names):
        raise ValueError(f"attention.channel_modality has {cm.shape[2]} modality columns, {len(modality_names)} names given")
    mass = cm[sample]
    C = mass.shape[0]
    channels = list(attention.channel_names) if len(attention.channel_names) == C else [f"channel{c}" for c in range(C)]
    flags = presence_list(present, modality_names)
    mass = np.where(np.array(flags)[None, :], mass, np.nan)
    return pd.DataFrame(
        {
            "channel": np.repeat(channels, len(modality_names)),
            "modality": np.tile(list(modality_names), C),
            "status": np.tile(["present" if f else ABSENT_TEXT for f in flags], C),
            "mass": mass.reshape(-1),
        }
    )


def channel_modality_figure(
    attention: AttentionMaps, modality_names: Sequence[str], *, sample: int = 0, present: Sequence[bool] | None = None,
    title: str | None = "Attention mass: channel x modality",
) -> go.Figure:
    """Heatmap of each channel's attention mass per modality; absent columns greyed and labelled."""
    frame = channel_modality_data(attention, modality_names, sample=sample, present=present)
    channels = list(dict.fromkeys(frame["channel"]))
    status = frame["status"].to_numpy()[: len(modality_names)]
    xlabels = [f"{m} ({ABSENT_TEXT})" if s == ABSENT_TEXT else m for m, s in zip(modality_names, status)]
    z = frame["mass"].to_numpy().reshape(len(channels), len(modality_names))
    fig = go.Figure()
    absent_cols = status == ABSENT_TEXT
    if absent_cols.any():
        fig.add_trace(go.Heatmap(z=np.where(absent_cols[None, :], 1.0, np.nan) * np.ones_like(z), x=xlabels, y=channels,
                                 colorscale=[[0, ABSENT_COLOR], [1, ABSENT_COLOR]], showscale=False, name=ABSENT_TEXT,
                                 hovertemplate=f"{ABSENT_TEXT}<extra></extra>"))
    fig.add_trace(go.Heatmap(z=z, x=xlabels, y=channels, colorscale="Blues", zmin=0, hoverongaps=False, name="mass",
                             colorbar=dict(title="mass"), texttemplate="%{z:.2f}"))
    return base_layout(fig, title, xaxis=dict(title="modality"), yaxis=dict(title="channel", autorange="reversed"))
