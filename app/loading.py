"""Every cached load of a model or a cohort for the dashboard (and nothing else).

* models are loaded once per checkpoint (``st.cache_resource``, keyed by folder + content hash);
* cohorts once per source (``st.cache_resource``: big arrays, never copied);
* a cohort in a model's schema once per (model, cohort).

The model and the data are passed with a leading underscore (Streamlit does not hash them) and
identified by the string keys before them.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

import fusioncore as fc
from fusioncore import inspect as fi
from fusioncore.checkpoint import checkpoint_hash
from fusioncore.inspect.sources import demo_cohort
from fusioncore.inspect.uploads import load_checkpoint_zip, read_uploaded_samples

UPLOAD_ROOT = Path(tempfile.gettempdir()) / "fusioncore-dashboard"


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@st.cache_data(show_spinner=False, max_entries=32)
def folder_hash(path: str, mtime_ns: int) -> str:
    """Content hash of a checkpoint folder (re-hashed when its weights change on disk)."""
    return checkpoint_hash(path)


def checkpoint_key(path: str | Path) -> str:
    p = Path(path)
    mtime = max((f.stat().st_mtime_ns for f in (p / "model.safetensors", p / "config.json") if f.is_file()), default=0)
    return folder_hash(str(p.resolve()), mtime)


def data_version(spec: str) -> int:
    """Newest modification time under a dataset folder, so edited files are read again."""
    path = Path(spec.partition(":")[2] if ":" in spec and not Path(spec).exists() else spec)
    if not path.exists():
        return 0
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return max((f.stat().st_mtime_ns for f in files), default=0)


@st.cache_resource(show_spinner="Loading model …", max_entries=8)
def load_model(path: str, digest: str):
    """A checkpoint folder on the best device (GPU when available), loaded once."""
    return fc.load(path, device="auto")


@st.cache_resource(show_spinner="Loading uploaded checkpoint …", max_entries=4)
def load_uploaded_model(digest: str, name: str, _payload: bytes):
    folder = UPLOAD_ROOT / "checkpoints" / digest
    return load_checkpoint_zip(_payload, folder, archive_name=name, device="auto")


@st.cache_resource(show_spinner="Loading the demo cohort …", max_entries=1)
def load_demo_data():
    return demo_cohort()


@st.cache_resource(show_spinner="Loading dataset …", max_entries=4)
def load_folder_data(spec: str, version: int):
    return fi.load_cohort(spec)


@st.cache_resource(show_spinner="Reading uploaded samples …", max_entries=8)
def load_uploaded_data(digest: str, model_key: str, _schema, _files: tuple[tuple[str, bytes], ...]):
    return read_uploaded_samples(_schema, list(_files))


@st.cache_resource(show_spinner=False, max_entries=16)
def aligned(model_key: str, data_key: str, _model, _data):
    """The cohort in the model's schema (raises DataError when they share no modality)."""
    from fusioncore.inspect.session import ensure_aligned

    return ensure_aligned(_model, _data)
