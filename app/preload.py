"""Warm start: load the bundled default model and cohort while the server starts.

Why: most of a cold start is single-threaded work the first page waits for — importing torch and
the U-Net's libraries, reading the default checkpoint, reading the demo cohort. ``main.py`` starts
this in a background thread from the server's lifespan hook, so it overlaps with the browser
loading the page; the first script run then finds the modules imported and the loads in the same
``st.cache_resource`` caches it would have filled itself. A failure here costs nothing: it is
logged, and the page loads (and reports) as it would without the preload.
"""

from __future__ import annotations

import threading

from fusioncore.errorlog import log_exception


def _warm() -> None:
    try:
        from fusioncore.inspect import demo_assets

        import loading

        assets = demo_assets()
        if not assets.available:
            return
        path = next(iter(assets.checkpoints.values()))  # the sidebar's default demo model
        loading.load_model(str(path), loading.checkpoint_key(path))
        loading.load_demo_data(str(assets.folder))
        import state  # noqa: F401 -- the sample page's compute caches and what they import
        import widgets  # noqa: F401
    except Exception as err:  # never fatal: the first page load does the same work and reports it
        log_exception(err, "dashboard", "preloading the bundled demo")


def start() -> threading.Thread:
    """Start the preload in a daemon thread (it never delays the server's start)."""
    thread = threading.Thread(target=_warm, name="fusioncore-preload", daemon=True)
    thread.start()
    return thread
