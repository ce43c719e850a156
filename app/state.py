"""Every cached resource and cached computation of the dashboard (and nothing else).

* models are loaded once per checkpoint (``st.cache_resource``, keyed by folder + content hash);
* cohorts once per source (``st.cache_resource``: big arrays, never copied);
* a sample explanation once per (model, cohort, sample, presence pattern) (``st.cache_data``);
* cohort predictions and the robustness matrix once per (model, cohort).

The model and the data are passed with a leading underscore (Streamlit does not hash them) and
identified by the string keys before them, so a widget that does not change a key never
recomputes anything.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import streamlit as st

import fusioncore as fc
from fusioncore import inspect as fi
from fusioncore.checkpoint import checkpoint_hash
from fusioncore.inspect import figures
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


@st.cache_data(show_spinner=False, max_entries=512)
def explain(model_key: str, data_key: str, index: int, pattern: tuple[bool, ...], _model, _data,
            attention: bool = True) -> fi.SampleExplanation:
    """One sample under one presence pattern. A toggled pattern reuses the sample's cached
    all-present explanation as its reference, so a toggle runs the model on one row."""
    available = tuple(bool(a) for a in _data.present[index])
    effective = tuple(p and a for p, a in zip(pattern, available))
    reference = None
    if effective != available:
        reference = explain(model_key, data_key, index, available, _model, _data, attention).probabilities
    return fi.explain_sample(_model, _data, index, list(pattern), attention=attention, reference=reference)


@st.cache_data(show_spinner=False, max_entries=64)
def attributions(model_key: str, data_key: str, index: int, pattern: tuple[bool, ...], method: str, _model, _data):
    return fi.sample_attributions(_model, _data, index, list(pattern), method=method)


@st.cache_resource(show_spinner=False)
def _long_results() -> OrderedDict:
    """Cohort-wide results kept for the process. Not a cached function: long work reports
    progress to the page, and Streamlit cannot replay element calls made inside a cached one."""
    return OrderedDict()


def _remember(key: tuple, compute: Callable[[], Any], max_entries: int = 8) -> Any:
    store = _long_results()
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = compute()
    store[key] = value
    while len(store) > max_entries:
        store.popitem(last=False)
    return value


def cohort(model_key: str, data_key: str, model, data, split, progress=None) -> fi.CohortResult:
    """Predictions for the whole cohort, once per (model, cohort); ``progress(done, total)``."""
    return _remember(("cohort", model_key, data_key),
                     lambda: fi.run_cohort(model, data, split=split, progress=progress))


def robustness(model_key: str, data_key: str, model, data, progress=None) -> fi.RobustnessResult:
    """The metric for every modality subset, once per (model, cohort)."""
    return _remember(("robustness", model_key, data_key), lambda: fi.subset_robustness(model, data, progress=progress))


# Figures are cache_resource, not cache_data: unpickling a plotly Figure re-validates every
# property (measured: ~130 ms per figure on two cores), more than building it again.
@st.cache_resource(show_spinner=False, max_entries=512)
def sample_figure(view: str, explanation_key: tuple, params: tuple, _explanation) -> figures.FigureBundle:
    """A sample-view figure, rebuilt only when its explanation or its own controls change."""
    return figures.sample_figure(view, _explanation, **dict(params))


@st.cache_resource(show_spinner=False, max_entries=128)
def cohort_figure(view: str, cohort_key: tuple, params: tuple, _result: Any) -> figures.FigureBundle:
    return figures.cohort_figure(view, _result, **dict(params))


@st.cache_resource(show_spinner=False)
def browser() -> str | None:
    """The Chrome/Chromium kaleido will use (looked up once per process)."""
    from fusioncore import viz

    return viz.find_browser()
