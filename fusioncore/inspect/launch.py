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

#: The checkout's ``.streamlit/config.toml`` settings an installed copy is served with when the caller
#: has no Streamlit config of their own (a wheel has no ``.streamlit/`` folder, and Streamlit's defaults
#: would show tracebacks in the browser: ``showErrorDetails = "full"``). tests/cli/test_dashboard_command.py
#: checks these against the file, so the two cannot drift apart.
INSTALLED_SETTINGS = {
    "client.showErrorDetails": "false",
    "client.toolbarMode": "minimal",
    "server.maxUploadSize": "200",
    "server.runOnSave": "false",
    "server.enableXsrfProtection": "true",
    "server.enableCORS": "true",
    "server.enableAgentApi": "false",
    "runner.magicEnabled": "false",
    "theme.base": "light",
    "theme.primaryColor": "#7a1f5c",
}


def _has_own_config(folder: Path) -> bool:
    """Whether Streamlit, started in ``folder``, reads a config.toml of the user's (there or in ~)."""
    return any((base / ".streamlit" / "config.toml").is_file() for base in (folder, Path.home()))


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


def dashboard_command(port: int | None = None, address: str = "127.0.0.1", *, settings: dict[str, str] | None = None
                      ) -> list[str]:
    """The command line that serves the dashboard (usage statistics off, no browser opened);
    ``settings`` (``section.option -> value``) become ``--section.option value`` flags."""
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"--port {port}: expected a TCP port between 1 and 65535")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_dir() / APP_ENTRY), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.address", address]
    if port is not None:
        cmd += ["--server.port", str(int(port))]
    for option, value in (settings or {}).items():
        cmd += [f"--{option}", value]
    return cmd


def served_from() -> tuple[Path | None, dict[str, str]]:
    """Where the server starts and which settings it is given.

    A checkout's dashboard runs in the checkout's root, as ``streamlit run app/main.py`` does, so
    its ``.streamlit/config.toml`` applies. An installed copy runs in the caller's folder, where
    a Streamlit config of the caller's applies if there is one; without one it gets
    :data:`INSTALLED_SETTINGS`, the checkout's settings.
    """
    root = app_dir().parent
    if (root / ".streamlit" / "config.toml").is_file():
        return root, {}
    return None, ({} if _has_own_config(Path.cwd()) else dict(INSTALLED_SETTINGS))


def run_dashboard(port: int | None = None, address: str = "127.0.0.1") -> int:
    """Serve the dashboard until interrupted or terminated; returns streamlit's exit status.

    It starts where :func:`served_from` says, with its settings. A SIGTERM to this process
    is passed on to the server (and the server is stopped on any way out), so stopping
    ``fusioncore dashboard`` never leaves a Streamlit server behind.
    """
    cwd, settings = served_from()
    server = subprocess.Popen(dashboard_command(port, address, settings=settings), cwd=cwd)
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
