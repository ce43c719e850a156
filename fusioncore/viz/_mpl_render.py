"""A browser-free static rendering of a plotly figure with matplotlib (the export fallback).

Static export through kaleido needs Chrome/Chromium and can hang; this renders the *same
figure data* generically from the figure's traces (bar, scatter, heatmap, image, histogram,
table) and layout (subplot domains, titles, axis titles, rectangles, annotations), so a PNG/SVG/
PDF always comes out. It is a faithful plot of the data, not a pixel copy of plotly's styling.

Each trace kind has its own small renderer (:data:`TRACE_RENDERERS`, looked up by the trace's
``type``), and each layout element one that runs after all traces (:data:`LAYOUT_RENDERERS`);
supporting a new trace kind is one function and one entry.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Callable

import numpy as np

from ._common import plain_text

PLOTLY_TO_MPL_CMAPS = {"viridis": "viridis", "blues": "Blues", "rdbu": "RdBu", "reds": "Reds", "greys": "Greys",
                       "plasma": "plasma", "inferno": "inferno", "magma": "magma", "cividis": "cividis", "hot": "hot",
                       "jet": "jet", "ylorrd": "YlOrRd", "greens": "Greens", "purples": "Purples", "turbo": "turbo"}


def _decode(value: Any) -> Any:
    """Undo plotly's typed-array encoding (``{"dtype", "bdata", "shape"}``) recursively."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            if shape:
                arr = arr.reshape([int(s) for s in str(shape).split(",")])
            return arr
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _arr(value: Any) -> np.ndarray:
    if value is None:
        return np.array([])
    return np.asarray(value, dtype=object)


def _is_categorical(values: np.ndarray) -> bool:
    return any(isinstance(v, str) for v in values.reshape(-1).tolist())


def _num(values: np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values.reshape(-1).tolist()], dtype=float).reshape(values.shape)


def _colormap(colorscale: Any, reverse: bool):
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap

    if isinstance(colorscale, (list, tuple)) and colorscale:
        stops = [(float(p), _mpl_color(c)) for p, c in colorscale]
        if stops[0][0] == stops[-1][0]:  # a single-colour scale (e.g. the grey "absent" layer)
            stops = [(0.0, stops[0][1]), (1.0, stops[0][1])]
        cmap = LinearSegmentedColormap.from_list("plotly", stops)
    else:
        name = PLOTLY_TO_MPL_CMAPS.get(str(colorscale or "viridis").lower(), "viridis")
        cmap = colormaps[name]
    return cmap.reversed() if reverse else cmap


def _mpl_color(c: Any):
    if isinstance(c, str) and c.startswith("rgb"):
        parts = [float(x) for x in c[c.index("(") + 1 : c.index(")")].split(",")]
        rgb = [p / 255 for p in parts[:3]]
        return tuple(rgb + ([parts[3]] if len(parts) > 3 else []))
    return c


class _Axes:
    """One plotly (xaxis, yaxis) pair as a matplotlib axes, with its category lists."""

    def __init__(self, ax, xname: str, yname: str) -> None:
        self.ax, self.xname, self.yname = ax, xname, yname
        self.xcats: list[str] = []
        self.ycats: list[str] = []
        self.reversed_y = False
        self.n_bars = 0

    def pos(self, values: Any, axis: str) -> np.ndarray:
        """Numeric positions of ``values`` on ``axis`` (categories -> 0, 1, ... in order of appearance)."""
        arr = _arr(values)
        if not _is_categorical(arr):
            return _num(arr)
        cats = self.xcats if axis == "x" else self.ycats
        for v in arr.tolist():
            if v is not None and str(v) not in cats:
                cats.append(str(v))
        return np.array([np.nan if v is None else cats.index(str(v)) for v in arr.tolist()], dtype=float)


