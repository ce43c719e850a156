"""Sample view: prediction and modality switches beside the explanations (one tab each: image
maps, feature gates, attributions, whole images), laid out for a 1280 x 720 screen.

Why the body is a fragment (:func:`body`): a switch or sample click reruns only what depends on
it — not the sidebar, the page's style and notices — so the browser gets and redraws less
(with the lazy export popovers: 59 WebSocket messages per click instead of 93,
``benchmarks/bench_browser.py``'s ``messages_per_toggle``). Every section takes the
:class:`Shown` state it draws, so a section's own fragment rerun (image-map controls, gates)
uses the sample and switches it was last drawn with.
"""

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import streamlit as st

import state
import timing
import trust_panel
import widgets
from boundary import fragment
from fusioncore.data.images import INPUT_RULE
from fusioncore.explain.attributions import METHOD_LABELS
from fusioncore.inspect.figures import COLORSCALES
from fusioncore.inspect.notices import UNAVAILABLE

help_ = widgets.helptip


@dataclass(frozen=True)
class Shown:
    """What one run of the sample view draws: the context, the sample and switches, their
    explanation and ``show(view, params, export_key=...)`` for its figures."""

    ctx: widgets.Context
    index: int
    pattern: tuple[bool, ...]
    exp: Any
    show: Callable[..., None]


def prediction(v: Shown) -> None:
    exp = v.exp
    off = exp.switched_off
    cols = st.columns(3)
    cols[0].metric("Prediction", exp.predicted_class, f"{exp.change[exp.predicted]:+.3f} vs all present" if off else None,
                   help=help_("prediction"))
    cols[1].metric("Probability", f"{exp.probabilities[exp.predicted]:.3f}", help=help_("probability"))
    if exp.true_class is not None:
        cols[2].metric("True class", exp.classes[exp.true_class])
    if off:
        reference = exp.classes[int(np.argmax(exp.reference))]
        st.info(f"Without {', '.join(off)}: predicted **{exp.predicted_class}** "
                f"(with every modality: **{reference}**). Changes per class: "
                + ", ".join(f"{c} {d:+.3f}" for c, d in zip(exp.classes, exp.change)))


def informativeness(v: Shown) -> None:
    exp, show = v.exp, v.show
    if not (exp.confidence or exp.modality_weights):
        st.caption(f"{exp.method} gives no per-modality confidence.")
        return
    st.caption(help_("modality informativeness"))
    show("confidence")
    if exp.confidence:
        st.caption(f"**Confidence**: {help_('confidence')} **True TCP**: {help_('TCP')}")
    if exp.true_tcp:
        from fusioncore.inspect.figures import sample_confidence_table

        st.table(sample_confidence_table(exp).set_index("modality"))  # a small HTML table: cheap to redraw


@fragment("The Sample page failed")  # its controls rerun this section only, not the prediction
def image_tab(v: Shown, name: str) -> None:
    ctx, exp, show = v.ctx, v.exp, v.show
    shape = exp.images[name].shape
    notes = state.upload_warnings(ctx, exp.sample_id, name)
    rule = f"Input {shape[2]} x {shape[1]} px: {INPUT_RULE} (as in training)."
    if UNAVAILABLE in notes:
        rule += " " + UNAVAILABLE
    if name not in exp.gates:
        st.caption(f"{name} is switched off or {exp.method} has no patch map; the raw image. {rule}")
        st.image(np.moveaxis(exp.images[name], 0, -1), width=256, clamp=True)
        for line in notes:
            widgets.image_notice(line)
        return
    c1, c2, c3, c4 = st.columns(4)
    scope = ctx.scope
    default = widgets.HEATMAP_DEFAULTS
    opacity = widgets.control(c1.slider, f"opacity_{name}", default["opacity"], scope=scope, label="Opacity",
                              min_value=0.0, max_value=1.0, step=0.05, help=help_("opacity"))
    cmap = widgets.control(c2.selectbox, f"cmap_{name}", default["colorscale"], scope=scope, label="Colour map",
                           options=COLORSCALES, help=help_("colour map"))
    clip = widgets.control(c3.slider, f"clip_{name}", default["clip"], scope=scope, label="Clip percentiles",
                           min_value=0.0, max_value=100.0, step=0.5, help=help_("clip percentiles"))
    k = widgets.control(c4.number_input, f"topk_{name}", default["top_k"], scope=scope, label="Top-k patches",
                        min_value=0, max_value=64, help=help_("top-k patches"))
    for line in notes:
        widgets.image_notice(line)
    show("heatmap", widgets.heatmap_params(name, opacity, cmap, clip, k), export_key=f"heatmap_{name}")
    trust_panel.trust_panel(ctx, v.index, v.pattern, "image_map", name)
    st.caption(f"Colour: the U-Net gate per {exp.patch_size} x {exp.patch_size} patch — bright = kept by the model, "
               f"dark = suppressed; computed from the image itself, the same for every class (prediction: "
               f"**{exp.predicted_class}**). {rule}", help=help_("patch map") + " " + help_("input rule"))


