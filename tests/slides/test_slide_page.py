"""The Slides page under AppTest: without the tile route it says how to start the dashboard; with
it, it asks for a slide; a model without an image modality is told so."""

from __future__ import annotations

import sys

from slide_helpers import REPO, slide_factory, textures  # noqa: F401 -- fixtures

sys.path.insert(0, str(REPO / "app"))

APP = str(REPO / "app" / "dashboard.py")


def _page(mounted: bool):
    from streamlit.testing.v1 import AppTest

    import tiles

    if mounted:
        tiles.routes()
    else:
        tiles._mounted.clear()  # noqa: SLF001 -- the flag app/main.py sets
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/slides.py").run()
    assert not at.exception
    return at


def test_without_the_tile_route_the_page_says_how_to_start():
    at = _page(mounted=False)
    assert at.title[0].value == "Slide viewer"
    assert any("streamlit run app/main.py" in w.value for w in at.warning)


def test_with_the_tile_route_the_page_asks_for_a_slide():
    at = _page(mounted=True)
    assert not any("streamlit run app/main.py" in w.value for w in at.warning)
    assert any("Upload a slide" in i.value for i in at.info)
    at.selectbox(key="demo_model").set_value("mmdynamics_omics").run()
    assert any("no image modality" in i.value for i in at.info)


def _server_path(at, typed: str):
    at.radio(key="slide_source").set_value("Server path").run()
    at.text_input(key="slide_server_path").set_value(typed).run()
    assert not at.exception
    return at


def test_a_server_slide_outside_the_allowed_roots_is_refused(tmp_path, monkeypatch):
    allowed = tmp_path / "lab"
    allowed.mkdir()
    outside = tmp_path / "elsewhere.tiff"
    outside.write_bytes(b"not read")
    monkeypatch.setenv("FUSIONCORE_ALLOWED_ROOTS", str(allowed))
    at = _server_path(_page(mounted=True), str(outside))
    assert any("outside the folders this dashboard may read" in e.value for e in at.error)
    assert str(allowed) in at.text_input(key="slide_server_path").help
    at = _server_path(at, str(allowed / "notes.txt"))
    assert any("expected an existing file ending in" in e.value for e in at.error)


def test_a_server_slide_inside_the_allowed_roots_opens(slide_factory, tmp_path, monkeypatch):
    slide = slide_factory("served.tiff", (512, 384))
    monkeypatch.setenv("FUSIONCORE_ALLOWED_ROOTS", str(slide.parent))
    at = _server_path(_page(mounted=True), str(slide))
    assert not at.error, [e.value for e in at.error]
    assert any(b.label == "Compute the slide heatmap" for b in at.button)
