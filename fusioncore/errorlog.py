"""Where tracebacks go: a private log file, never the terminal or the dashboard's page.

The two boundaries (``fusioncore`` CLI's ``main`` and the dashboard's sidebar and pages) turn
every exception into a short message; the full traceback is appended here, with a short
reference the message quotes so a report can be matched to its traceback.

The folder is ``$FUSIONCORE_LOG_DIR``, else ``$XDG_STATE_HOME/fusioncore``, else
``~/.local/state/fusioncore``; one file per boundary (``cli.log``, ``dashboard.log``), created
0600 in a 0700 folder (tracebacks name server paths), rotated to ``.1`` past 10 MB.
"""

from __future__ import annotations

import os
import secrets
import time
import traceback
from pathlib import Path
from typing import Mapping

LOG_DIR_ENV = "FUSIONCORE_LOG_DIR"
MAX_LOG_BYTES = 10 * 1024**2


def log_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder the logs go to (see the module doc); it need not exist yet."""
    env = os.environ if environ is None else environ
    if env.get(LOG_DIR_ENV):
        return Path(env[LOG_DIR_ENV]).expanduser()
    state = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return state / "fusioncore"


def log_path(component: str, environ: Mapping[str, str] | None = None) -> Path:
    """The log file of ``component`` (``cli`` or ``dashboard``)."""
    return log_dir(environ) / f"{component}.log"


def log_exception(err: BaseException, component: str, context: str = "") -> tuple[str, Path | None]:
    """Append ``err``'s traceback to ``component``'s log; return (reference, log file).

    The log file is None when it cannot be written (a read-only home): the caller still shows
    its message and says so. An exception logged before (a cached failure shown again on a
    rerun) is not written twice; it keeps its first reference.
    """
    known = getattr(err, "_fusioncore_log", None)
    if known is not None:
        return known
    reference = secrets.token_hex(4)
    path = log_path(component)
    record = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} reference {reference} {context}\n"
              + "".join(traceback.format_exception(err)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.is_file() and path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_suffix(".log.1"))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as file:
            file.write(record)
    except OSError:
        result = (reference, None)
    else:
        result = (reference, path)
    try:
        err._fusioncore_log = result
    except AttributeError:  # an exception type with __slots__
        pass
    return result


def describe_os_error(err: OSError) -> str:
    """An ``OSError`` as a user reads it: the file, then what the system said (permission denied...)."""
    reason = {PermissionError: "permission denied", FileNotFoundError: "no such file or directory",
              IsADirectoryError: "is a folder, not a file", NotADirectoryError: "not a folder"}.get(type(err))
    reason = reason or (err.strerror or str(err)).lower()
    return f"{err.filename}: {reason}" if err.filename else reason
