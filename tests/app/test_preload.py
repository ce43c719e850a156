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
