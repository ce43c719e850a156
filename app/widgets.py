"""Widgets shared by the pages: the page context, kept controls, sample controls, notices,
help texts, errors in the main area, export buttons.

The sidebar (``sidebar.py``, rendered by the entry script) puts a :class:`Context` in
``st.session_state["context"]``; :func:`context` hands it to the pages. Every library error (a
``ValueError``) becomes an ``st.error`` naming what is wrong, never a stack trace.

**Why :func:`control` exists.** A Streamlit page that ends early (``st.stop()``, an exception)
leaves the server holding the values of widgets it did not draw, while the browser forgets
them; when the widget comes back the browser draws its *default* and the server computes with
the *old value* — switches drawn off while the prediction used them on. :func:`control` makes
the value the app computes with the single source of truth: it is kept in a plain session
entry (scoped by the loaded model and data), re-sent to the browser whenever the widget's own
state disagrees, and passed as the widget's default, so what is drawn is what is used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Callable

import streamlit as st

from fusioncore.inspect import ModelSummary, cache
from fusioncore.inspect.figures import COLORSCALES
from fusioncore.inspect.glossary import help_text
from fusioncore.inspect.notices import default_index, split_of, synthetic_notice

import state

NOTICE = "Research use only — not for diagnosis. No usage statistics are sent."
LOAD_ERROR = "_load_error"
_MISSING = object()


@dataclass
class Context:
    """The loaded model and cohort the pages work on."""

    model: Any
    model_key: str
    model_label: str
    checkpoint: str | None
    checkpoint_sha256: str
    summary: ModelSummary
    data: Any
    data_key: str
    split: tuple[str, ...] | None

    @property
    def sample_ids(self) -> list[str]:
        return list(self.data.sample_ids)

    @property
    def scope(self) -> str:
        """Page controls are kept per (model, data) pair (``fusioncore.inspect.cache.scope_key``)."""
        return cache.scope_key(self.model_key, self.data_key)

    @property
    def data_is_demo(self) -> bool:
        return cache.data_source(self.data_key) == cache.DEMO

    def provenance(self, view: str, sample_id: str | None = None, active: list[str] | None = None, **extra) -> dict:
        from fusioncore import viz

        train = self.model.train_config
        return viz.provenance(view=view, method=self.summary.method, checkpoint_sha256=self.checkpoint_sha256,
                              config=self.model.config, seed=getattr(train, "seed", None), sample_id=sample_id,
                              active_modalities=active,
                              extra={"checkpoint": self.checkpoint or self.model_label, "data": self.data.source, **extra})


def notice() -> None:
    st.caption(f":warning: **{NOTICE}**")


# -- controls whose drawn value is the used value ---------------------------------------------


def _commit(widget_key: str, store: str) -> None:
    st.session_state[store] = st.session_state[widget_key]


def _default_argument(widget: Callable, value: Any, options: Any) -> dict:
    """The keyword that sets ``widget``'s own default to ``value``."""
    name = getattr(widget, "__name__", "")
    if name in ("selectbox", "radio"):
        return {"index": list(options).index(value)}
    if name == "multiselect":
        return {"default": value}
    return {"value": value}


def control(widget: Callable, key: str, default: Any, *, scope: str = "", prefix: str = "", **kwargs: Any) -> Any:
    """Draw ``widget`` keyed ``prefix + key`` and return the value it shows (see the module doc).

    ``scope``: controls of one (model, data) pair (``Context.scope``); ``prefix``: the same
    setting drawn on two pages (sample and attention views) as two widgets sharing one value.
    ``default`` is used when nothing is kept yet or the kept value is not among ``options``.
    ``bind="query-params"`` (passed on to the widget) also keeps the value in the page's URL, so
    a reload or a shared link opens with it.
    """
    store = f"_kept:{scope}:{key}"
    options = kwargs.get("options")
    widget_key = prefix + key
    bound = kwargs.get("bind") == "query-params"
    base_default = default
    if bound and store not in st.session_state and widget_key in st.query_params:
        default = _from_url(st.query_params[widget_key], default, options)  # a reloaded page keeps its URL's value
    value = st.session_state.get(store, default)
    if options is not None and value not in list(options):
        value = default
    if st.session_state.get(widget_key, _MISSING) != value:
        st.session_state[widget_key] = value  # the browser redraws what the app will use
    else:  # what it draws if it forgot the widget; a URL-bound widget keeps its true default (the
        # URL drops a parameter equal to it) and is redrawn from the URL instead
        kwargs.update(_default_argument(widget, base_default if bound else value, options))
    result = widget(key=widget_key, on_change=_commit, args=(widget_key, store), **kwargs)
    st.session_state[store] = result
    return result


