"""``fusioncore dashboard``: serve the Streamlit dashboard (:mod:`fusioncore.inspect.launch`).

The one command that prints no JSON: it is a server, and Streamlit prints where it listens. It
ends when the server does: Ctrl-C gives exit status 130, a SIGTERM (passed on to the server) 0; a
server that fails to start (a port in use, say) ends with exit status 2 and the reason on stderr,
after Streamlit's own messages.
"""

from __future__ import annotations

import argparse
import sys


def cmd_dashboard(args: argparse.Namespace) -> None:
    from ..inspect.launch import run_dashboard

    status = run_dashboard(args.port, args.address)  # a bad --port is refused there, before streamlit starts
    if status < 0:  # stopped by a signal (a SIGTERM to this command is passed on): a normal end for a server
        print(f"fusioncore dashboard: stopped (signal {-status})", file=sys.stderr)
    elif status != 0:
        raise ValueError(f"streamlit exited with status {status} (its messages are above; a port already in use "
                         "is the usual cause)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dashboard", help="serve the explainability dashboard (Streamlit) on the bundled demo",
        description="Serve the dashboard (the same app as `streamlit run app/main.py` in a checkout, from the "
                    "installed files otherwise). It opens on the bundled demo; see docs/dashboard.md, and "
                    "docs/deployment.md before serving it beyond this machine.")
    p.add_argument("--port", type=int, default=None, help="TCP port (default: Streamlit's, 8501 or the next free one)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; a non-local address without "
                        "allowed roots reads no server paths, docs/deployment.md)")
    p.set_defaults(func=cmd_dashboard)
