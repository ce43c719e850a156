"""Child process for static export with kaleido (``python -m fusioncore.viz._kaleido_worker``).

kaleido drives a headless Chrome/Chromium, which is known to hang in some setups; running it in
its own process (session) lets :mod:`fusioncore.viz.export` kill it and its browser after a
timeout, which a thread could not do. Reads one JSON job from stdin::

    {"figure": <plotly JSON>, "formats": ["png", ...], "out_dir": "...", "width": ..., "height": ..., "scale": ...}

and writes ``out_dir/figure.<format>`` for each format; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    job = json.loads(sys.stdin.read())
    import kaleido
    import plotly.io as pio

    figure = pio.from_json(json.dumps(job["figure"]), skip_invalid=True)
    out = Path(job["out_dir"])
    # One browser for every format (a cold start per format costs seconds each).
    kaleido.start_sync_server(silence_warnings=True)
    try:
        for fmt in job["formats"]:
            data = pio.to_image(figure, format=fmt, width=job.get("width"), height=job.get("height"), scale=job.get("scale"))
            (out / f"figure.{fmt}").write_bytes(data)
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
