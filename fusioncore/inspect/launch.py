"""Start the dashboard (``streamlit run <app>/main.py``) from Python or ``fusioncore dashboard``.

It listens on ``127.0.0.1`` unless told otherwise: serving a lab means an authenticating proxy
(or Streamlit's OIDC login) in front and allowed roots set (``docs/deployment.md``); on a
non-local address without allowed roots the dashboard reads no server paths.

Where the dashboard is (:func:`app_dir`): a wheel install ships ``app/`` as the data package
``fusioncore_app`` (pyproject's package-dir mapping), found through :mod:`importlib.resources`;
a source checkout has it in ``app/`` beside the ``fusioncore`` package, where the README runs it.
Streamlit itself runs in a child process, so the library never imports it.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

#: The name the wheel installs ``app/`` under (``[tool.setuptools.package-dir]`` in pyproject.toml).
APP_PACKAGE = "fusioncore_app"
APP_ENTRY = "main.py"


def _folder(traversable, what: str) -> Path:
    if not isinstance(traversable, Path):
        raise ValueError(f"{traversable}: {what} is inside an archive; streamlit runs files, so install fusioncore "
                         "unzipped (pip install does)")
    return traversable


def app_dir() -> Path:
    """The dashboard folder that belongs to the ``fusioncore`` imported here.

    The installed ``fusioncore_app`` when it lies beside this ``fusioncore`` (a wheel or editable
    install); else the checkout's ``app/`` beside the package. The pairing matters when a checkout
    is run through ``PYTHONPATH`` on a machine where another copy is installed: its dashboard must
    not be served with this library.
    """
    library = _folder(resources.files("fusioncore"), "the fusioncore package")
    if importlib.util.find_spec(APP_PACKAGE) is not None:
        installed = _folder(resources.files(APP_PACKAGE), "the dashboard")
        if installed.parent == library.parent and (installed / APP_ENTRY).is_file():
            return installed
    checkout = library.parent / "app"
    if (checkout / APP_ENTRY).is_file():
        return checkout
    raise ValueError(f"the dashboard is not installed beside {library} (neither the package {APP_PACKAGE!r} nor a "
                     f"checkout's app/{APP_ENTRY}); reinstall fusioncore (pip install fusioncore or pip install -e .)")


def dashboard_command(port: int | None = None, address: str = "127.0.0.1") -> list[str]:
    """The command line that serves the dashboard (usage statistics off, no browser opened)."""
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"--port {port}: expected a TCP port between 1 and 65535")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_dir() / APP_ENTRY), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.address", address]
    if port is not None:
        cmd += ["--server.port", str(int(port))]
    return cmd


def run_dashboard(port: int | None = None, address: str = "127.0.0.1") -> int:
    """Serve the dashboard until interrupted or terminated; returns streamlit's exit status.

    A checkout's dashboard runs in the checkout's root, as ``streamlit run app/main.py`` does, so
    its ``.streamlit/config.toml`` applies; an installed copy runs in the caller's folder (where
    Streamlit looks for a ``.streamlit/config.toml`` of the caller's). A SIGTERM to this process
    is passed on to the server (and the server is stopped on any way out), so stopping
    ``fusioncore dashboard`` never leaves a Streamlit server behind.
    """
    root = app_dir().parent
    cwd = root if (root / ".streamlit" / "config.toml").is_file() else None
    server = subprocess.Popen(dashboard_command(port, address), cwd=cwd)
    forward = threading.current_thread() is threading.main_thread()  # signal handlers: main thread only
    previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate()) if forward else None
    try:
        return server.wait()
    finally:
        if forward:
            signal.signal(signal.SIGTERM, previous)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
