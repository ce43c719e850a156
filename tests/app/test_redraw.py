"""An image map that did not change is sent to the browser as the same figure (app/widgets.py's
``reuse_drawn``), so switching another modality does not redraw it; a changed one is drawn anew."""

from __future__ import annotations

import sys

import numpy as np

from app_helpers import TESTS

sys.path.insert(0, str(TESTS.parent / "app"))

from fusioncore.inspect.figures import FigureBundle  # noqa: E402


def _bundle(figure: str, switched_off: tuple[str, ...] = ()) -> FigureBundle:
    return FigureBundle("heatmap-histology", figure, None, "S-1", switched_off=switched_off)


def test_the_same_map_within_float_noise_keeps_the_drawn_figure_and_the_new_labels():
    from widgets import reuse_drawn

    store: dict = {}
    rng = np.random.default_rng(0)
    gate = rng.random((8, 8)).astype(np.float32)
    first = reuse_drawn(store, "fig_heatmap", ("S-1", "defaults", True), gate, _bundle("figure A"))
    assert first.figure == "figure A"
    noisy = gate + np.float32(1e-7)  # another forward pass of the same image
    again = reuse_drawn(store, "fig_heatmap", ("S-1", "defaults", True), noisy, _bundle("figure B", ("mrna",)))
    assert again.figure == "figure A"  # the figure already on the page: the browser does not redraw it
    assert again.switched_off == ("mrna",)  # exports are named after the switches now


def test_a_changed_map_controls_or_sample_is_drawn_anew():
    from widgets import reuse_drawn

    store: dict = {}
    gate = np.full((8, 8), 0.5)
    reuse_drawn(store, "fig_heatmap", ("S-1", "defaults", True), gate, _bundle("A"))
    assert reuse_drawn(store, "fig_heatmap", ("S-1", "defaults", True), gate + 1e-3, _bundle("B")).figure == "B"
    assert reuse_drawn(store, "fig_heatmap", ("S-1", "opacity 0.7", True), gate, _bundle("C")).figure == "C"
    assert reuse_drawn(store, "fig_heatmap", ("S-2", "opacity 0.7", True), gate, _bundle("D")).figure == "D"
    assert reuse_drawn(store, "fig_heatmap", ("S-2", "opacity 0.7", False), None, _bundle("E")).figure == "E"
    assert reuse_drawn(store, "fig_heatmap", ("S-2", "opacity 0.7", True), np.full((4, 4), 0.5), _bundle("F")).figure == "F"