class _Canvas:
    """The matplotlib figure being drawn from one plotly figure dict: its layout, the axes made so
    far (one per (xaxis, yaxis) pair, one per table) and how many bars share each axes."""

    def __init__(self, spec: dict, dpi: int) -> None:
        # A bare Figure (no pyplot): no global backend switch, no GUI, thread-safe enough for Streamlit.
        from matplotlib.figure import Figure

        self.spec, self.layout = spec, spec.get("layout", {})
        width, height = float(self.layout.get("width") or 700), float(self.layout.get("height") or 500)
        margin = self.layout.get("margin", {})
        self.ml, self.mr = margin.get("l", 60) / width, margin.get("r", 30) / width
        self.mt, self.mb = margin.get("t", 60) / height, margin.get("b", 50) / height
        self.figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        self.axes: dict[tuple[str, str], _Axes] = {}
        self.bar_totals: dict[tuple[str, str], int] = {}
        for trace in spec.get("data", []):
            if trace.get("type") == "bar":
                k = (trace.get("xaxis", "x"), trace.get("yaxis", "y"))
                self.bar_totals[k] = self.bar_totals.get(k, 0) + 1

    def paper_to_fig(self, px: float, py: float) -> tuple[float, float]:
        """Plotly's paper coordinates (the plot area) as matplotlib figure coordinates."""
        return self.ml + px * (1 - self.ml - self.mr), self.mb + py * (1 - self.mt - self.mb)

    def axes_of(self, trace: dict) -> _Axes:
        """The axes ``trace`` is drawn in, made at its subplot's domain the first time (a table gets its own)."""
        if trace.get("type") == "table":
            dom = trace.get("domain", {})
            key = ("table", str(id(trace)))
            xd, yd = dom.get("x", [0, 1]), dom.get("y", [0, 1])
        else:
            xname, yname = trace.get("xaxis", "x"), trace.get("yaxis", "y")
            key = (xname, yname)
            if key in self.axes:
                return self.axes[key]
            xd = self.layout.get(f"xaxis{xname[1:]}", {}).get("domain", [0, 1])
            yd = self.layout.get(f"yaxis{yname[1:]}", {}).get("domain", [0, 1])
        x0, y0 = self.paper_to_fig(xd[0], yd[0])
        x1, y1 = self.paper_to_fig(xd[1], yd[1])
        ax = self.figure.add_axes((x0, y0, max(x1 - x0, 0.01), max(y1 - y0, 0.01)))
        self.axes[key] = _Axes(ax, *key)
        return self.axes[key]

    def axes_for(self, xref: str, yref: str) -> _Axes | None:
        """The axes a shape or annotation refers to (its x axis decides when the pair is not drawn)."""
        return self.axes.get((xref, yref)) or next((a for (x, y), a in self.axes.items() if x == xref), None)


