"""The Attention page on the *bundled* attention models (issue 13, item 2): out of the box, a token
model with an image modality shows the mask, the per-layer / per-head maps, the channel x modality
mass and the attention each reader pays to each patch, drawn over the tile.

These tests use the real ``fusioncore/assets/demo`` (built by ``scripts/build_assets.py``), not the tiny test
assets: the point is what a new user sees.
"""

from __future__ import annotations

import json

import pytest

from app_helpers import APP, charts
from fusioncore.inspect import demo_assets

ATTENTION_DEMOS = ("mca_image_omics", "zorro_image_omics", "eao_image_omics", "hybrid_image_omics")


@pytest.fixture(autouse=True)
def fresh_caches():
    """The dashboard's caches live for the process and the demo cohort's is not keyed by
    ``FUSIONCORE_ASSETS``: start from empty caches and leave none of the real assets behind for the
    tests that use the tiny ones."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _attention_page(name: str):
    from streamlit.testing.v1 import AppTest

    assets = demo_assets()
    if not assets.has_cohort:
        pytest.skip("fusioncore/assets/demo not built (python scripts/build_assets.py)")
    assert name in assets.checkpoints, f"fusioncore/assets/demo/{name} is missing: rebuild with python scripts/build_assets.py"
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox(key="demo_model").set_value(name).run()
    at.switch_page("views/attention.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _titles(spec: str) -> str:
    fig = json.loads(spec)
    title = (fig.get("layout", {}).get("title") or {}).get("text", "")
    return title + " | " + " | ".join(a.get("text", "") for a in fig.get("layout", {}).get("annotations", []))


@pytest.mark.parametrize("name", ATTENTION_DEMOS)
def test_bundled_attention_model_renders_every_attention_chart(name):
    at = _attention_page(name)
    figs = charts(at)
    titles = [_titles(f) for f in figs]
    assert any("Attention mask" in t for t in titles)
    assert any(t.startswith("Attention, layer") for t in titles)
    patch = [f for f, t in zip(figs, titles) if "Attention to each image patch" in t]
    assert len(patch) == 1, titles
    fig = json.loads(patch[0])
    kinds = [tr["type"] for tr in fig["data"]]
    assert "image" in kinds and "heatmap" in kinds, "the map is drawn over the tile"
    assert "histology tokens" in _titles(patch[0])
    if name in ("mca_image_omics", "zorro_image_omics"):
        assert any("channel x modality" in t for t in titles)
        assert "histology return token" in _titles(patch[0])
    subheaders = [s.value for s in at.subheader]
    assert "Attention over the image (histology)" in subheaders


def test_one_reader_at_full_size_and_the_image_switched_off():
    at = _attention_page("mca_image_omics")
    at.selectbox(key="att_reader_histology").set_value("histology+mrna+methylation+noisy").run()
    assert not at.exception
    single = [f for f in charts(at) if "Attention of histology+mrna+methylation+noisy" in _titles(f)]
    assert len(single) == 1 and "heatmap overlay" in _titles(single[0])
    at.toggle(key="att_toggle_histology").set_value(False).run()
    assert not at.exception
    assert any("histology is switched off" in c.value for c in at.caption)
    assert not any("Attention to each image patch" in _titles(f) or "Attention of" in _titles(f) for f in charts(at))
