"""Warm start: load the bundled default model and cohort while the server starts.

Why: most of a cold start is single-threaded work the first page waits for — importing torch and
the U-Net's libraries, reading the default checkpoint, reading the demo cohort, explaining the
default sample. ``main.py`` starts this in a background thread as soon as it is imported (before
its own imports and the server's start), so it overlaps with the server starting and the browser
loading the page; the first script run then finds the modules imported, the loads in the same
``st.cache_resource`` caches it would have filled itself, and its first screen's explanation and
figures in the caches it reads them from (:func:`_first_page`). A failure here costs nothing: it is
logged, and the page loads (and reports) as it would without the preload.
"""

from __future__ import annotations

import threading
import time

import streamlit as st


def _warm() -> None:
    import timing

    timing.mark("preload start")
    try:
        from fusioncore.inspect import cache, demo_assets

        import gc_freeze
        import loading

        assets = demo_assets()
        if not assets.available:
            return
        path = next(iter(assets.checkpoints.values()))  # the sidebar's default demo model
        timing.mark("preload imports")
        model, digest = loading.load_model(str(path), loading.checkpoint_key(path)).unwrap()
        timing.mark("preload model")
        folder = str(assets.folder)
        data, split = loading.load_demo_data(folder)
        model_key, data_key = cache.checkpoint_model_key(path, digest), cache.demo_data_key(folder)
        data = loading.aligned(model_key, data_key, model, data).unwrap()  # as the sidebar hands it to the pages
        timing.mark("preload cohort")
        _first_page(model, model_key, data, data_key, split)
        gc_freeze.freeze_long_lived()  # the imports and the default model: no longer walked after each run
        timing.mark("preload done")
    except Exception as err:  # never fatal: the first page load does the same work and reports it
        from fusioncore.errorlog import log_exception

        log_exception(err, "dashboard", "preloading the bundled demo")


def _first_page(model, model_key: str, data, data_key: str, split) -> None:
    """The sample view's first screen, into the caches the page reads: the explanation of the
    default sample with every modality on, the informativeness figure and each image map at its
    controls' defaults. Same functions, same arguments as the page (``widgets.first_view``,
    ``widgets.heatmap_params``), so the page finds exactly what it would have computed."""
    import state
    import widgets
    from fusioncore.inspect import cache

    index, pattern = widgets.first_view(data, split)
    if not any(pattern):
        return
    _wait_for_runtime()
    exp = state.explain(model_key, data_key, index, pattern, model, data)
    key = cache.explanation_key(model_key, data_key, index, pattern)
    views = [("confidence", {})] + [("heatmap", widgets.heatmap_params(name, **widgets.HEATMAP_DEFAULTS))
                                    for name in exp.modalities_of("image", gated=True)]
    for view, params in views:
        try:
            state.sample_figure(view, key, tuple(sorted(params.items())), exp)
        except ValueError:  # a view this model cannot give: the page says so itself
            continue


#: How long the preload waits for Streamlit's runtime before filling ``st.cache_data`` caches.
RUNTIME_WAIT_S = 30.0


def _wait_for_runtime() -> None:
    """Until the server's runtime exists (at most :data:`RUNTIME_WAIT_S`). Why: this thread starts
    before the server; a data cache first used before the runtime exists is kept in Streamlit's
    fallback memory store instead of the runtime's (it is still the one the page reads, but this
    keeps it exactly the page's). Under ``streamlit run`` the runtime exists long before the model
    is loaded, so this costs nothing there; without a server (tests) it falls through."""
    deadline = time.monotonic() + RUNTIME_WAIT_S
    while not st.runtime.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def start() -> threading.Thread:
    """Start the preload in a daemon thread (it never delays the server's start)."""
    thread = threading.Thread(target=_warm, name="fusioncore-preload", daemon=True)
    thread.start()
    return thread