@fragment("The Sample page failed")  # its controls rerun this section only, not the prediction
def gates_tab(v: Shown, gated: list[str], tabular: list[str]) -> None:
    ctx, exp, show = v.ctx, v.exp, v.show
    if not gated:
        on = any(exp.present[exp.modality_names.index(m)] for m in tabular)
        st.caption(f"No feature gates: {exp.method} has none." if on else "No feature gates: the tabular modalities are off.")
        return
    c1, c2, c3 = st.columns([2, 1, 2])
    scope = ctx.scope
    modality = widgets.control(c1.selectbox, "gate_modality", gated[0], scope=scope, label="Modality", options=gated,
                               help="The tabular modality whose feature gates are drawn (switched-off ones have none).")
    top_k = widgets.control(c2.number_input, "gate_top_k", 20, scope=scope, label="Top k", min_value=1, max_value=200,
                            help=help_("top k"))
    search = widgets.control(c3.text_input, "gate_search", "", scope=scope, label="Search feature name",
                             placeholder="e.g. GENE12 or ^mrna", help=help_("feature search"))
    st.caption(help_("feature gate"))
    show("gates", {"modality": modality, "top_k": int(top_k), "search": search}, export_key="gates")
    trust_panel.trust_panel(ctx, v.index, v.pattern, "gates", modality)


def attributions_tab(v: Shown) -> None:
    from fusioncore.inspect.figures import attributions as attribution_figure

    ctx, index, pattern, exp = v.ctx, v.index, v.pattern, v.exp

    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    method = widgets.control(c1.selectbox, "attr_method", "ig", scope=ctx.scope, label="Method", options=list(METHOD_LABELS),
                             format_func=METHOD_LABELS.get, help=" ".join(f"**{m}**: {help_(m)}" for m in METHOD_LABELS.values()))
    st.caption(f"Explained class: **{exp.predicted_class}** (the prediction). {help_('attribution')}",
               help=help_("explained class"))
    if not c2.button("Compute attributions", key="attr_go", help="Runs captum on this sample (a few seconds)") \
            and not state.has_attributions(ctx, index, pattern, method):
        return
    with st.spinner("Computing attributions …"):
        try:
            attr = state.attributions(ctx.model_key, ctx.data_key, index, pattern, method, ctx.model, ctx.data)
        except ValueError as err:
            st.error(str(err))
            return
    for name in exp.active_modalities:
        bundle = attribution_figure(attr, name, top_k=20 if exp.kinds[name] != "image" else 5, patch_size=exp.patch_size,
                                    image=exp.images.get(name), exp=exp)
        st.plotly_chart(bundle.figure, key=f"fig_attr_{name}")
        widgets.export_buttons(bundle, ctx, exp.active_modalities, key=f"attr_{name}")
        trust_panel.trust_panel(ctx, index, pattern, method, name)


