"""Sample view: prediction, modality toggles, confidence/TCP, feature gates, image heatmaps, attributions."""

from pathlib import Path

import numpy as np
import streamlit as st

import state
import widgets
from fusioncore import viz
from fusioncore.inspect.figures import COLORSCALES, sample_confidence_table, attributions as attribution_figure
from fusioncore.inspect.whole_image import whole_image_heatmap

ctx = widgets.context()
st.title("Sample view")
index, pattern = widgets.sample_controls(ctx)
exp = widgets.explanation(ctx, index, pattern)
if exp is None:
    st.stop()
key = (ctx.model_key, ctx.data_key, index, pattern)
active = exp.active_modalities


def show(view: str, params: dict | None = None, export_key: str = "") -> None:
    try:
        bundle = state.sample_figure(view, key, tuple(sorted((params or {}).items())), exp)
    except ValueError as err:
        st.info(str(err))
        return
    st.plotly_chart(bundle.figure, key=f"fig_{export_key or view}")
    widgets.export_buttons(bundle, ctx, active, key=export_key or view)


# -- prediction -----------------------------------------------------------------------------
off = [m for m, a, p in zip(exp.modality_names, exp.available, exp.present) if a and not p]
cols = st.columns(3)
cols[0].metric("Prediction", exp.predicted_class, f"{exp.change[exp.predicted]:+.3f} vs all present" if off else None)
cols[1].metric("Probability", f"{exp.probabilities[exp.predicted]:.3f}")
if exp.true_class is not None:
    cols[2].metric("True class", exp.classes[exp.true_class])
if off:
    reference = exp.classes[int(np.argmax(exp.reference))]
    st.info(f"Without {', '.join(off)}: predicted **{exp.predicted_class}** "
            f"(with every modality: **{reference}**). Changes per class: "
            + ", ".join(f"{c} {d:+.3f}" for c, d in zip(exp.classes, exp.change)))
show("probabilities")

# -- modality informativeness ---------------------------------------------------------------
st.subheader("Modality informativeness")
if exp.confidence or exp.modality_weights:
    show("confidence")
    if exp.true_tcp:
        st.dataframe(sample_confidence_table(exp), hide_index=True, key="tcp_rows")
else:
    st.caption(f"{exp.method} gives no per-modality confidence.")

# -- feature informativeness ----------------------------------------------------------------
tabular = [m for m in exp.modality_names if exp.kinds[m] == "tabular"]
gated = [m for m in tabular if m in exp.gates]
st.subheader("Feature informativeness")
if gated:
    c1, c2, c3 = st.columns([2, 1, 2])
    modality = c1.selectbox("Modality", gated, key="gate_modality")
    top_k = c2.number_input("Top k", 1, 200, 20, key="gate_top_k")
    search = c3.text_input("Search feature name", key="gate_search", placeholder="e.g. GENE12 or ^mrna")
    show("gates", {"modality": modality, "top_k": int(top_k), "search": search}, export_key="gates")
elif tabular:
    on = any(exp.present[exp.modality_names.index(m)] for m in tabular)
    st.caption(f"No feature gates: {exp.method} has none." if on else "No feature gates: the tabular modalities are off.")

# -- image heatmaps -------------------------------------------------------------------------
for name in [m for m in exp.modality_names if exp.kinds[m] == "image"]:
    st.subheader(f"Image informativeness: {name}")
    if name not in exp.gates:
        st.caption(f"{name} is switched off or {exp.method} has no patch map; the raw image:")
        st.image(np.moveaxis(exp.images[name], 0, -1), width=256, clamp=True)
        continue
    c1, c2, c3, c4 = st.columns(4)
    opacity = c1.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key=f"opacity_{name}")
    cmap = c2.selectbox("Colour map", COLORSCALES, key=f"cmap_{name}")
    clip = c3.slider("Clip percentiles", 0.0, 100.0, (2.0, 98.0), 0.5, key=f"clip_{name}",
                     help="Colour range from these percentiles, so a few extreme patches do not make the map uniformly cold")
    k = c4.number_input("Top-k patches", 0, 64, 5, key=f"topk_{name}")
    show("heatmap", {"modality": name, "opacity": opacity, "colorscale": cmap, "clip": tuple(clip), "top_k": int(k)},
         export_key=f"heatmap_{name}")

