"""Attention view (MCA / Zorro / EAO): the mask, per-layer/per-head maps, channel x modality mass."""

import streamlit as st

import state
import widgets

ctx = widgets.context()
st.title("Attention view")
if not ctx.summary.has_attention:
    st.info(f"The loaded model ({ctx.summary.method}) has no attention maps. Load an MCA, Zorro, EAO or hybrid "
            "checkpoint to see them; the sample view shows this model's own explanations.")
    st.stop()
index, pattern = widgets.sample_controls(ctx, prefix="att_")
exp = widgets.explanation(ctx, index, pattern)
if exp is None:
    st.stop()
key = (ctx.model_key, ctx.data_key, index, pattern)
off = [m for m, a, p in zip(exp.modality_names, exp.available, exp.present) if a and not p]
if off:
    st.caption(f"Switched off (masked, grey): {', '.join(off)}")


def show(view: str, params: dict | None = None, export_key: str = "") -> None:
    try:
        bundle = state.sample_figure(view, key, tuple(sorted((params or {}).items())), exp)
    except ValueError as err:
        st.info(str(err))
        return
    st.plotly_chart(bundle.figure, key=f"fig_{export_key or view}")
    widgets.export_buttons(bundle, ctx, exp.active_modalities, key=export_key or view)


c1, c2 = st.columns(2)
c1.metric("Prediction", exp.predicted_class)
c2.metric("Probability", f"{exp.probabilities[exp.predicted]:.3f}")
st.subheader("Attention mask")
show("attention_mask")
st.subheader("Attention maps")
n_layers = len(exp.attention.layers)
n_heads = int(exp.attention.layers[0].shape[1])
c1, c2 = st.columns(2)
layer = c1.selectbox("Layer", list(range(n_layers)), index=n_layers - 1, key="att_layer")
head = c2.selectbox("Head", ["mean"] + list(range(n_heads)), key="att_head")
show("attention_layer", {"layer": int(layer), "head": None if head == "mean" else int(head)}, export_key="attention_layer")
st.subheader("Channel x modality")
if exp.attention.channel_modality is not None:
    show("channel_modality")
else:
    st.caption(f"{exp.method} has no fusion channels.")
