"""What a click costs: an export popover sends its buttons only once opened, and the server's
long-lived objects are frozen so the collection after every run does not walk them
(docs/benchmarks.md §5; the switch reruns only the sample view's body, an ``st.fragment``, which
AppTest does not reproduce: it reruns the whole script, so the browser benchmark measures it)."""

from __future__ import annotations

import gc
import sys

import pytest

from app_helpers import TESTS, app, tiny_assets, tiny_assets_root, use_omics  # noqa: F401

sys.path.insert(0, str(TESTS.parent / "app"))


def test_an_export_popover_sends_its_buttons_only_when_open(app):  # noqa: F811
    at = use_omics(app().run())
    assert not at.get("download_button")  # closed: no buttons (and no deferred files) on the page
    at.session_state["export_confidence"] = True  # the popover opened, as a click on it would
    at.run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert sorted(labels) == ["CSV", "HTML", "JSON", "PDF", "PNG", "SVG"], labels


@pytest.fixture
def unfrozen():
    """The test process's collector as it was (``gc.freeze`` is process-wide)."""
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_freezing_takes_the_long_lived_objects_out_of_every_collection(unfrozen, monkeypatch):
    import gc_freeze

    import torch  # noqa: F401 -- what the server has imported by then

    monkeypatch.setattr(gc_freeze, "_enabled", True)  # as main.py does in the server
    tracked = len(gc.get_objects())
    assert gc_freeze.freeze_long_lived() is True
    assert gc.get_freeze_count() >= tracked * 0.9
    assert len(gc.get_objects()) < tracked * 0.1  # what a full collection still walks
    assert gc_freeze.freeze_long_lived() is False  # once per process


def test_no_freezing_outside_the_server(app, unfrozen):  # noqa: F811
    import gc_freeze

    use_omics(app().run())  # the pages call it after every run ...
    assert gc_freeze.freeze_long_lived() is False  # ... but AppTest and the test suite keep their collector
    assert gc.get_freeze_count() == 0


def test_the_warm_start_freezes_once_the_default_model_is_loaded(monkeypatch):
    import gc_freeze
    import preload

    from fusioncore.inspect import demo_assets

    if not demo_assets().available:
        pytest.skip("the bundled demo checkpoints are not built")
    order = []
    monkeypatch.setattr(preload, "RUNTIME_WAIT_S", 0.0)
    monkeypatch.setattr(preload, "_first_page", lambda *a: order.append("first page"))
    monkeypatch.setattr(gc_freeze, "freeze_long_lived", lambda: order.append("freeze"))
    preload.start().join(timeout=300)
    assert order == ["first page", "freeze"]