def tabs(key: str, labels: list[str], *, scope: str = "") -> list:
    """Lazy tabs: only the open tab's content needs to run (``TabContainer.open``). The open
    tab is kept like a :func:`control`, so the tab drawn open is the one whose content is sent."""
    store = f"_kept:{scope}:{key}"
    chosen = st.session_state.get(store, labels[0])
    if chosen not in labels:
        chosen = labels[0]
    if st.session_state.get(key, _MISSING) not in (_MISSING, chosen):
        st.session_state[key] = chosen
    containers = st.tabs(labels, key=key, default=chosen, on_change=_commit, args=(key, store))
    st.session_state[store] = next((label for label, c in zip(labels, containers) if c.open), chosen)
    return containers


def _from_url(text: str, default: Any, options: Any) -> Any:
    """A query-parameter string as a value of the widget's type (options, text, number or flag)."""
    if options is not None:
        return next((o for o in options if str(o) == text), default)
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError:
            return default
    return text


def sticky(widget: Callable, key: str, default: Any, *, prefix: str = "", **kwargs: Any) -> Any:
    """A :func:`control` outside any model/data scope (the sidebar's source choices)."""
    return control(widget, key, default, prefix=prefix, **kwargs)


def preset(ctx: Context, key: str, value: Any) -> None:
    """Set a control of ``ctx`` before it is drawn (e.g. the cohort table opening a sample)."""
    st.session_state[f"_kept:{ctx.scope}:{key}"] = value


def helptip(term: str) -> str:
    """The glossary's one-sentence help of ``term``, for a widget's or heading's ``help=``."""
    return help_text(term)


# -- page frame: context, errors, notices -----------------------------------------------------


def load_error(message: str) -> None:
    """Show a model/data loading error in the sidebar *and* remember it for the main area."""
    st.session_state[LOAD_ERROR] = message
    st.error(message)


def context() -> Context:
    """The context the entry script stored; stops the page with the reason in the main area
    (the loading error, or what to choose) when there is none."""
    ctx = st.session_state.get("context")
    if ctx is None:
        error = st.session_state.get(LOAD_ERROR)
        if error:
            st.error(error)
        else:
            st.info("Choose a model and data in the sidebar.")
        st.stop()
    return ctx


def page_notices(ctx: Context) -> None:
    """The synthetic-demo notice (every page), in the main area."""
    text = synthetic_notice(ctx.summary, ctx.data_is_demo)
    if text:
        st.warning(text, icon=":material/science:")


def image_notice(line: str) -> None:
    """An out-of-distribution warning, visible; the note that the check is unavailable is left to
    the page (it is said once, in the caption under the figure)."""
    from fusioncore.inspect.notices import UNAVAILABLE

    if line == UNAVAILABLE:
        return
    st.warning(line, icon=":material/warning:")


def first_view(data, split) -> tuple[int, tuple[bool, ...]]:
    """The (row index, presence pattern) :func:`sample_controls` draws before anything is chosen:
    the default sample with every modality it has switched on. One function, so the server's
    warm start (``preload.py``) computes exactly the explanation the first page asks for."""
    index = default_index(split)
    return index, tuple(bool(a) for a in data.present[index])


