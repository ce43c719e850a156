"""Keep the garbage collection after every script run short: freeze what lives as long as the server.

Why: Streamlit runs a full garbage collection after every script run (``runner.postScriptGC``, on
by default, which keeps a long-running server's memory in check). Once torch, the U-Net's
libraries and a model are imported, a full collection walks ~475,000 objects: 0.28 s on the
2-core machine (``benchmarks/bench_gc.py``), on every click, between the script's end and the
browser getting the run's last messages (docs/benchmarks.md §5).
Those objects (modules, classes, the default model) live as long as the server;
:func:`gc.freeze` moves them to the permanent generation, which collections skip, so the
post-run collection walks only what later runs create, and the same holds for the
interpreter's own full collections.

Called once per server process: by the warm start once the default model is loaded
(``preload.py``), else after the first script run that imported torch (``dashboard.py``). The
cost: objects alive at that moment are never freed by the cycle collector (reference counting
still frees them), which is what a server-lifetime object needs anyway; at start-up there is
almost no garbage to freeze with them. Only in the server ``main.py``
starts (:func:`enable`): a test process calling the pages through ``AppTest`` keeps its
collector as it is.
"""

from __future__ import annotations

import gc
import sys

_enabled = False


def enable() -> None:
    """This process is the dashboard's server (``main.py``): freezing may happen."""
    global _enabled
    _enabled = True


def freeze_long_lived() -> bool:
    """Freeze every object the collector tracks now, once per server process; whether this call did."""
    if not _enabled or gc.get_freeze_count() or "torch" not in sys.modules:
        return False
    gc.freeze()
    return True
