"""Slide view: open a whole-slide image, compute the model's heatmap over its tissue, and zoom from the
whole slide to the cells with the map over it; a click shows that tile at full resolution."""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

import loading
import slide_viewer
import tiles
import widgets
from fusioncore.access import AccessError
from fusioncore.inspect.cache import file_identity, slide_run_key
from fusioncore.inspect.figures import COLORSCALES
from fusioncore.inspect.slide_view import inspect_tile, load_run, tile_figure
from fusioncore.reports.slide_run import SlideOptions, explain_slide, is_complete
from fusioncore.slides import SLIDE_SUFFIXES
from fusioncore.slides.deepzoom import COLORMAPS, SlideLayers, mask_png
from fusioncore.slides.infer import image_modality

ctx = widgets.context()
st.title("Slide viewer")
widgets.page_notices(ctx)
if not tiles.mounted():
    st.warning("The slide viewer needs the dashboard's tile route: start it with `streamlit run app/main.py` "
               "(same port, same origin; see docs/slides.md).")
    st.stop()
try:
    modality = image_modality(ctx.model)
except ValueError as err:
    st.info(f"{err}. Choose a model with an image modality (e.g. the bundled mmdynamics_image_omics) in the sidebar.")
    st.stop()


def session_folder() -> Path:
    """This session's private working folder (0700), for uploads and runs."""
    folder = st.session_state.get("_slides_folder")
    if folder is None or not Path(folder).is_dir():
        folder = tempfile.mkdtemp(prefix="fusioncore-slides-")
        os.chmod(folder, 0o700)
        st.session_state["_slides_folder"] = folder
    return Path(folder)


def uploaded_slide(upload) -> tuple[Path, str]:
    """The upload written once into the session folder; ``(path, sha256)``."""
    saved = st.session_state.setdefault("_slides_uploads", {})
    if upload.file_id not in saved:
        payload = upload.getvalue()
        digest = hashlib.sha256(payload).hexdigest()
        path = session_folder() / "uploads" / digest[:16] / Path(upload.name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        saved[upload.file_id] = (str(path), digest)
    path, digest = saved[upload.file_id]
    return Path(path), digest


def server_slide(policy) -> tuple[Path, str] | None:
    """A slide file on the server, checked against the lab's allowed roots; ``(path, identity)``
    where the identity changes when the file does (path, size, modification time)."""
    typed = st.text_input("Slide file on the server", key="slide_server_path", help=policy.describe())
    if not typed.strip():
        st.info("Type the path of a slide file on the server. " + policy.describe())
        return None
    try:
        path = policy.resolve(typed, "slide")
    except AccessError as err:
        st.error(str(err))
        return None
    if not path.is_file() or path.suffix.lower().lstrip(".") not in SLIDE_SUFFIXES:
        st.error(f"Slide file {typed!r}: expected an existing file ending in "
                 + ", ".join(f".{s}" for s in SLIDE_SUFFIXES))
        return None
    return path, file_identity(path)


def chosen_slide() -> tuple[Path, str, str] | None:
    """``(path, identity, display name)`` of the slide to view: uploaded, or a server path when
    this dashboard may read server paths (docs/deployment.md)."""
    policy = loading.policy()
    sources = ["Upload"] + (["Server path"] if policy.server_paths_enabled else [])
    source = st.radio("Slide from", sources, horizontal=True, key="slide_source") if len(sources) > 1 else "Upload"
    if source == "Server path":
        got = server_slide(policy)
        return None if got is None else (*got, got[0].name)
    upload = st.file_uploader("Slide (" + ", ".join(f".{s}" for s in SLIDE_SUFFIXES) + ")",
                              type=list(SLIDE_SUFFIXES), key="slide_file")
    st.caption("Uploads are kept in this session's private folder. " + policy.describe())
    if upload is None:
        st.info("Upload a slide to start. The model runs on its tissue tiles at the model's resolution.")
        return None
    return (*uploaded_slide(upload), upload.name)


chosen = chosen_slide()
if chosen is None:
    st.stop()
slide_path, digest, slide_name = chosen

c1, c2, c3, c4 = st.columns(4)
how = c1.selectbox("Resolution", ["model's own", "microns per pixel", "pyramid level"], key="slide_res",
                   help="model's own: the training mpp the checkpoint records, else the slide's level 0 (stated)")
mpp = c2.number_input("um / px", 0.05, 64.0, 0.5, 0.05, key="slide_mpp", disabled=how != "microns per pixel")
level = c2.number_input("Level", 0, 16, 0, key="slide_level") if how == "pyramid level" else None
min_tissue = c3.slider("Min tissue per tile", 0.0, 1.0, 0.1, 0.05, key="slide_min_tissue")
top_k = c4.number_input("Top-k regions", 1, 50, 10, key="slide_top_k")
options = SlideOptions(mpp=float(mpp) if how == "microns per pixel" else None,
                       level=int(level) if level is not None else None, min_tissue=float(min_tissue), top_k=int(top_k),
                       modality=modality)
run_key = slide_run_key(digest, ctx.model_key, options)
folder = session_folder() / "runs" / run_key

# One container for the compute step, so the elements after it (the viewer above all) keep their
# place in the page whether or not it shows a button: a moved component is remounted and would lose
# the viewer's zoom and pan.
with st.container():
    if not is_complete(folder):
        slot = st.empty()
        if not slot.button("Compute the slide heatmap", key="slide_go", type="primary"):
            st.info("Press the button to run the model over the slide's tissue (a killed or interrupted run resumes).")
            st.stop()
        slot.empty()  # the button goes away in the run that computes
        bar = st.progress(0.0, text="Finding tissue …")
        try:
            explain_slide(ctx.model, slide_path, folder, options,
                          progress=lambda done, total: bar.progress(done / max(total, 1), text=f"{done}/{total} tissue tiles"))
        except ValueError as err:
            st.error(str(err))
            st.stop()
        bar.empty()
    run = load_run(folder)
    summary = run.summary
    pred = summary["prediction"]
    for warning in summary.get("warnings", []):
        st.warning(warning)

cols = st.columns(4)
cols[0].metric("Slide prediction", pred["predicted"] or "none")
if pred["predicted"]:
    cols[1].metric("Probability", f"{pred['probabilities'][pred['predicted']]:.3f}",
                   help="Mean of the tiles' probabilities, weighted by tissue fraction")
conf = pred["confidence"].get(modality)
if conf:
    cols[2].metric(f"{modality} confidence", f"{conf['weighted_mean']:.3f}",
                   help=f"tiles: median {conf['p50']:.3f}, 5-95 % {conf['p5']:.3f} - {conf['p95']:.3f}")
cols[3].metric("Tissue tiles", f"{pred['n_tiles']:,}", help=f"{summary['tissue']['fraction']:.0%} of the slide is tissue")
st.caption(f"Resolution: {summary['resolution']['source']}. {summary['absent_note'].capitalize()}. "
           f"Aggregation: {pred['aggregation']}.")

# -- the viewer -----------------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
opacity = c1.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="slide_opacity")
colormap = c2.selectbox("Colour map", COLORMAPS, key="slide_cmap")
show_mask = c3.toggle("Tissue mask", value=False, key="slide_mask")

