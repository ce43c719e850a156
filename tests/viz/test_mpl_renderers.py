"""The matplotlib fallback, one renderer at a time: each trace kind's renderer draws its data
(checked on the matplotlib Figure :func:`draw_figure` returns, before it becomes pixels), the
layout renderers place ticks, ranges, shapes, notes and the title, and every hand-made figure
of ``mpl_figures`` renders to PNG, SVG and PDF."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.table import Table

from fusioncore.viz._mpl_render import LAYOUT_RENDERERS, TRACE_RENDERERS, draw_figure, render_matplotlib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mpl_figures import handmade  # noqa: E402

FIGURES = handmade()


def _bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_every_trace_kind_has_a_renderer_and_the_layout_runs_in_order():
    assert set(TRACE_RENDERERS) == {"bar", "scatter", "heatmap", "image", "histogram", "table"}
    assert [f.__name__ for f in LAYOUT_RENDERERS] == ["_style_axes", "_shapes", "_annotations", "_title"]


def test_bar_renderer_groups_bars_side_by_side_with_error_bars_and_categories():
    figure = draw_figure(FIGURES["bars"])
    grouped, horizontal = figure.axes[0], figure.axes[1]
    bars = _bars(grouped)
    assert len(bars) == 6 and [round(b.get_width(), 3) for b in bars] == [0.4] * 6  # two series share each slot
    assert [round(b.get_x() + b.get_width() / 2, 2) for b in bars[:3]] == [-0.2, 0.8, 1.8]
    assert [b.get_height() for b in bars[:3]] == [1, 3, 2] and bars[3].get_alpha() == 0.6
    kinds = [type(c).__name__ for c in grouped.containers]
    assert kinds.count("ErrorbarContainer") == 1 and kinds.count("BarContainer") == 2  # error bars on the first only
    assert [t.get_text() for t in grouped.get_xticklabels()] == ["alpha", "beta", "gamma"]
    assert grouped.get_ylim() == (0, 5) and grouped.get_xlabel() == "category" and grouped.get_ylabel() == "count"
    assert [round(b.get_width(), 2) for b in _bars(horizontal)] == [0.5, 0.7]  # barh: widths are the values
    assert figure._suptitle.get_text() == "Bars grouped"  # the title renderer, HTML removed
    overlay = _bars(draw_figure(FIGURES["overlay_bars"]).axes[0])
    assert [round(b.get_width(), 2) for b in overlay] == [0.8] * 6  # barmode overlay: full width, same slots


def test_scatter_renderer_draws_lines_markers_and_error_bars():
    ax = draw_figure(FIGURES["scatter"]).axes[0]
    lines = ax.get_lines()
    assert lines[0].get_linestyle() == "--" and lines[0].get_marker() == "o"  # lines+markers, dashed
    assert lines[1].get_linestyle() == "None" and lines[1].get_marker() == "o"  # markers only
    assert len(ax.containers) == 1  # the error-bar trace
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # autorange reversed
    assert ax.get_xticks().size == 0  # showticklabels False
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["peak"] and ax.texts[0].get_position() == (3.0, 0.8)
    assert "paper note" in [t.get_text() for t in ax.figure.texts]
    assert ax.get_legend() is not None


def test_heatmap_renderer_maps_colours_masks_nan_and_adds_a_colour_bar():
    figure = draw_figure(FIGURES["heatmaps"])
    first, second, third = (a for a in figure.axes if a.images)
    image = first.images[0]
    assert image.get_array().shape == (4, 5)
    assert image.get_cmap()(1.0)[:3] == pytest.approx((8 / 255, 48 / 255, 107 / 255))  # plotly's Blues, darkest stop
    assert [t.get_text() for t in first.get_yticklabels()] == ["r0", "r1", "r2", "r3"]
    assert len(figure.axes) == 4  # three heatmaps and one colour bar (the others have showscale False)
    masked = second.images[0].get_array()
    assert masked.mask[1, 1] and not masked.mask[0, 0] and second.images[0].get_clim() == (0, 1)
    assert second.images[0].get_cmap().name.endswith("_r")  # reversescale
    assert third.images[0].get_alpha() == 0.5 and not third.axison  # visible False
    rects = [p for p in first.patches if isinstance(p, Rectangle) and not p.get_fill()]
    assert len(rects) == 1 and rects[0].get_width() == 2.0  # the shapes renderer's rectangle
    assert any(line.get_linestyle() == ":" for line in second.get_lines())  # paper-spanning line at x=1


def test_image_and_histogram_renderers():
    figure = draw_figure(FIGURES["image_histogram"])
    picture, hist = figure.axes[0], figure.axes[1]
    assert isinstance(picture.images[0], AxesImage) and picture.images[0].get_array().shape == (8, 8, 3)
    assert picture.images[0].get_array().dtype == np.uint8 and picture.get_ylim()[0] > picture.get_ylim()[1]
    heights = [p.get_height() for p in _bars(hist)]
    assert len(heights) == 12 and sum(heights) == 50  # NaN left out, nbinsx bins
    assert hist.get_yticks().size == 0


def test_table_renderer_and_an_unsupported_kind():
    figure = draw_figure(FIGURES["table_unknown"])
    table_axes = next(a for a in figure.axes if a.tables)
    table = table_axes.tables[0]
    assert isinstance(table, Table) and not table_axes.axison
    cells = {(r, c): cell.get_text().get_text() for (r, c), cell in table.get_celld().items()}
    assert cells[(0, 0)] == "k" and cells[(1, 1)] == "0.1" and cells[(3, 0)] == "5"
    notes = [t.get_text() for a in figure.axes for t in a.texts]
    assert "(pie trace not rendered by the fallback)" in notes
    empty = draw_figure(FIGURES["empty_table"])
    assert not any(a.tables for a in empty.axes)  # a header without cells draws nothing


@pytest.mark.parametrize("name", sorted(FIGURES))  # the package's own figures: tests/viz/test_export.py
def test_every_figure_renders_in_every_static_format(name):
    fig = FIGURES[name]
    png, svg, pdf = (render_matplotlib(fig, fmt) for fmt in ("png", "svg", "pdf"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and pdf.startswith(b"%PDF")
    assert ET.fromstring(svg).tag.endswith("svg")