#: The image-map controls' defaults (opacity, colour map, clip percentiles, top-k patches).
HEATMAP_DEFAULTS = {"opacity": 0.5, "colorscale": COLORSCALES[0], "clip": (2.0, 98.0), "top_k": 5}


def heatmap_params(modality: str, opacity: float, colorscale: str, clip, top_k) -> dict:
    """The image-map figure's parameters from its controls (the figure cache is keyed by them)."""
    return {"modality": modality, "opacity": float(opacity), "colorscale": colorscale,
            "clip": tuple(float(c) for c in clip), "top_k": int(top_k)}


def sample_controls(ctx: Context, prefix: str = "") -> tuple[int, tuple[bool, ...]]:
    """The sample selector (with its split), one switch per modality; returns (row index,
    presence pattern). Shared by the sample and attention views: the same value on both."""
    ids = ctx.sample_ids
    default = ids[first_view(ctx.data, ctx.split)[0]]
    names = ctx.summary.modalities
    c_sample, c_switches = st.columns([1, 3], vertical_alignment="bottom")
    sid = control(c_sample.selectbox, "sample", default, scope=ctx.scope, prefix=prefix, label="Sample", options=ids,
                  format_func=lambda s: _sample_label(ctx, ids, s), help=helptip("split"))
    index = ids.index(sid)
    available = ctx.data.present[index]
    pattern = []
    with c_switches:
        st.caption("Modalities used (switch one off to predict without it)", help=helptip("modality switch"))
        for col, name, here in zip(st.columns(len(names)), names, available):
            with col:
                if here:
                    pattern.append(bool(control(st.toggle, f"toggle_{name}", True, scope=ctx.scope, prefix=prefix,
                                                label=name)))
                else:
                    st.toggle(name, value=False, disabled=True, key=f"{prefix}na_{name}", help="not in this sample's data")
                    pattern.append(False)
    return index, tuple(pattern)


def _sample_label(ctx: Context, ids: list[str], sid: str) -> str:
    tag = split_of(ctx.split, ids.index(sid)) if ctx.split is not None else None
    return f"{sid} ({tag})" if tag else sid


def explanation(ctx: Context, index: int, pattern: tuple[bool, ...]):
    """The cached explanation, or None after telling the user why there is none."""
    if not any(pattern):
        st.warning("Every modality is switched off: switch at least one on to get a prediction.")
        return None
    try:
        exp = state.explain(ctx.model_key, ctx.data_key, index, pattern, ctx.model, ctx.data)
    except ValueError as err:
        st.error(str(err))
        return None
    st.session_state[PREFETCH] = (ctx, index, pattern)  # started once the page is drawn (start_prefetch)
    return exp


PREFETCH = "_prefetch_next"


def start_prefetch() -> None:
    """After the page is drawn: compute the explanations one switch click from the one it showed."""
    pending = st.session_state.pop(PREFETCH, None)
    if pending is not None:
        state.prefetch_neighbours(*pending)


# -- export -----------------------------------------------------------------------------------


def sample_figures(ctx: Context, index: int, pattern: tuple[bool, ...], exp) -> Callable[..., None]:
    """``show(view, params=None, export_key="")`` for the figures of one explained sample (the
    sample and attention views), cached under the explanation's key."""
    return functools.partial(show_sample_figure, ctx, cache.explanation_key(ctx.model_key, ctx.data_key, index, pattern), exp)


def show_sample_figure(ctx: Context, key: tuple, exp, view: str, params: dict | None = None,
                       export_key: str = "") -> None:
    """One figure of a sample page (cached per model, cohort, sample, pattern and parameters) with
    its export buttons; a view the model cannot give is an info line, not an error."""
    params = tuple(sorted((params or {}).items()))
    try:
        bundle = state.sample_figure(view, key, params, exp)
    except ValueError as err:
        st.info(str(err))
        return
    element = f"fig_{export_key or view}"
    if view == "heatmap":  # the image map: the same numbers whatever the other modalities' switches
        modality = dict(params)["modality"]
        bundle = reuse_drawn(st.session_state.setdefault(DRAWN, {}), element, (key[:3], params, modality in exp.gates),
                             exp.gates.get(modality), bundle)
    st.plotly_chart(bundle.figure, key=element)
    export_buttons(bundle, ctx, exp.active_modalities, key=export_key or view)


