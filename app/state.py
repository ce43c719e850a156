"""Every cached computation of the dashboard (and nothing else); loading models and data is
cached in ``loading.py``.

* a sample explanation once per (model, cohort, sample, presence pattern) (``st.cache_data``);
* cohort predictions and the robustness matrix once per (model, cohort).

The model and the data are passed with a leading underscore (Streamlit does not hash them) and
identified by the string keys before them, so a widget that does not change a key never
recomputes anything.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import streamlit as st

from fusioncore import inspect as fi
from fusioncore.inspect import figures


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
