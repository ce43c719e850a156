"""The explanations one switch click away are computed in the background after a page is drawn,
into the cache the next click reads."""

from __future__ import annotations

import sys

from app_helpers import TESTS

sys.path.insert(0, str(TESTS.parent / "app"))


def test_one_click_away_flips_each_available_modality_and_never_empties():
    from fusioncore.inspect import one_click_away

    available = (True, False, True)
    assert one_click_away(available, (True, False, True)) == [(False, False, True), (True, False, False)]
    # the only modality left on is not switched off (no prediction from nothing); the off one comes back
    assert one_click_away(available, (False, False, True)) == [(True, False, True)]
    assert one_click_away((True,), (True,)) == []


def test_a_page_submits_the_patterns_one_click_away(monkeypatch):
    """Under AppTest the worker sees no runtime and computes nothing (its cache would not be the
    page's); the submission itself is checked, and that it happens once per key."""
    from streamlit.testing.v1 import AppTest

    import state
    from app_helpers import APP

    import fusioncore.inspect as fi

    monkeypatch.setenv(state.PREFETCH_ENV, "1")  # the suite turns it off (tests/conftest.py)
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    ctx = at.session_state["context"]
    index = ctx.sample_ids.index(at.selectbox(key="sample").value)
    here = tuple(bool(a) for a in ctx.data.present[index])
    keys = [(ctx.model_key, ctx.data_key, index, p) for p in fi.one_click_away(here, here)]
    assert keys and all(k in state._PREFETCHED for k in keys)  # noqa: SLF001
    assert state._PREFETCH.submit(state._prefetch_one, keys[0], ctx.model, ctx.data).result(timeout=60) is False  # noqa: SLF001
    monkeypatch.setattr(state.st.runtime, "exists", lambda: True)  # as under a server
    assert state.prefetch_neighbours(ctx, index, here) == []  # already submitted: not again


def test_the_switch_turns_it_off(monkeypatch):
    import state

    monkeypatch.setenv(state.PREFETCH_ENV, "0")
    monkeypatch.setattr(state.st.runtime, "exists", lambda: True)
    assert state.prefetch_neighbours(object(), 0, (True,)) == []
