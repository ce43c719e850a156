"""Widgets shared by the pages: the page context, sticky selections, sample controls, export buttons, notice.

The sidebar (``sidebar.py``, rendered by the entry script) puts a :class:`Context` in
``st.session_state["context"]``; :func:`context` hands it to the pages. Every library error (a
``ValueError``) becomes an ``st.error`` naming what is wrong, never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st

from fusioncore import viz
from fusioncore.inspect import ModelSummary
from fusioncore.inspect.figures import FigureBundle

import state

NOTICE = "Research use only — not for diagnosis. No usage statistics are sent."


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

    def provenance(self, view: str, sample_id: str | None = None, active: list[str] | None = None, **extra) -> dict:
        train = getattr(self.model, "train_config", None)
        return viz.provenance(view=view, method=self.summary.method, checkpoint_sha256=self.checkpoint_sha256,
                              config=self.model.config, seed=getattr(train, "seed", None), sample_id=sample_id,
                              active_modalities=active,
                              extra={"checkpoint": self.checkpoint or self.model_label, "data": self.data.source, **extra})


def notice() -> None:
    st.caption(f":warning: **{NOTICE}**")


def sticky(widget: Callable, key: str, default: Any, *, prefix: str = "", **kwargs: Any) -> Any:
    """A widget whose value survives page switches (Streamlit drops state of unrendered widgets).

    The value is stored under ``key``; the widget itself is keyed ``prefix + key``, so the same
    setting shown on two pages (the sample and attention views) uses distinct widgets that share
    one stored value.
    """
    store = f"_sticky_{key}"
    key = prefix + key
    options = kwargs.get("options")
    value = st.session_state.get(key, st.session_state.get(store, default))
    if options is not None and value not in list(options):
        st.session_state.pop(key, None)
        value = default
    if key not in st.session_state:
        st.session_state[key] = value
    value = widget(key=key, **kwargs)
    st.session_state[store] = value
    return value


def set_sticky(key: str, value: Any, prefixes: tuple[str, ...] = ("", "att_")) -> None:
    """Preset a sticky setting (e.g. the cohort table opening a sample) before it is rendered."""
    st.session_state[f"_sticky_{key}"] = value
    for prefix in prefixes:
        st.session_state.pop(prefix + key, None)


def context() -> Context:
    """The context the entry script stored; stops the page (with a message) when there is none."""
    ctx = st.session_state.get("context")
    if ctx is None:
        st.info("Choose a model and data in the sidebar.")
        st.stop()
    return ctx


def export_buttons(bundle: FigureBundle, ctx: Context, active: list[str] | None = None, key: str = "") -> None:
    """Download buttons for PNG, SVG, PDF, HTML, CSV and the JSON provenance of one figure.

    Files are produced only when a button is clicked (deferred downloads), so a re-render costs
    nothing; static formats go through kaleido with a timeout and fall back to matplotlib.
    """
    sid = bundle.sample_id
    stem = viz.make_export_stem(bundle.view, ctx.model_label, sid)
    fig, data = bundle.figure, bundle.data

    def make(fmt: str) -> Callable[[], bytes]:
        def render() -> bytes:
            # provenance (package versions, time) is gathered on click, not on every re-render
            prov = ctx.provenance(bundle.view, sid, active, **(bundle.extra or {}))
            return viz.figure_bytes(fig, data, prov, stem, [fmt], timeout_s=30).files[fmt]

        return render

    with st.expander(f"Export {bundle.view}"):
        cols = st.columns(6)
        for col, fmt in zip(cols, viz.ALL_FORMATS):
            col.download_button(fmt.upper(), make(fmt), file_name=f"{stem}.{fmt}", mime=viz.export.MIME_TYPES[fmt],
                                key=f"dl_{key or bundle.view}_{fmt}", on_click="ignore")
        browser = state.browser()
        st.caption(f"Static images: kaleido with {browser} (30 s timeout; matplotlib fallback if it fails)" if browser
                   else "Static images: no Chrome/Chromium found, drawn by the browser-free matplotlib renderer")


def sample_controls(ctx: Context, prefix: str = "") -> tuple[int, tuple[bool, ...]]:
    """The sample selector and one present/absent toggle per modality (shared by the sample and
    attention views, sticky across pages); returns (row index, presence pattern)."""
    ids = ctx.sample_ids
    stored = st.session_state.get("_sticky_sample")
    default = stored if stored in ids else ids[0]
    sid = sticky(st.selectbox, "sample", default, prefix=prefix, label="Sample", options=ids)
    index = ids.index(sid)
    available = ctx.data.present[index]
    names = ctx.summary.modalities
    st.write("Modalities (switch one off to see the prediction without it):")
    cols = st.columns(len(names))
    pattern = []
    for col, name, here in zip(cols, names, available):
        with col:
            if here:
                pattern.append(bool(sticky(st.toggle, f"toggle_{name}", True, prefix=prefix, label=name)))
            else:
                st.toggle(name, value=False, disabled=True, key=f"{prefix}na_{name}", help="not in this sample's data")
                pattern.append(False)
    return index, tuple(pattern)


def explanation(ctx: Context, index: int, pattern: tuple[bool, ...]):
    """The cached explanation, or None after telling the user why there is none."""
    if not any(pattern):
        st.warning("Every modality is switched off: switch at least one on to get a prediction.")
        return None
    try:
        return state.explain(ctx.model_key, ctx.data_key, index, pattern, ctx.model, ctx.data)
    except ValueError as err:
        st.error(str(err))
        return None
