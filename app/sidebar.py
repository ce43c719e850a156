"""The sidebar: which model and which data the pages work on.

Rendered by the entry script (``main.py``) because Streamlit keeps a widget's state across pages
only for widgets of the entry script. Its result, a :class:`~widgets.Context`, goes into
``st.session_state["context"]``; every library error (a ``ValueError``) becomes an ``st.error``
naming what is wrong, never a stack trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from fusioncore.inspect import demo_assets, model_summary

import loading
from widgets import Context, load_error, sticky

MODEL_SOURCES = ("Bundled demo", "Checkpoint folder", "Upload checkpoint (.zip)")
DATA_SOURCES = ("Bundled demo cohort", "Dataset folder", "Upload samples")
UPLOAD_TYPES = ["csv", "tsv", "png", "jpg", "jpeg", "tif", "tiff"]


def _model_from_sidebar() -> tuple[Any, str, str, str | None, str] | None:
    source = sticky(st.radio, "model_source", MODEL_SOURCES[0], label="Model", options=MODEL_SOURCES)
    if source == MODEL_SOURCES[0]:
        assets = demo_assets()
        if not assets.available:
            load_error(f"The bundled demo checkpoints are missing in {assets.folder}. "
                       "Build them with `python scripts/build_assets.py`, or load a checkpoint folder or .zip.")
            return None
        names = list(assets.checkpoints)
        name = sticky(st.selectbox, "demo_model", names[0], label="Demo model", options=names, format_func=assets.label)
        path = str(assets.checkpoints[name])
        digest = loading.checkpoint_key(path)
        return loading.load_model(path, digest), f"{path}:{digest}", name, path, digest
    if source == MODEL_SOURCES[1]:
        path = sticky(st.text_input, "model_path", "", label="Checkpoint folder",
                      placeholder="/path/to/checkpoint (config.json + model.safetensors)").strip()
        if not path:
            st.info("Enter the path of a checkpoint folder.")
            return None
        from fusioncore.checkpoint import read_config

        read_config(path)  # a clear error before hashing a folder that is not a checkpoint
        digest = loading.checkpoint_key(path)
        return loading.load_model(str(Path(path).resolve()), digest), f"{path}:{digest}", Path(path).name, path, digest
    upload = st.file_uploader("Checkpoint .zip", type=["zip"], key="model_zip",
                              help="A zipped checkpoint folder: config.json + model.safetensors")
    if upload is None:
        st.info("Upload a .zip of a checkpoint folder.")
        return None
    payload = upload.getvalue()
    digest = loading.sha256(payload)
    model = loading.load_uploaded_model(digest, upload.name, payload)
    return model, f"upload:{digest}", upload.name, None, digest


def _data_from_sidebar(model, model_key: str) -> tuple[Any, str, tuple[str, ...] | None] | None:
    source = sticky(st.radio, "data_source", DATA_SOURCES[0], label="Data", options=DATA_SOURCES)
    if source == DATA_SOURCES[0]:
        data, split = loading.load_demo_data()
        return data, "demo", split
    if source == DATA_SOURCES[1]:
        spec = sticky(st.text_input, "data_path", "", label="Dataset folder or spec",
                      placeholder="/path/to/tables or mogonet:/path/to/ROSMAP").strip()
        if not spec:
            st.info("Enter a dataset folder (one CSV per modality + labels.csv) or a spec like mogonet:DIR.")
            return None
        version = loading.data_version(spec)
        data, split = loading.load_folder_data(spec, version)
        return data, f"folder:{spec}@{version}", split
    files = st.file_uploader("Samples", type=UPLOAD_TYPES, accept_multiple_files=True, key="data_files",
                             help="One CSV per tabular modality (file name = modality, first column = sample id), "
                                  "images named <sample id>.png, optional labels.csv")
    if not files:
        st.info("Upload one CSV per tabular modality (keyed by sample id) and/or PNG/JPEG/TIFF images.")
        return None
    items = tuple((f.name, f.getvalue()) for f in files)
    digest = loading.sha256(b"".join(n.encode() + b"\0" + p for n, p in items))
    data = loading.load_uploaded_data(digest, model_key, model.schema, items)
    return data, f"upload:{digest}", None


def sidebar() -> Context | None:
    """Render the sidebar; return the context, or None (with the reason shown) when incomplete."""
    with st.sidebar:
        st.header("Model")
        try:
            loaded = _model_from_sidebar()
        except ValueError as err:
            load_error(f"Cannot load the model: {err}")
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
            data = loading.aligned(model_key, data_key, model, data)
        except ValueError as err:
            load_error(f"Cannot use this data with the model: {err}")
            return None
        st.caption(f"{data.source}: {len(data)} samples")
        for note in data.notes:
            st.caption(f"note: {note}")
    return Context(model, model_key, label, checkpoint, digest, summary, data, data_key, split)
