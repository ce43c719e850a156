"""Shared helpers of the figure builders: input coercion, validation and the "absent" marker.

Builders take plain arrays (numpy, torch tensors, lists) so the dashboard and the CLI can call
them with whatever an explanation function returned; these helpers turn them into numpy and
raise ``ValueError`` naming the argument when a shape does not fit.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

ABSENT_COLOR = "#b0b0b0"
PRESENT_COLOR = "#1f77b4"
REFERENCE_COLOR = "#ff7f0e"
TRUE_COLOR = "#d62728"
ABSENT_TEXT = "absent"


def to_numpy(value: Any, name: str, *, ndim: int | tuple[int, ...] | None = None, dtype=float) -> np.ndarray:
    """``value`` (array, tensor, list) as a numpy array, checking its number of dimensions."""
    if value is None:
        raise ValueError(f"{name}: expected an array, got None")
    if hasattr(value, "detach"):  # a torch tensor; viz never imports torch itself
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: cannot be read as a numeric array ({err})") from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name}: expected {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}")
    return arr


def check_names(names: Sequence[str] | None, n: int, what: str, default_prefix: str) -> list[str]:
    """``names`` as a list of ``n`` strings (``prefix_i`` when not given)."""
    if names is None:
        return [f"{default_prefix}{i}" for i in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"{what}: {len(names)} names for {n} values")
    return names


def scalar_map(values: Mapping[str, Any] | None, name: str) -> dict[str, float]:
    """A modality -> scalar mapping with tensors/0-d arrays turned into floats (None -> NaN)."""
    if values is None:
        return {}
    out = {}
    for key, v in values.items():
        if v is None:
            out[str(key)] = float("nan")
            continue
        arr = to_numpy(v, f"{name}[{key!r}]")
        if arr.size != 1:
            raise ValueError(f"{name}[{key!r}]: expected one number per modality, got shape {arr.shape}")
        out[str(key)] = float(arr.reshape(()))
    return out


def presence_list(present: Sequence[bool] | Mapping[str, bool] | None, modalities: Sequence[str]) -> list[bool]:
    """Presence flags in ``modalities`` order (all present when ``present`` is None)."""
    if present is None:
        return [True] * len(modalities)
    if isinstance(present, Mapping):
        unknown = sorted(set(map(str, present)) - set(modalities))
        if unknown:
            raise ValueError(f"present: unknown modality name(s) {unknown}; modalities are {list(modalities)}")
        return [bool(present.get(m, True)) for m in modalities]
    flags = to_numpy(present, "present", ndim=1, dtype=bool)
    if flags.shape[0] != len(modalities):
        raise ValueError(f"present: {flags.shape[0]} flags for {len(modalities)} modalities {list(modalities)}")
    return [bool(x) for x in flags]


_AXIS = dict(gridcolor="#EBF0F8", linecolor="#EBF0F8", zerolinecolor="#EBF0F8", zerolinewidth=2, automargin=True)
#: The look of plotly's "plotly_white" in the few settings our figures use. Applying the named
#: template validates its full definition on every figure (~25 ms each, measured), which made up
#: a quarter of the dashboard's re-render after a modality toggle; this small one costs ~2 ms.
LIGHT_TEMPLATE = go.layout.Template(
    layout=dict(
        paper_bgcolor="white",
        plot_bgcolor="white",
        font=dict(color="#2a3f5f"),
        colorway=["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52"],
        xaxis=_AXIS,
        yaxis=_AXIS,
        hovermode="closest",
    )
)


def base_layout(fig: go.Figure, title: str | None, **kwargs: Any) -> go.Figure:
    """A consistent, export-friendly layout (white template, title, margins)."""
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        title=dict(text=title) if title else None,
        margin=dict(l=60, r=30, t=60 if title else 30, b=50),
        **kwargs,
    )
    return fig


def add_subtitle(fig: go.Figure, text: str | None) -> go.Figure:
    """Write ``text`` (what the figure shows: sample, class, switched-off modalities) as a
    smaller second line under the title, replacing an earlier one; the top margin grows to fit."""
    if not text:
        return fig
    main = (fig.layout.title.text or "").split("<br>")[0]
    fig.update_layout(title=dict(text=f"{main}<br><sup>{text}</sup>" if main else f"<sup>{text}</sup>"),
                      margin=dict(t=max(int(fig.layout.margin.t or 0), 80)))
    return fig


def plain_text(text: str | None) -> str:
    """Plotly's title markup (``<br>``, ``<sup>``, ``<b>``) as plain text with line breaks."""
    import re

    return re.sub(r"<[^>]+>", "", (text or "").replace("<br>", "\n"))


def empty_figure(message: str, title: str | None = None) -> go.Figure:
    """A figure that says why there is nothing to plot (e.g. the modality is absent)."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=16))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, title)


def percentile_range(values: np.ndarray, clip: tuple[float, float] | None) -> tuple[float, float]:
    """(zmin, zmax) of the finite ``values``, clipped at percentiles ``clip`` (e.g. (1, 99))."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    if clip is None:
        return float(finite.min()), float(finite.max())
    lo, hi = clip
    if not (0 <= lo < hi <= 100):
        raise ValueError(f"clip_percentiles: expected 0 <= low < high <= 100, got {clip}")
    return float(np.percentile(finite, lo)), float(np.percentile(finite, hi))
