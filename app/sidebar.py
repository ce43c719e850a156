"""The sidebar: which model and which data the pages work on.

Rendered by the entry script (``dashboard.py``) because Streamlit keeps a widget's state across pages
only for widgets of the entry script. Its result, a :class:`~widgets.Context`, goes into
``st.session_state["context"]``. Each section runs inside the exception boundary
(:func:`boundary.guard`), so any failure becomes an ``st.error`` naming what is wrong, never a
stack trace.

Server paths ("Checkpoint folder", "Dataset folder") go through the access policy
(:mod:`fusioncore.access`): resolved and checked against the allowed roots before anything is
opened, and not offered at all on a shared dashboard without allowed roots. Messages name a
folder as the user typed it, never where its links lead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from fusioncore.access import AccessPolicy
from fusioncore.data.checks import data_warnings
from fusioncore.inspect import cache, demo_assets, model_summary
from fusioncore.inspect.folders import dataset_version, resolve_dataset

import loading
from boundary import guard
from widgets import Context, load_error, sticky

MODEL_SOURCES = ("Bundled demo", "Checkpoint folder", "Upload checkpoint (.zip)")
DATA_SOURCES = ("Bundled demo cohort", "Dataset folder", "Upload samples")
UPLOAD_TYPES = ["csv", "tsv", "png", "jpg", "jpeg", "tif", "tiff"]
SERVER_SOURCES = (MODEL_SOURCES[1], DATA_SOURCES[1])
#: The sources, the demo model and the typed paths live in the page URL, so a reload keeps them
#: (uploads cannot: the browser sends their bytes only once).
URL = "query-params"


def _offered(sources: tuple[str, ...], policy: AccessPolicy) -> list[str]:
    """The sources this dashboard offers: no server paths in shared mode (said under the radio)."""
    return [s for s in sources if policy.server_paths_enabled or s not in SERVER_SOURCES]


def _as_typed(outcome: loading.Outcome, resolved: Path, typed: str) -> Any:
    """The outcome's value; its error re-worded with the folder as typed (a new exception: the
    cached one is shared by every session)."""
    try:
        return outcome.unwrap()
    except ValueError as err:
        reworded = str(err).replace(str(resolved), typed.rstrip("/") or typed)
        try:
            raise type(err)(reworded) from None
        except TypeError:  # an error class with another signature
            raise ValueError(reworded) from None


def _demo_model() -> tuple[Any, str, str, str | None, str] | None:
    assets = demo_assets()
    if not assets.available:
        load_error("The bundled demo checkpoints are missing. Build them with `python scripts/build_assets.py`, "
                 "or load a checkpoint folder or .zip.")
        return None
    names = list(assets.checkpoints)
    name = sticky(st.selectbox, "demo_model", names[0], bind=URL, label="Demo model", options=names, format_func=assets.label)
    path = assets.checkpoints[name]
    model, digest = loading.load_model(str(path), loading.checkpoint_key(path)).unwrap()
    return model, cache.checkpoint_model_key(path, digest), name, str(path), digest


def _model_from_sidebar(policy: AccessPolicy) -> tuple[Any, str, str, str | None, str] | None:
    options = _offered(MODEL_SOURCES, policy)
    source = sticky(st.radio, "model_source", options[0], bind=URL, label="Model", options=options)
    if policy.mode != "local":
        st.caption(policy.describe())
    if source == MODEL_SOURCES[0]:
        return _demo_model()
    if source == MODEL_SOURCES[1]:
        typed = _server_path("model_path", "Checkpoint folder", "/path/to/checkpoint (config.json + model.safetensors)",
                             "Enter the path of a checkpoint folder.", policy)
        if not typed:
            return None
        path = policy.resolve(typed, "checkpoint")
        model, digest = _as_typed(loading.load_model(str(path), loading.checkpoint_key(path)), path, typed)
        return model, cache.checkpoint_model_key(path, digest), Path(typed).name, typed, digest
    upload = st.file_uploader("Checkpoint .zip", type=["zip"], key="model_zip",
                              help="A zipped checkpoint folder: config.json + model.safetensors (nothing else is read)")
    if upload is None:
        st.info("Upload a .zip of a checkpoint folder.")
        return None
    payload = upload.getvalue()
    digest = loading.sha256(payload)
    model = loading.load_uploaded_model(digest, upload.name, payload, loading.session_folder().path).unwrap()
    return model, cache.upload_key(digest), upload.name, None, digest


def _server_path(key: str, label: str, placeholder: str, empty_hint: str, policy: AccessPolicy) -> str:
    """A server path typed in the sidebar (kept in the URL); ``""`` after saying what to enter."""
    typed = sticky(st.text_input, key, "", bind=URL, label=label, help=policy.describe(), placeholder=placeholder).strip()
    if not typed:
        st.info(empty_hint)
    return typed


def _data_from_sidebar(model, model_key: str, policy: AccessPolicy) -> tuple[Any, str, tuple[str, ...] | None] | None:
    options = _offered(DATA_SOURCES, policy)
    source = sticky(st.radio, "data_source", options[0], bind=URL, label="Data", options=options)
    if source == DATA_SOURCES[0]:
        folder = str(demo_assets().folder)
        data, split = loading.load_demo_data(folder)
        return data, cache.demo_data_key(folder), split
    if source == DATA_SOURCES[1]:
        spec = _server_path("data_path", "Dataset folder or spec", "/path/to/tables or mogonet:/path/to/ROSMAP",
                            "Enter a dataset folder (one CSV per modality + labels.csv) or a spec like mogonet:DIR.",
                            policy)
        if not spec:
            return None
        resolved = resolve_dataset(spec, policy)
        version = dataset_version(resolved)
        data, split = loading.load_folder_data(resolved.typed, resolved.spec, version, resolved).unwrap()
        return data, cache.folder_data_key(resolved.spec, version), split
    files = st.file_uploader("Samples", type=UPLOAD_TYPES, accept_multiple_files=True, key="data_files",
                             help="One CSV per tabular modality (file name = modality, first column = sample id), "
                                  "images named <sample id>.png, optional labels.csv")
    if not files:
        st.info("Upload one CSV per tabular modality (keyed by sample id) and/or PNG/JPEG/TIFF images.")
        return None
    items = tuple((f.name, f.getvalue()) for f in files)
    digest = cache.uploads_digest(items)
    data = loading.load_uploaded_data(digest, model_key, model.schema, items, loading.session_folder().path).unwrap()
    return data, cache.upload_key(digest), None


def sidebar() -> Context | None:
    """Render the sidebar; return the context, or None (with the reason shown) when incomplete."""
    with st.sidebar:
        st.header("Model")
        loaded = None
        with guard("Cannot load the model", show=load_error) as model_section:
            policy = loading.policy()
            loaded = _model_from_sidebar(policy)
            if loaded is not None:
                summary = model_summary(loaded[0])
                st.markdown("\n".join(f"- **{k}**: {v}" for k, v in summary.rows()))
        if model_section.failed or loaded is None:
            return None
        model, model_key, label, checkpoint, digest = loaded
        st.header("Data")
        got = None
        with guard("Cannot use this data with the model", show=load_error) as data_section:
            got = _data_from_sidebar(model, model_key, policy)
            if got is not None:
                data, data_key, split = got
                data = loading.aligned(model_key, data_key, model, data).unwrap()
                st.caption(f"{data.source}: {len(data)} samples")
                for note in data.notes:
                    st.caption(f"note: {note}")
                for warning in data_warnings(data, model.preprocessing):  # the CLI prints the same on stderr
                    st.warning(warning)
        if data_section.failed or got is None:
            return None
    return Context(model, model_key, label, checkpoint, digest, summary, data, data_key, split)
