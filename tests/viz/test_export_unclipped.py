"""Static exports are complete: every axis title is in the PDF's text, and no ink touches the
edge of a PNG or PDF page (Chrome's PDF printer cut the x-axis title off, issue 13 item 5);
the warm renderer answers later exports without starting a browser again."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fusioncore import viz
from fusioncore.viz._common import plain_text

pytestmark = pytest.mark.skipif(viz.find_browser() is None, reason="no Chrome/Chromium for kaleido on this machine")
BORDER_PX = 3


def figures() -> dict:
    rng = np.random.default_rng(0)
    pred = {"mrna": rng.random(40), "methylation": rng.random(40)}
    true = {"mrna": rng.random(40) + 0.05, "methylation": rng.random(40) + 0.05}
    probs = viz.class_probabilities_figure(np.array([0.2, 0.5, 0.3]), ["lymphoid", "vesicular", "spindle"],
                                           reference=np.array([0.3, 0.4, 0.3]), true_class=1)
    viz.add_subtitle(probs, "sample demo-0003 · predicted vesicular · without mrna")
    return {
        "probabilities": probs,
        "confidence": viz.modality_confidence_figure({"mrna": 1.28, "methylation": 0.4}, ["mrna", "methylation"],
                                                     true_tcp={"mrna": 0.9, "methylation": 0.3}),
        "gates": viz.feature_gates_figure(rng.random(30), [f"GENE{i:03d}" for i in range(30)], top_k=10, modality="mrna"),
        "attributions": viz.attribution_bar_figure(rng.normal(size=30), [f"GENE{i:03d}" for i in range(30)], top_k=10,
                                                   method="ig, mrna"),
        "tcp_scatter": viz.tcp_scatter_figure(pred, true),
        "tcp_histogram": viz.tcp_relative_error_histogram(pred, true),
        "heatmap": viz.image_heatmap_figure(rng.random((3, 64, 64)), rng.random((64, 64)), top_k=3, patch_size=8),
    }


def axis_titles(fig) -> list[str]:
    layout = fig.to_dict()["layout"]
    titles = []
    for name, axis in layout.items():
        if (name.startswith("xaxis") or name.startswith("yaxis")) and isinstance(axis, dict):
            text = (axis.get("title") or {}).get("text")
            if text:
                titles.extend(line for line in plain_text(text).split("\n") if line)
    return titles


def ink_touches_border(image: Image.Image) -> list[str]:
    gray = np.asarray(image.convert("L"), dtype=np.int16)
    ink = gray < 245
    b = BORDER_PX
    edges = {"top": ink[:b], "bottom": ink[-b:], "left": ink[:, :b], "right": ink[:, -b:]}
    return [side for side, band in edges.items() if band.any()]


def test_pdf_has_every_axis_title_and_nothing_at_the_edge():
    pdfium = pytest.importorskip("pypdfium2")
    for name, fig in figures().items():
        files, used, reason = viz.render_static(fig, ["pdf", "png"], renderer="kaleido", timeout_s=120)
        assert used == "kaleido", reason
        page = pdfium.PdfDocument(files["pdf"])[0]
        text = " ".join(page.get_textpage().get_text_range().split())
        titles = axis_titles(fig)
        assert titles or name == "heatmap", name
        for title in titles:
            assert title in text, f"{name}: axis title {title!r} missing from the PDF text {text[:200]!r}"
        assert not ink_touches_border(page.render(scale=2).to_pil()), f"{name}: PDF content cut at the page edge"
        assert not ink_touches_border(Image.open(io.BytesIO(files["png"]))), f"{name}: PNG content at the edge"


def test_the_renderer_stays_warm_between_exports():
    """One browser process serves every export (starting Chromium per click cost 6-13 s);
    ``benchmarks/bench_browser.py --export`` times it."""
    from fusioncore.viz import export

    figs = list(figures().values())
    viz.render_static(figs[0], ["png"], renderer="kaleido", timeout_s=120)
    worker = export._WORKER.proc
    assert worker is not None and worker.poll() is None
    for fig in figs[1:3]:
        for fmt in ("png", "svg", "pdf"):
            viz.render_static(fig, [fmt], renderer="kaleido", timeout_s=60)
    assert export._WORKER.proc is worker and worker.poll() is None
