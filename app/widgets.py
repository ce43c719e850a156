"""Widgets shared by the pages: the model/data sidebar, sticky selections, export buttons, notice.

The sidebar is rendered by the entry script (``main.py``) because Streamlit keeps a widget's
state across pages only for widgets of the entry script. Its result, a :class:`Context`, is put
in ``st.session_state["context"]`` for the pages; every library error (a ``ValueError``) becomes
an ``st.error`` naming what is wrong, never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from fusioncore import viz
from fusioncore.inspect import ModelSummary, demo_assets, model_summary
from fusioncore.inspect.figures import FigureBundle

import state

NOTICE = "Research use only — not for diagnosis. No usage statistics are sent."
MODEL_SOURCES = ("Bundled demo", "Checkpoint folder", "Upload checkpoint (.zip)")
DATA_SOURCES = ("Bundled demo cohort", "Dataset folder", "Upload samples")
UPLOAD_TYPES = ["csv", "tsv", "png", "jpg", "jpeg", "tif", "tiff"]


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


def _model_from_sidebar() -> tuple[Any, str, str, str | None, str] | None:
    source = sticky(st.radio, "model_source", MODEL_SOURCES[0], label="Model", options=MODEL_SOURCES)
    if source == MODEL_SOURCES[0]:
        assets = demo_assets()
        if not assets.available:
            st.error(f"The bundled demo checkpoints are missing in {assets.folder}. "
                     "Build them with `python scripts/build_assets.py`, or load a checkpoint folder or .zip.")
            return None
        names = list(assets.checkpoints)
        name = sticky(st.selectbox, "demo_model", names[0], label="Demo model", options=names, format_func=assets.label)
        path = str(assets.checkpoints[name])
        digest = state.checkpoint_key(path)
        return state.load_model(path, digest), f"{path}:{digest}", name, path, digest
    if source == MODEL_SOURCES[1]:
        path = sticky(st.text_input, "model_path", "", label="Checkpoint folder",
                      placeholder="/path/to/checkpoint (config.json + model.safetensors)").strip()
        if not path:
            st.info("Enter the path of a checkpoint folder.")
            return None
        from fusioncore.checkpoint import read_config

        read_config(path)  # a clear error before hashing a folder that is not a checkpoint
        digest = state.checkpoint_key(path)
        return state.load_model(str(Path(path).resolve()), digest), f"{path}:{digest}", Path(path).name, path, digest
    upload = st.file_uploader("Checkpoint .zip", type=["zip"], key="model_zip",
                              help="A zipped checkpoint folder: config.json + model.safetensors")
    if upload is None:
        st.info("Upload a .zip of a checkpoint folder.")
        return None
    payload = upload.getvalue()
    digest = state.sha256(payload)
    model = state.load_uploaded_model(digest, upload.name, payload)
    return model, f"upload:{digest}", upload.name, None, digest


def _data_from_sidebar(model, model_key: str) -> tuple[Any, str, tuple[str, ...] | None] | None:
    source = sticky(st.radio, "data_source", DATA_SOURCES[0], label="Data", options=DATA_SOURCES)
    if source == DATA_SOURCES[0]:
        data, split = state.load_demo_data()
        return data, "demo", split
    if source == DATA_SOURCES[1]:
        spec = sticky(st.text_input, "data_path", "", label="Dataset folder or spec",
                      placeholder="/path/to/tables or mogonet:/path/to/ROSMAP").strip()
        if not spec:
            st.info("Enter a dataset folder (one CSV per modality + labels.csv) or a spec like mogonet:DIR.")
            return None
        version = state.data_version(spec)
        data, split = state.load_folder_data(spec, version)
        return data, f"folder:{spec}@{version}", split
    files = st.file_uploader("Samples", type=UPLOAD_TYPES, accept_multiple_files=True, key="data_files",
                             help="One CSV per tabular modality (file name = modality, first column = sample id), "
                                  "images named <sample id>.png, optional labels.csv")
    if not files:
        st.info("Upload one CSV per tabular modality (keyed by sample id) and/or PNG/JPEG/TIFF images.")
        return None
    items = tuple((f.name, f.getvalue()) for f in files)
    digest = state.sha256(b"".join(n.encode() + b"\0" + p for n, p in items))
    data = state.load_uploaded_data(digest, model_key, model.schema, items)
    return data, f"upload:{digest}", None


def sidebar() -> Context | None:
    """Render the sidebar; return the context, or None (with the reason shown) when incomplete."""
    with st.sidebar:
        st.header("Model")
        try:
            loaded = _model_from_sidebar()
        except ValueError as err:
            st.error(f"Cannot load the model: {err}")
            return None
        if loaded is None:
            return None
        model, model_key, label, checkpoint, digest = loaded
        summary = model_summary(model)
        st.markdown("\n".join(f"- **{k}**: {v}" for k, v in summary.rows()))
        st.header("Data")
        try:
            got = _data_from_sidebar(model, model_key)
            if got is None:
                return None
            data, data_key, split = got
            data = state.aligned(model_key, data_key, model, data)
        except ValueError as err:
            st.error(f"Cannot use this data with the model: {err}")
            return None
        st.caption(f"{data.source}: {len(data)} samples")
        for note in data.notes:
            st.caption(f"note: {note}")
    return Context(model, model_key, label, checkpoint, digest, summary, data, data_key, split)


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
