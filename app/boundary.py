"""The dashboard's exception boundary: every failure in the sidebar or a page becomes a message.

``dashboard.py`` runs the page inside :func:`guard`, and the sidebar runs each of its sections inside
one, so no page needs its own ``try``; a page's fragments are :func:`fragment`s, whose own reruns
do not pass through ``dashboard.py``. What the user reads depends on the failure:

* a library error (``ValueError``: ``CheckpointError``, ``DataError``, ``AccessError``...): its
  own message, which names the file, field or option and what was expected;
* a file-system error: the file's name (never its server folder) and what the system said;
* anything else: what failed, the exception's type and a reference; never its text, which may
  quote server paths or data.

Every traceback goes to the server's log (:mod:`fusioncore.errorlog`, ``dashboard.log``), never
to the page; Streamlit's own control flow (``st.stop``, ``st.rerun``) passes through.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import streamlit as st

from fusioncore.errorlog import log_exception


@dataclass
class Guarded:
    """What :func:`guard` saw: ``failed`` is True once it has shown a failure."""

    failed: bool = False


def message(err: BaseException, what: str) -> str:
    """The text shown for ``err`` raised while doing ``what`` (module doc)."""
    reference, _ = log_exception(err, "dashboard", what)
    if isinstance(err, ValueError):
        return f"{what}: {err}"
    if isinstance(err, OSError):
        name = Path(err.filename).name if err.filename else "a file"
        reason = "permission denied" if isinstance(err, PermissionError) else (err.strerror or "cannot be read").lower()
        return f"{what}: {name}: {reason} (reference {reference})"
    if isinstance(err, MemoryError):
        return f"{what}: the server ran out of memory; try a smaller input (reference {reference})"
    return (f"{what}: an internal error ({type(err).__name__}) stopped it. Nothing you entered was changed; the "
            f"details are in the server's log under reference {reference} — tell the dashboard's admin")


@contextmanager
def guard(what: str, show: Callable[[str], object] = st.error) -> Iterator[Guarded]:
    """Run the block; show any exception it raises with ``show`` (``st.error``; the sidebar passes
    one that also repeats the message in the main area) and carry on."""
    state = Guarded()
    try:
        yield state
    except Exception as err:  # the boundary: nothing gets past it to Streamlit's error page
        state.failed = True
        show(message(err, what))


def fragment(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``st.fragment`` whose every run is inside :func:`guard` (``what`` failed). Why: a control in
    a fragment reruns only the fragment, so the page's guard in ``dashboard.py`` does not see what
    that rerun raises; without this it reached Streamlit's own error box."""

    def decorate(draw: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(draw)
        def guarded(*args: Any, **kwargs: Any) -> None:
            with guard(what):
                draw(*args, **kwargs)

        return st.fragment(guarded)

    return decorate
