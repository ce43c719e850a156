"""Attention view (MCA / Zorro / EAO / hybrid): the mask, per-layer/per-head maps, channel x modality
mass and, for an image cut into patch tokens, the attention each reader pays to each patch over the tile."""

import streamlit as st

from fusioncore.explain.attention_patches import reader_names

import widgets
from boundary import fragment

ctx = widgets.context()
st.title("Attention view")
widgets.page_notices(ctx)
help_ = widgets.helptip
if not ctx.summary.has_attention:
    st.info(f"The loaded model ({ctx.summary.method}) has no attention maps. Choose an MCA, Zorro, EAO or hybrid "
            "model under 'Demo model' in the sidebar (or load such a checkpoint) to see them; the sample view "
            "shows this model's own explanations.")
    st.stop()
index, pattern = widgets.sample_controls(ctx, prefix="att_")
exp = widgets.explanation(ctx, index, pattern)
if exp is None:
    st.stop()
if exp.switched_off:
    st.caption(f"Switched off (masked, grey): {', '.join(exp.switched_off)}")
show = widgets.sample_figures(ctx, index, pattern, exp)  # show(view, params, export_key=...)

c1, c2 = st.columns(2)
c1.metric("Prediction", exp.predicted_class, help=help_("prediction"))
c2.metric("Probability", f"{exp.probabilities[exp.predicted]:.3f}", help=help_("probability"))
st.subheader("Attention mask", help=help_("attention mask"))
show("attention_mask")
st.subheader("Attention maps", help=help_("attention map"))
n_layers = len(exp.attention.layers)
n_heads = int(exp.attention.layers[0].shape[1])
c1, c2 = st.columns(2)
layer = widgets.control(c1.selectbox, "layer", n_layers - 1, scope=ctx.scope, prefix="att_", label="Layer",
                        options=list(range(n_layers)))
head = widgets.control(c2.selectbox, "head", "mean", scope=ctx.scope, prefix="att_", label="Head",
                       options=["mean"] + list(range(n_heads)))
show("attention_layer", {"layer": int(layer), "head": None if head == "mean" else int(head)}, export_key="attention_layer")
st.subheader("Channel x modality", help=help_("mass"))
if exp.attention.channel_modality is not None:
    show("channel_modality")
else:
    st.caption(f"{exp.method} has no fusion channels.")


@fragment("The Attention page failed")  # its controls rerun this section only
def image_attention(modality: str, j: int) -> None:
    """The attention each reader (fusion channel, return token / readout, the patches themselves)
    pays to each patch of image ``modality``, over the tile."""
    st.subheader(f"Attention over the image ({modality})", help=help_("patch attention"))
    if not exp.present[j]:
        st.caption(f"{modality} is {'switched off' if exp.available[j] else 'missing in this sample'}: "
                   "its patches are masked, no reader attends to them.")
        return
    readers = reader_names(exp.attention, j, modality)
    st.caption("Each map is the share of one reader's attention to this image that goes to each patch "
               "(mean over the fusion tokens of a channel, the chosen layers and heads); the red boxes "
               "are its most attended patches. 'mass' is how much of the reader's attention goes to the image at all.")
    c1, c2, c3, c4 = st.columns(4)
    scope = ctx.scope
    reader = widgets.control(c1.selectbox, f"reader_{modality}", "all readers", scope=scope, prefix="att_",
                             label="Reader", options=["all readers"] + readers, help=help_("reader"))
    layer = widgets.control(c2.selectbox, f"patch_layer_{modality}", "mean", scope=scope, prefix="att_", label="Layers",
                            options=["mean"] + list(range(n_layers)))
    head = widgets.control(c3.selectbox, f"patch_head_{modality}", "mean", scope=scope, prefix="att_", label="Heads",
                           options=["mean"] + list(range(n_heads)))
    top_k = widgets.control(c4.slider, f"patch_topk_{modality}", 5, scope=scope, prefix="att_", label="Top-k patches",
                            min_value=0, max_value=16)
    params = {"modality": modality, "reader": None if reader == "all readers" else reader,
              "layer": None if layer == "mean" else int(layer), "head": None if head == "mean" else int(head),
              "top_k": int(top_k)}
    show("patch_attention", params, export_key=f"patch_attention_{modality}")


for j, name in enumerate(exp.modality_names):
    if ctx.model.patch_grid(name) is not None:
        image_attention(name, j)
