"""Start the dashboard (``streamlit run app/main.py``) from Python or the CLI.

It listens on ``127.0.0.1`` unless told otherwise: serving a lab means an authenticating proxy
(or Streamlit's OIDC login) in front and allowed roots set (``docs/deployment.md``); on a
non-local address without allowed roots the dashboard reads no server paths.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def dashboard_command(port: int | None = None, address: str = "127.0.0.1") -> list[str]:
    """The command line that serves the dashboard (usage statistics off, no browser opened)."""
    if not APP.is_file():
        raise ValueError(f"{APP}: the dashboard is not in this installation (it ships with the source checkout)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.address", address]
    if port is not None:
        cmd += ["--server.port", str(int(port))]
    return cmd


def run_dashboard(port: int | None = None, address: str = "127.0.0.1") -> int:
    """Serve the dashboard until interrupted; returns streamlit's exit status."""
    return subprocess.call(dashboard_command(port, address), cwd=APP.parents[1])