@fragment("The Sample page failed")  # independent of the switches: its upload and buttons rerun this section only
def whole_image_tab(v: Shown) -> None:
    from fusioncore import viz
    from fusioncore.inspect.notices import check_image_bytes, check_lines
    from fusioncore.inspect.whole_image import whole_image_heatmap

    ctx, exp = v.ctx, v.exp

    st.caption("Upload a larger image (PNG, JPEG or TIFF, e.g. a slide region): it is cut into tiles of the model's input "
               "size (no scaling), every tile goes through the image gate, and the map is stitched back at full "
               "resolution.", help=help_("whole-image map"))
    upload = st.file_uploader("Image", type=["png", "jpg", "jpeg", "tif", "tiff"], key="whole_image_file")
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    tile = c1.number_input("Tile size (px)", 32, 4096, 64, key="whole_image_tile",
                           help="Side of the tiles cut from the image; the model's input size gives maps it was trained for.")
    overlap = c2.number_input("Overlap (px)", 0, 2048, 0, key="whole_image_overlap",
                              help="Pixels shared by neighbouring tiles; overlapping maps are averaged, which softens tile seams.")
    run = c3.button("Compute the whole-image heatmap", key="whole_image_go", disabled=upload is None)
    if upload is None or not run:
        return
    if overlap >= tile:
        st.error(f"The overlap ({overlap} px) must be smaller than the tile ({tile} px).")
        return
    modality = exp.modalities_of("image", gated=True)[0]
    bar = st.progress(0.0, text="Tiling …")
    try:
        check = check_image_bytes(ctx.model, modality, upload.name, upload.getvalue(), tiled=True)
        # Not cached: an 8k x 8k map is 256 MB; it is computed when the button is pressed.
        result = whole_image_heatmap(ctx.model, upload.getvalue(), upload.name, tile=int(tile), overlap=int(overlap),
                                     progress=lambda done, total: bar.progress(done / total, text=f"{done}/{total} tiles"))
    except ValueError as err:
        st.error(str(err))
        return
    bar.empty()
    for line in check_lines(check):
        widgets.image_notice(line)
    st.caption(f"{result.n_tiles} tiles in {result.seconds:.1f} s; {result.conversion}. Shown downsampled "
               f"to {result.pixels.shape[1]} x {result.pixels.shape[0]} px; the download is full resolution "
               f"({result.full_map.shape[1]} x {result.full_map.shape[0]}).")
    st.plotly_chart(viz.image_heatmap_figure(result.pixels, result.heat, opacity=0.5, clip_percentiles=(2.0, 98.0),
                                             side_by_side=True, title=f"Whole-image informativeness ({result.modality})"),
                    key="fig_whole_image")
    st.download_button("Download the full-resolution map (.npy)", result.npy_bytes(),
                       file_name=f"{upload.name.rsplit('.', 1)[0]}__{result.modality}__map.npy", key="whole_image_npy",
                       on_click="ignore")


@fragment("The Sample page failed")
def body(ctx: widgets.Context) -> None:
    """Sample, switches, prediction and explanations: rerun alone when a control in it changes."""
    index, pattern = widgets.sample_controls(ctx)
    exp = widgets.explanation(ctx, index, pattern)
    if exp is None:
        return
    v = Shown(ctx, index, pattern, exp, widgets.sample_figures(ctx, index, pattern, exp))
    left, right = st.columns([2, 3], gap="medium")
    with left:
        prediction(v)
        overview = {"Modality informativeness": informativeness, "Class probabilities": lambda v: v.show("probabilities")}
        for label, container in zip(overview, widgets.tabs("overview_tab", list(overview))):
            if container.open:
                with container:
                    overview[label](v)
    with right:
        tabular = exp.modalities_of("tabular")
        sections = {f"Image map: {m}": (lambda v, m=m: image_tab(v, m)) for m in exp.modalities_of("image")}
        if tabular:
            sections["Feature gates"] = lambda v: gates_tab(v, exp.modalities_of("tabular", gated=True), tabular)
        sections["Attributions"] = attributions_tab
        if exp.modalities_of("image", gated=True):
            sections["Whole image"] = whole_image_tab
        for label, container in zip(sections, widgets.tabs("sample_tab", list(sections))):
            if container.open:
                with container:
                    sections[label](v)
    widgets.start_prefetch()  # a fragment rerun does not reach the entry script's own call


timing.mark("sample page start")
context = widgets.context()
st.title("Sample view")
widgets.page_notices(context)
body(context)
timing.mark("sample page end")