# -- one renderer per trace kind: (canvas, axes, trace) ------------------------------------------
def _bar(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """Bars side by side when grouped (plotly's default), vertical or horizontal, with error bars."""
    ax, name, alpha = a.ax, trace.get("name"), trace.get("opacity", 1.0)
    total = canvas.bar_totals.get((a.xname, a.yname), 1) if canvas.layout.get("barmode", "group") == "group" else 1
    w = 0.8 / total
    offset = (a.n_bars - (total - 1) / 2) * w if total > 1 else 0.0
    a.n_bars += 1
    color = _mpl_color(trace.get("marker", {}).get("color"))
    if isinstance(color, (list, tuple, np.ndarray)) and not isinstance(color, tuple):
        color = [_mpl_color(c) for c in color]
    err = trace.get("error_y", {}).get("array")
    if trace.get("orientation") == "h":
        y = a.pos(trace.get("y"), "y")
        x = _num(_arr(trace.get("x")))
        ax.barh(y + offset, x, height=w, color=color, alpha=alpha, label=name)
    else:
        x = a.pos(trace.get("x"), "x")
        y = _num(_arr(trace.get("y")))
        yerr = None if err is None else _num(_arr(err))
        ax.bar(x + offset, y, width=w, color=color, alpha=alpha, label=name, yerr=yerr, capsize=3)


def _scatter(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """Lines and/or markers (dashed or dotted lines drawn dashed), with error bars when given."""
    ax, name, alpha = a.ax, trace.get("name"), trace.get("opacity", 1.0)
    x = a.pos(trace.get("x"), "x")
    y = a.pos(trace.get("y"), "y")
    mode = trace.get("mode", "lines+markers")
    line = trace.get("line", {})
    color = _mpl_color(line.get("color") or trace.get("marker", {}).get("color"))
    if isinstance(color, (list, np.ndarray)):
        color = None
    err = trace.get("error_y", {}).get("array")
    style = "--" if line.get("dash") in ("dash", "dot") else "-"
    fmt_ = ("" if "markers" not in mode else "o") + (style if "lines" in mode else "")
    if err is not None:
        ax.errorbar(x, y, yerr=_num(_arr(err)), fmt=fmt_ or "o", color=color, alpha=alpha, label=name, capsize=3)
    else:
        ax.plot(x, y, fmt_ or "o", color=color, alpha=alpha, label=name, markersize=5)


def _heatmap(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """A colour-mapped matrix (NaN left blank) on the trace's categories, with its colour bar."""
    zf = _num(_arr(np.asarray(trace.get("z"))))
    ny, nx = zf.shape
    xs, ys = trace.get("x"), trace.get("y")
    if xs is not None and _is_categorical(_arr(xs)):
        a.pos(xs, "x")
    if ys is not None and _is_categorical(_arr(ys)):
        a.pos(ys, "y")
    cmap = _colormap(trace.get("colorscale"), bool(trace.get("reversescale")))
    im = a.ax.imshow(np.ma.masked_invalid(zf), origin="lower", extent=(-0.5, nx - 0.5, -0.5, ny - 0.5), cmap=cmap,
                     vmin=trace.get("zmin"), vmax=trace.get("zmax"), alpha=trace.get("opacity", 1.0), aspect="auto",
                     interpolation="nearest")
    if trace.get("showscale", True) is not False:
        canvas.figure.colorbar(im, ax=a.ax, fraction=0.046, pad=0.02)


def _image(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """An RGB image, top row first (plotly's image axes run downwards)."""
    z = np.asarray(trace.get("z"))
    ny, nx = z.shape[:2]
    a.reversed_y = True
    a.ax.imshow(z.astype(np.uint8), origin="lower", extent=(-0.5, nx - 0.5, -0.5, ny - 0.5),
                alpha=trace.get("opacity", 1.0))


def _histogram(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """The finite values binned (``nbinsx`` bins, else matplotlib's choice)."""
    alpha = trace.get("opacity", 1.0)
    x = _num(_arr(trace.get("x")))
    x = x[np.isfinite(x)]
    a.ax.hist(x, bins=trace.get("nbinsx") or "auto", alpha=alpha if alpha < 1 else 0.7, label=trace.get("name"))


def _table(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """The header and cells as a matplotlib table in an axes of its own (nothing when empty)."""
    a.ax.axis("off")
    header = [str(h) for h in trace.get("header", {}).get("values", [])]
    columns = trace.get("cells", {}).get("values", [])
    rows = [list(map(str, r)) for r in zip(*columns)] if columns else []
    if rows:
        table = a.ax.table(cellText=rows, colLabels=header or None, loc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)


def _not_rendered(canvas: _Canvas, a: _Axes, trace: dict) -> None:
    """A trace kind without a renderer: said in its axes, so the gap is visible."""
    a.ax.text(0.5, 0.5, f"({trace.get('type', 'scatter')} trace not rendered by the fallback)", ha="center",
              transform=a.ax.transAxes)


#: The renderer of each plotly trace type; a type not listed is drawn by :func:`_not_rendered`.
TRACE_RENDERERS: dict[str, Callable[[_Canvas, _Axes, dict], None]] = {
    "bar": _bar,
    "scatter": _scatter,
    "heatmap": _heatmap,
    "image": _image,
    "histogram": _histogram,
    "table": _table,
}


# -- the layout, after every trace: (canvas) -----------------------------------------------------
def _style_axes(canvas: _Canvas) -> None:
    """Each plot axes: category ticks, direction and range, titles, hidden parts, the legend."""
    layout = canvas.layout
    for (xname, yname), a in canvas.axes.items():
        if xname == "table":
            continue
        ax = a.ax
        xl = layout.get(f"xaxis{xname[1:]}", {})
        yl = layout.get(f"yaxis{yname[1:]}", {})
        if a.xcats:
            long = max(map(len, a.xcats)) > 6
            ax.set_xticks(range(len(a.xcats)))
            ax.set_xticklabels(a.xcats, rotation=45 if long else 0, ha="right" if long else "center", fontsize=8)
        if a.ycats:
            ax.set_yticks(range(len(a.ycats)))
            ax.set_yticklabels(a.ycats, fontsize=8)
        if yl.get("autorange") == "reversed" or a.reversed_y:
            ax.invert_yaxis()
        if yl.get("range") and not a.reversed_y:
            ax.set_ylim(*yl["range"])
        if xl.get("title", {}).get("text"):
            ax.set_xlabel(xl["title"]["text"])
        if yl.get("title", {}).get("text"):
            ax.set_ylabel(yl["title"]["text"])
        if xl.get("visible") is False:
            ax.axis("off")
        if xl.get("showticklabels") is False:
            ax.set_xticks([])
        if yl.get("showticklabels") is False:
            ax.set_yticks([])
        handles, labels = ax.get_legend_handles_labels()
        if len([lab for lab in labels if lab and not lab.startswith("_")]) > 1 and layout.get("showlegend", True) is not False:
            ax.legend(fontsize=7)


def _shapes(canvas: _Canvas) -> None:
    """Rectangles in data coordinates and vertical lines spanning the plot (``yref="paper"``)."""
    from matplotlib.patches import Rectangle

    for shape in canvas.layout.get("shapes", []):
        xref, yref = shape.get("xref", "x"), shape.get("yref", "y")
        a = canvas.axes_for(xref, yref if yref != "paper" else "y")
        if a is None or xref == "paper":
            continue
        x0, x1 = a.pos([shape.get("x0")], "x")[0], a.pos([shape.get("x1")], "x")[0]
        color = _mpl_color(shape.get("line", {}).get("color", "black"))
        if yref == "paper":
            a.ax.axvline(x0, color=color, linestyle=":", linewidth=1)
        elif shape.get("type") == "rect":
            y0, y1 = a.pos([shape.get("y0")], "y")[0], a.pos([shape.get("y1")], "y")[0]
            a.ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color,
                                     linewidth=shape.get("line", {}).get("width", 1)))


def _annotations(canvas: _Canvas) -> None:
    """Text notes: in figure coordinates when anchored to the paper, else at their data point."""
    for note in canvas.layout.get("annotations", []):
        text = str(note.get("text", ""))
        if note.get("xref") == "paper" and note.get("yref") == "paper":
            fx, fy = canvas.paper_to_fig(float(note.get("x", 0.5)), float(note.get("y", 0.5)))
            canvas.figure.text(fx, fy, text, ha="center", va="bottom" if note.get("yanchor") == "bottom" else "center",
                               fontsize=9)
            continue
        a = canvas.axes_for(note.get("xref", "x"), note.get("yref", "y"))
        if a is None:
            continue
        x = a.pos([note.get("x")], "x")[0]
        y = a.pos([note.get("y")], "y")[0]
        a.ax.text(x, y, text, ha="center", va="bottom", color=_mpl_color(note.get("font", {}).get("color", "black")),
                  fontsize=9)


def _title(canvas: _Canvas) -> None:
    """The figure's title, HTML tags removed."""
    title = canvas.layout.get("title", {}).get("text")
    if title:
        canvas.figure.suptitle(plain_text(title), fontsize=12)


#: What is drawn after the traces, in this order (the ticks and ranges first: shapes and notes
#: are placed on the categories the traces registered).
LAYOUT_RENDERERS: tuple[Callable[[_Canvas], None], ...] = (_style_axes, _shapes, _annotations, _title)


def draw_figure(fig, *, dpi: int = 100):
    """``fig`` (plotly Figure) drawn as a matplotlib Figure: each trace by its kind's renderer
    (:data:`TRACE_RENDERERS`), then the layout (:data:`LAYOUT_RENDERERS`)."""
    canvas = _Canvas(_decode(fig.to_dict()), dpi)
    for trace in canvas.spec.get("data", []):
        axes = canvas.axes_of(trace)
        TRACE_RENDERERS.get(trace.get("type", "scatter"), _not_rendered)(canvas, axes, trace)
    for render in LAYOUT_RENDERERS:
        render(canvas)
    return canvas.figure


def render_matplotlib(fig, fmt: str, *, dpi: int = 100) -> bytes:
    """``fig`` (plotly Figure) rendered as ``fmt`` (png, svg, pdf, jpg) bytes with matplotlib."""
    buffer = io.BytesIO()
    draw_figure(fig, dpi=dpi).savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.15)  # nothing clipped
    return buffer.getvalue()