tokens = st.session_state.setdefault("_slides_tokens", {})
if run_key not in tokens:  # registered once per session and run: the tile route serves only these
    with st.spinner("Opening the slide …"):
        layers = SlideLayers.open(slide_path, run.file("heatmap.tif"), summary["grid"]["cell_downsample"])
        mask = np.asarray(Image.open(run.file("tissue.png"))) > 0
        tokens[run_key] = (tiles.REGISTRY.register(layers, mask_png(mask)), layers.heatmap_width())
token, heat_width = tokens[run_key]
selected = st.session_state.get(f"_slides_selected_{run_key}")
view, panel = st.columns([3, 2])
with view:
    clicked = slide_viewer.viewer(token=token, regions=summary["regions"], heat_width=heat_width, opacity=opacity, colormap=colormap, show_mask=show_mask, selected=selected,
                                  caption="Drag to pan, scroll to zoom, click a tile to inspect it.", key="slide_view")

with panel:
    st.subheader("Tile at full resolution")
    if not clicked:
        st.caption("Click the slide, or a region in the list, to see that tile's map, prediction and confidence here.")
    else:
        try:
            tile = inspect_tile(run, slide_path, ctx.model, clicked["x"], clicked["y"])
        except ValueError as err:
            st.info(str(err))
        else:
            st.session_state[f"_slides_selected_{run_key}"] = {"x": tile.box[0], "y": tile.box[1],
                                                                 "width": tile.box[2], "height": tile.box[3]}
            bundle = tile_figure(tile, opacity=opacity, colorscale=COLORSCALES[0])
            st.plotly_chart(bundle.figure, key="fig_slide_tile")
            st.markdown(f"**{tile.predicted}** · " + " · ".join(f"{c} {p:.3f}" for c, p in zip(tile.classes, tile.probabilities))
                        + (f" · confidence {tile.confidence:.3f}" if tile.confidence is not None else "")
                        + f" · map mean {tile.score:.3f}")
            st.caption(f"Tile row {tile.row}, col {tile.col}; level-0 box {tile.box}. Re-inferred in float32 with the "
                       f"other modalities absent.")
            widgets.export_buttons(bundle, ctx, [modality], key="slide_tile")

with st.expander("Downloads"):
    cols = st.columns(5)
    for col, (name, mime) in zip(cols, [("heatmap.tif", "image/tiff"), ("overlay.png", "image/png"),
                                        ("regions.csv", "text/csv"), ("regions.geojson", "application/geo+json"),
                                        ("summary.json", "application/json")]):
        col.download_button(name, run.file(name).read_bytes(), file_name=f"{Path(slide_name).stem}__{name}", mime=mime,
                            key=f"slide_dl_{name}", on_click="ignore")
