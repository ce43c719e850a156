"""Every cached computation of the dashboard (and nothing else); loading models and data is
cached in ``loading.py``.

* a sample explanation once per (model, cohort, sample, presence pattern) (``st.cache_data``);
* captum attributions once per (model, cohort, sample, pattern, method);
* cohort predictions and the robustness matrix once per (model, cohort);
* the out-of-distribution check of a sample's image once per (model, cohort, sample, modality).

The model and the data are passed with a leading underscore (Streamlit does not hash them) and
identified by the string keys before them, so a widget that does not change a key never
recomputes anything.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import streamlit as st

from fusioncore import inspect as fi
from fusioncore.inspect import cache, figures


@st.cache_data(show_spinner=False, max_entries=512)
def explain(model_key: str, data_key: str, index: int, pattern: tuple[bool, ...], _model, _data,
            attention: bool = True) -> fi.SampleExplanation:
    """One sample under one presence pattern (``fusioncore.inspect.reference_pattern`` says which
    cached explanation gives its all-present reference)."""
    full = fi.reference_pattern(_data.present[index], pattern)
    reference = None if full is None else explain(model_key, data_key, index, full, _model, _data, attention).probabilities
    return fi.explain_sample(_model, _data, index, list(pattern), attention=attention, reference=reference)


#: ``0`` turns the prefetch off (the test suite does, so that what an ``AppTest`` finds cached
#: depends only on what it ran; the browser tests' servers keep it on).
PREFETCH_ENV = "FUSIONCORE_PREFETCH"
_PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusioncore-prefetch")
_PREFETCHED: OrderedDict = OrderedDict()  # keys already submitted (bounded, oldest dropped)
_PREFETCH_LOCK = threading.Lock()


def prefetch_neighbours(ctx, index: int, pattern: tuple[bool, ...]) -> list[tuple[bool, ...]]:
    """Compute, in one background worker, the explanations one switch click away, into the same
    cache :func:`explain` reads; returns the patterns submitted.

    Why: the first visit of a presence pattern runs the model (most of a toggle's wait on an image
    model), and the next click is almost always one switch. Called after the page is drawn; the
    worker is single so it never takes both cores for long, and Streamlit's per-key compute lock
    makes a click that arrives mid-computation wait for that result instead of computing it again.
    Only under a Streamlit runtime (without one, the cache would not be the page's).
    """
    if os.environ.get(PREFETCH_ENV, "1") == "0" or not st.runtime.exists():
        return []
    submitted = []
    available = tuple(bool(a) for a in ctx.data.present[index])
    for neighbour in fi.one_click_away(available, pattern):
        key = fi.explanation_key(ctx.model_key, ctx.data_key, index, neighbour)
        with _PREFETCH_LOCK:
            if key in _PREFETCHED:
                continue
            _PREFETCHED[key] = True
            while len(_PREFETCHED) > 2048:
                _PREFETCHED.popitem(last=False)
        _PREFETCH.submit(_prefetch_one, key, ctx.model, ctx.data)
        submitted.append(neighbour)
    return submitted


def _prefetch_one(key: tuple, model, data) -> bool:
    """One explanation into :func:`explain`'s cache; whether it was computed. Checked again in the
    worker: a thread of ``AppTest`` sees no runtime, and its cache would not be the page's. A
    prefetch never reports: the page shows any error when the user asks for that pattern."""
    if not st.runtime.exists():
        return False
    try:
        explain(*key, model, data)
    except Exception:  # noqa: BLE001 -- the same call from the page raises it again, to the user
        return False
    return True


@st.cache_data(show_spinner=False, max_entries=64)
def _attributions(model_key: str, data_key: str, index: int, pattern: tuple[bool, ...], method: str, _model, _data):
    return fi.sample_attributions(_model, _data, index, list(pattern), method=method)


def attributions(model_key: str, data_key: str, index: int, pattern: tuple[bool, ...], method: str, model, data):
    """Captum attributions of one sample, once per (model, cohort, sample, pattern, method); the
    session remembers which were computed, so the page shows them again without a new click."""
    result = _attributions(model_key, data_key, index, pattern, method, model, data)
    st.session_state.setdefault("_attributions_done", set()).add(fi.attributions_key(model_key, data_key, index, pattern, method))
    return result


def has_attributions(ctx, index: int, pattern: tuple[bool, ...], method: str) -> bool:
    key = fi.attributions_key(ctx.model_key, ctx.data_key, index, pattern, method)
    return key in st.session_state.get("_attributions_done", set())


UPLOADED_FILES = "data_files"  # the sidebar's sample uploader (its widget key)


@st.cache_resource(show_spinner=False, max_entries=16)
def _upload_checks(model_key: str, data_key: str, _model, _files, _sample_ids) -> dict:
    from fusioncore.inspect.notices import uploaded_image_checks

    return uploaded_image_checks(_model, _files, _sample_ids)


@st.cache_resource(show_spinner=False, max_entries=256)
def _input_check(model_key: str, data_key: str, index: int, modality: str, _model, _image):
    from fusioncore.inspect.notices import check_model_input

    return check_model_input(_model, modality, _image)


def upload_warnings(ctx, sample_id: str, modality: str) -> list[str]:
    """Out-of-distribution sentences for one sample's image: from the uploaded file itself
    (size, aspect, colours) for uploaded samples, from the model input otherwise (colours)."""
    from fusioncore.inspect.notices import check_lines

    check = None
    files = st.session_state.get(UPLOADED_FILES) if cache.data_source(ctx.data_key) == cache.UPLOAD else None
    if files:
        items = tuple((f.name, f.getvalue()) for f in files)
        try:
            check = _upload_checks(ctx.model_key, ctx.data_key, ctx.model, items, tuple(ctx.sample_ids)).get((sample_id, modality))
        except ValueError as err:
            return [f"The out-of-distribution check could not read the upload: {err}"]
    if check is None:
        index = ctx.sample_ids.index(sample_id)
        check = _input_check(ctx.model_key, ctx.data_key, index, modality, ctx.model, ctx.data.features[modality][index])
    return check_lines(check)


@st.cache_resource(show_spinner=False)
def _long_results() -> fi.ResultCache:
    """Cohort-wide results kept for the process and shared by its sessions (a thread-safe store).
    Not a cached function: long work reports progress to the page, and Streamlit cannot replay
    element calls made inside a cached one."""
    return fi.ResultCache(max_entries=8)


def cohort(model_key: str, data_key: str, model, data, split, progress=None) -> fi.CohortResult:
    """Predictions for the whole cohort, once per (model, cohort); ``progress(done, total)``."""
    return _long_results().get_or_compute(fi.cohort_key("cohort", model_key, data_key),
                                          lambda: fi.run_cohort(model, data, split=split, progress=progress))


def robustness(model_key: str, data_key: str, model, data, progress=None) -> fi.RobustnessResult:
    """The metric for every modality subset, once per (model, cohort)."""
    return _long_results().get_or_compute(fi.cohort_key("robustness", model_key, data_key),
                                          lambda: fi.subset_robustness(model, data, progress=progress))


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


# -- trust checks (app/trust_panel.py): long work with a progress bar, in stores of their own so
# that many checked samples never evict a cohort, nor a checked cohort the samples.
@st.cache_resource(show_spinner=False)
def _trust_results() -> dict[str, fi.ResultCache]:
    return {"trust-sample": fi.ResultCache(max_entries=64), "trust-cohort": fi.ResultCache(max_entries=8)}


def has_trust(key: tuple) -> bool:
    """Whether a trust result is cached (the panel shows it without a button press)."""
    return key in _trust_results()[key[0]]


def sample_trust(key: tuple, model, data, truth, progress=None):
    """The trust checks of one sample under one presence pattern, once per (model, sample, pattern)."""
    from fusioncore.explain.trust_assess import SAMPLE_SETTINGS, assess_sample

    _, _, _, index, pattern, attribution = key
    settings = replace(SAMPLE_SETTINGS, attribution=attribution)
    return _trust_results()[key[0]].get_or_compute(
        key, lambda: assess_sample(model, data, index, pattern, truth=truth, settings=settings, progress=progress))


def cohort_trust(key: tuple, model, data, truth, progress=None):
    """The trust checks of the cohort's first ``n_samples`` samples, once per (model, cohort, n)."""
    from fusioncore.explain.trust_assess import assess_trust

    n = key[-1]
    rows = list(range(min(n, len(data))))
    masks = None if truth is None else {k: v[rows] for k, v in truth.items()}
    return _trust_results()[key[0]].get_or_compute(
        key, lambda: assess_trust(model, data.subset(rows), reference=data, truth=masks, progress=progress))


@st.cache_resource(show_spinner=False, max_entries=16)
def planted_truth(data_key: str, _data):
    """The demo cohort's planted truth for these samples (None for other data), once per cohort."""
    from fusioncore.explain.trust_assess import demo_planted_truth

    return demo_planted_truth(_data)
