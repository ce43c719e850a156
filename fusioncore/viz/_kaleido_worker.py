"""The warm static-export process (``python -m fusioncore.viz._kaleido_worker``).

kaleido drives a headless Chrome/Chromium. Starting the browser costs seconds, so this process
starts it once (kaleido's persistent sync server) and then renders job after job: one JSON
line per job on stdin,

    {"figure": <plotly JSON>, "formats": ["png", ...], "width": ..., "height": ..., "scale": ...}

answered by one JSON line on stdout, ``{"ok": true, "files": {"png": <base64>, ...}}`` or
``{"ok": false, "error": "..."}``. It prints ``{"ready": true}`` once the browser is up. Chrome
is known to hang in some setups; running it here, in its own process session, lets
:mod:`fusioncore.viz.export` kill it (and its browser) after a timeout, which a thread could not.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import warnings


def _answer(stream, payload: dict) -> None:
    stream.write(json.dumps(payload) + "\n")
    stream.flush()


def _render(job: dict) -> dict:
    import plotly.io as pio

    figure = pio.from_json(json.dumps(job["figure"]), skip_invalid=True)
    files = {}
    for fmt in job["formats"]:
        data = pio.to_image(figure, format=fmt, width=job.get("width"), height=job.get("height"), scale=job.get("scale"))
        files[fmt] = base64.b64encode(data).decode("ascii")
    return {"ok": True, "files": files}


def main() -> int:
    # Replies go to the real stdout only; anything a library prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")  # plotly warns that kaleido's server ignores per-call options
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    try:
        _answer(replies, {"ready": True})
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                _answer(replies, _render(json.loads(line)))
            except Exception as err:  # noqa: BLE001 - reported to the parent, which falls back
                _answer(replies, {"ok": False, "error": f"{type(err).__name__}: {err}"})
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