# -- whole images larger than the model input ------------------------------------------------
if any(exp.kinds[m] == "image" for m in exp.modality_names) and any(m in exp.gates for m in exp.modality_names if exp.kinds[m] == "image"):
    with st.expander("Whole image at full resolution (tiled heatmap)"):
        st.caption("Upload a larger image (PNG, JPEG or TIFF, e.g. a slide region): it is tiled at the model's input size, "
                   "every tile goes through the image gate, and the map is stitched back at full resolution.")
        upload = st.file_uploader("Image", type=["png", "jpg", "jpeg", "tif", "tiff"], key="whole_image_file")
        c1, c2 = st.columns(2)
        tile = c1.number_input("Tile size (px)", 16, 4096, 64, key="whole_image_tile")
        overlap = c2.number_input("Overlap (px)", 0, 2048, 0, key="whole_image_overlap")
        if upload is not None and st.button("Compute the whole-image heatmap", key="whole_image_go"):
            if overlap >= tile:
                st.error(f"The overlap ({overlap} px) must be smaller than the tile ({tile} px).")
            else:
                bar = st.progress(0.0, text="Tiling …")
                try:
                    # Not cached: an 8k x 8k map is 256 MB; it is computed when the button is pressed.
                    result = whole_image_heatmap(ctx.model, upload.getvalue(), upload.name, tile=int(tile), overlap=int(overlap),
                                                 progress=lambda done, total: bar.progress(done / total, text=f"{done}/{total} tiles"))
                except ValueError as err:
                    st.error(str(err))
                else:
                    bar.empty()
                    st.caption(f"{result.n_tiles} tiles in {result.seconds:.1f} s; {result.conversion}. Shown downsampled "
                               f"to {result.pixels.shape[1]} x {result.pixels.shape[0]} px; the download is full resolution "
                               f"({result.full_map.shape[1]} x {result.full_map.shape[0]}).")
                    st.plotly_chart(viz.image_heatmap_figure(result.pixels, result.heat, opacity=0.5, clip_percentiles=(2.0, 98.0),
                                                             side_by_side=True, title=f"Whole-image informativeness ({result.modality})"),
                                    key="fig_whole_image")
                    st.download_button("Download the full-resolution map (.npy)", result.npy_bytes(),
                                       file_name=f"{Path(upload.name).stem}__{result.modality}__map.npy", key="whole_image_npy",
                                       on_click="ignore")

# -- captum attributions --------------------------------------------------------------------
st.subheader("Attributions (captum)")
method = st.selectbox("Method", ["ig", "gradshap", "ablation", "occlusion"], key="attr_method",
                      format_func={"ig": "Integrated Gradients", "gradshap": "GradientShap",
                                   "ablation": "Feature Ablation", "occlusion": "Occlusion"}.get)
if st.toggle("Compute attributions for this sample", key="attr_on"):
    with st.spinner("Computing attributions …"):
        try:
            attr = state.attributions(ctx.model_key, ctx.data_key, index, pattern, method, ctx.model, ctx.data)
        except ValueError as err:
            st.error(str(err))
            st.stop()
    for name in active:
        bundle = attribution_figure(attr, name, top_k=20 if exp.kinds[name] != "image" else 5, patch_size=exp.patch_size,
                                    image=exp.images.get(name))
        st.plotly_chart(bundle.figure, key=f"fig_attr_{name}")
        widgets.export_buttons(bundle, ctx, active, key=f"attr_{name}")
