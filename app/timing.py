"""An opt-in timing log of the dashboard's cold start (``FUSIONCORE_TIMING=1``).

Why: a cold start is a chain of phases in two processes (the server's imports and loads, the
first script run, the browser drawing); ``benchmarks/bench_browser.py`` times the browser side,
and these lines on the server's stderr say where the server's share goes. Each line gives the
wall seconds since this module was first imported (in ``main.py``, before the server starts),
the clock time (to line up with the benchmark's) and the process's CPU seconds, which the load
of a shared machine inflates less than wall time. Off by default: then :func:`mark` does nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time

ENV = "FUSIONCORE_TIMING"
_T0 = time.perf_counter()


def mark(phase: str) -> None:
    """One ``fusioncore-timing`` line on stderr for ``phase`` when the log is on."""
    if os.environ.get(ENV, "0") in ("", "0"):
        return
    print(f"fusioncore-timing {phase}: wall {time.perf_counter() - _T0:.3f} s, cpu {time.process_time():.3f} s, "
          f"epoch {time.time():.3f}, "
          f"thread {threading.current_thread().name}", file=sys.stderr, flush=True)
