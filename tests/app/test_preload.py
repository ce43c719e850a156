"""The server's warm start (app/preload.py) fills the same caches the first page reads."""

from __future__ import annotations

import sys

from app_helpers import TESTS

sys.path.insert(0, str(TESTS.parent / "app"))


def test_the_preload_fills_the_caches_the_first_page_reads(monkeypatch):
    import loading
    import preload

    from fusioncore.inspect import demo_assets

    assets = demo_assets()
    if not assets.available:
        import pytest

        pytest.skip("the bundled demo checkpoints are not built")
    loading.load_model.clear()
    loading.load_demo_data.clear()
    monkeypatch.setattr(preload, "RUNTIME_WAIT_S", 0.0)  # no server here: fill the caches at once
    preload.start().join(timeout=300)

    def never(*_args):
        raise AssertionError("loaded again: the preload did not fill the cache")

    monkeypatch.setattr(loading, "_load_folder", never)
    monkeypatch.setattr(loading, "demo_cohort", never)
    path = next(iter(assets.checkpoints.values()))
    model, digest = loading.load_model(str(path), loading.checkpoint_key(path)).unwrap()
    assert model.schema.modality_names and len(digest) == 64
    data, _split = loading.load_demo_data(str(assets.folder))
    assert len(data) > 0


def test_a_failing_preload_is_logged_not_raised(monkeypatch, tmp_path):
    import preload

    import fusioncore.inspect as inspect_

    monkeypatch.setenv("FUSIONCORE_LOG_DIR", str(tmp_path))

    def broken():
        raise RuntimeError("assets unreadable")

    monkeypatch.setattr(inspect_, "demo_assets", broken)
    preload.start().join(timeout=60)  # no exception escapes the thread
    logs = list(tmp_path.rglob("dashboard.log"))
    assert logs and "assets unreadable" in logs[0].read_text()


def test_the_preload_computes_the_first_pages_explanation_and_figures(monkeypatch):
    """The first screen (default sample, every modality on, default image-map controls) is in the
    caches the page reads, under the page's own keys: nothing is explained or drawn again."""
    import loading
    import preload
    import state
    import widgets

    from fusioncore import inspect as fi
    from fusioncore.inspect import cache, demo_assets, figures

    assets = demo_assets()
    if not assets.available:
        import pytest

        pytest.skip("the bundled demo checkpoints are not built")
    state.explain.clear()
    state.sample_figure.clear()
    monkeypatch.setattr(preload, "RUNTIME_WAIT_S", 0.0)
    preload.start().join(timeout=300)

    def never(*_args, **_kwargs):
        raise AssertionError("computed again: the preload did not fill the page's cache")

    monkeypatch.setattr(fi, "explain_sample", never)
    monkeypatch.setattr(figures, "sample_figure", never)
    path = next(iter(assets.checkpoints.values()))
    model, digest = loading.load_model(str(path), loading.checkpoint_key(path)).unwrap()
    folder = str(assets.folder)
    data, split = loading.load_demo_data(folder)
    model_key, data_key = cache.checkpoint_model_key(path, digest), cache.demo_data_key(folder)
    data = loading.aligned(model_key, data_key, model, data).unwrap()
    index, pattern = widgets.first_view(data, split)
    assert all(pattern[i] == bool(a) for i, a in enumerate(data.present[index])) and any(pattern)
    exp = state.explain(model_key, data_key, index, pattern, model, data)
    key = cache.explanation_key(model_key, data_key, index, pattern)
    images = exp.modalities_of("image", gated=True)
    assert images, "the default demo model has an image map"
    for name in images:
        # the page's parameters: its controls at their defaults (app/views/sample.py's image_tab)
        params = widgets.heatmap_params(name, 0.5, figures.COLORSCALES[0], (2.0, 98.0), 5)
        assert state.sample_figure("heatmap", key, tuple(sorted(params.items())), exp).figure is not None
    assert state.sample_figure("confidence", key, (), exp).figure is not None
    state.explain.clear()  # later tests compute their own
    state.sample_figure.clear()