DRAWN = "_drawn_figures"
#: Largest difference between two maps drawn as one figure: float32 noise of two forward passes
#: is ~1e-7; the colours have 256 levels and the hover shows 3 decimals of a map in [0, 1].
SAME_MAP_ATOL = 1e-5


def reuse_drawn(store: dict, element: str, signature: tuple, values, bundle):
    """``bundle`` with the figure already drawn in ``element`` when it shows the same numbers.

    Why: switching a tabular modality leaves the image map the same map, but the new forward pass
    changes its float32 noise, so the figure's JSON differs and Chromium redraws the heatmap
    (about a third of a toggle's browser time, measured). With the same ``signature`` (sample,
    controls, whether the map exists) and ``values`` within :data:`SAME_MAP_ATOL`, the figure
    object already on the page is sent again: identical JSON, which the browser does not redraw.
    The export data, names and provenance stay this ``bundle``'s (this switch state's)."""
    import numpy as np

    drawn = store.get(element)
    if drawn is not None and drawn[0] == signature and _same_values(drawn[1], values):
        return replace(bundle, figure=drawn[2])
    store[element] = (signature, None if values is None else np.array(values, copy=True), bundle.figure)
    return bundle


def _same_values(old, new) -> bool:
    import numpy as np

    if old is None or new is None:
        return old is None and new is None
    new = np.asarray(new)
    return old.shape == new.shape and bool(np.allclose(old, new, rtol=0.0, atol=SAME_MAP_ATOL))


def export_buttons(bundle, ctx: Context, active: list[str] | None = None, key: str = "") -> None:
    """Download buttons for PNG, SVG, PDF, HTML, CSV and the JSON provenance of one figure.

    Files are produced only when a button is clicked (deferred downloads); static formats go
    through the warm kaleido renderer (matplotlib fallback). The file names and the provenance
    name the sample, the explained class, the modalities switched off and every control of the
    figure (``bundle.extra``).

    Why the popover is lazy (its buttons exist only while it is open): a closed popover's
    columns, six buttons and caption were re-sent on every rerun, and the browser re-rendered
    each of them (``benchmarks/bench_browser.py`` counts a click's messages).
    """
    from fusioncore import viz

    panel = st.popover(f"Export {bundle.view}", icon=":material/download:", key=f"export_{key or bundle.view}",
                       on_change="rerun")
    if not panel.open:
        return
    stem = bundle.export_stem(ctx.model_label)
    data = bundle.data

    def make(fmt: str) -> Callable[[], bytes]:
        def render() -> bytes:
            # provenance (package versions, time) is gathered on click, not on every re-render
            prov = ctx.provenance(bundle.view, bundle.sample_id, active, **bundle.provenance_extra())
            return viz.figure_bytes(bundle.titled_figure(), data, prov, stem, [fmt], timeout_s=30).files[fmt]

        return render

    with panel:
        cols = st.columns(3)
        for i, fmt in enumerate(viz.ALL_FORMATS):
            cols[i % 3].download_button(fmt.upper(), make(fmt), file_name=f"{stem}.{fmt}",
                                        mime=viz.export.MIME_TYPES[fmt], key=f"dl_{key or bundle.view}_{fmt}",
                                        on_click="ignore")
        browser = state.browser()
        st.caption(f"`{stem}.*` — static images by a warm kaleido renderer ({browser}; matplotlib fallback)" if browser
                   else f"`{stem}.*` — no Chrome/Chromium found: static images by the matplotlib renderer")
