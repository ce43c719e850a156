"""The Slides page under AppTest: without the tile route it says how to start the dashboard; with
it, it asks for a slide; a model without an image modality is told so."""

from __future__ import annotations

import sys

from slide_helpers import REPO

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
