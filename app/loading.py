"""Every cached load of a model or a cohort for the dashboard (and nothing else).

* models are loaded once per checkpoint (``st.cache_resource``, keyed by folder + the size and
  modification time of its two files, or by the upload's content hash);
* cohorts once per source (``st.cache_resource``: big arrays, never copied), keyed by a cheap
  version of the folder (:func:`fusioncore.inspect.folders.dataset_version`, no tree walk);
* a cohort in a model's schema once per (model, cohort).

Failures are cached too: each load returns an :class:`Outcome` holding the result or the
exception, so a bad upload (a zip bomb, a config naming a 40 GB model) is processed once,
logged once, and shown again on every rerun without being touched again.

The model and the data are passed with a leading underscore (Streamlit does not hash them) and
identified by the string keys before them. Uploads are written only to the session's private
folder (:func:`session_folder`, 0700), removed when the session ends.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from fusioncore.access import AccessPolicy, access_policy
from fusioncore.checkpoint import CONFIG_FILE, WEIGHTS_FILE, checkpoint_hash, load
from fusioncore.errorlog import log_exception
from fusioncore.inspect.folders import DatasetSource
from fusioncore.inspect.sources import demo_cohort, load_resolved
from fusioncore.inspect.uploads import load_checkpoint_zip, read_uploaded_samples


@dataclass(frozen=True)
class Outcome:
    """A cached load: its value, or the exception it raised (logged once, traceback dropped)."""

    value: Any = None
    error: Exception | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error.with_traceback(None)  # a fresh traceback each rerun: nothing accumulates
        return self.value


def attempt(what: str, fn: Callable[..., Any], *args: Any) -> Outcome:
    """``fn(*args)`` as an :class:`Outcome`; a failure's traceback goes to the log now, and its
    frames (which hold the upload's bytes) are released."""
    try:
        return Outcome(fn(*args))
    except Exception as err:
        log_exception(err, "dashboard", what)
        cause, seen = err, set()
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            cause.__traceback__ = None
            cause = cause.__cause__ or cause.__context__
        return Outcome(error=err)


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def policy() -> AccessPolicy:
    """Which server paths this dashboard may read, for the address it listens on (a dashboard
    with a login is used by several people, so never "local")."""
    from login import login_configured

    return access_policy(st.get_option("server.address"), multi_user=login_configured())


class SessionFolder:
    """A private temporary folder (0700) for one browser session's uploads.

    Removed when Streamlit releases the session's cache (the session disconnected), and at
    the latest when the server process exits.
    """

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="fusioncore-session-"))
        self._remove = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def remove(self) -> None:
        self._remove()


@st.cache_resource(scope="session", on_release=SessionFolder.remove, show_spinner=False)
def session_folder() -> SessionFolder:
    return SessionFolder()


def checkpoint_key(path: str | Path) -> str:
    """Size and modification time of a checkpoint folder's two files (no file is read)."""
    parts = []
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            st_ = (Path(path) / name).stat()
            parts.append(f"{st_.st_size}:{st_.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return "/".join(parts)


def _load_folder(path: str) -> tuple[Any, str]:
    model = load(path, device="auto")
    return model, checkpoint_hash(path)


@st.cache_resource(show_spinner="Loading model …", max_entries=8)
def load_model(path: str, key: str) -> Outcome:
    """A checkpoint folder and its SHA-256, on the best device (GPU when available), loaded once."""
    return attempt(f"loading checkpoint folder {path}", _load_folder, path)


@st.cache_resource(show_spinner="Loading uploaded checkpoint …", max_entries=8)
def load_uploaded_model(digest: str, name: str, _payload: bytes, _workdir: Path) -> Outcome:
    return attempt(f"loading uploaded checkpoint {name} ({digest[:12]})", _load_zip, _payload, _workdir, name)


def _load_zip(payload: bytes, workdir: Path, name: str):
    return load_checkpoint_zip(payload, workdir, archive_name=name, device="auto")


@st.cache_resource(show_spinner="Loading the demo cohort …", max_entries=2)
def load_demo_data(folder: str):
    """The demo cohort of the assets folder ``folder`` (keyed by it: ``$FUSIONCORE_ASSETS`` can
    name another folder in the same process, e.g. across tests)."""
    return demo_cohort(folder)


@st.cache_resource(show_spinner="Loading dataset …", max_entries=8)
def load_folder_data(typed: str, spec: str, version: str, _source: DatasetSource) -> Outcome:
    """A resolved dataset folder; keyed by the spec as typed too, because its messages and
    ``source`` name the folder as typed."""
    return attempt(f"loading dataset {spec}", load_resolved, _source)


@st.cache_resource(show_spinner="Reading uploaded samples …", max_entries=8)
def load_uploaded_data(digest: str, model_key: str, _schema, _files: tuple[tuple[str, bytes], ...],
                       _workdir: Path) -> Outcome:
    return attempt(f"reading uploaded samples ({digest[:12]})", _read_uploads, _schema, _files, _workdir)


def _read_uploads(schema, files, workdir: Path):
    return read_uploaded_samples(schema, list(files))  # read from memory: ``workdir`` stays empty


@st.cache_resource(show_spinner=False, max_entries=16)
def aligned(model_key: str, data_key: str, _model, _data) -> Outcome:
    """The cohort in the model's schema (a DataError when they share no modality)."""
    from fusioncore.inspect.session import ensure_aligned

    return attempt("aligning the data to the model", ensure_aligned, _model, _data)
