"""TCP error view: predicted confidence vs true TCP over one split of the cohort (held-out by
default), with its error statistics."""

import streamlit as st

import state
import widgets

ctx = widgets.context()
st.title("TCP error view")
widgets.page_notices(ctx)
help_ = widgets.helptip
st.caption(f"How well each modality's predicted confidence matches its true-class probability. **True TCP**: "
           f"{help_('TCP')} **Confidence**: {help_('confidence')}")
if ctx.data.labels is None:
    st.info("The cohort has no labels, so true TCP is unknown. Load labelled data (e.g. labels.csv with the uploads).")
    st.stop()
bar = st.progress(0.0, text="Cohort inference …")
result = state.cohort(ctx.model_key, ctx.data_key, ctx.model, ctx.data, ctx.split,
                      lambda done, total: bar.progress(done / total, text=f"Cohort inference: {done}/{total} samples"))
bar.empty()
splits = result.split_choices()
c_split, c_bins = st.columns([1, 2])
split = widgets.control(c_split.selectbox, "tcp_split", splits[0], scope=ctx.scope, label="Split", options=splits,
                        help=help_("split") + " The CLI's `fusioncore evaluate` reports the test split too.")
ckey = (ctx.model_key, ctx.data_key)
try:
    scatter = state.cohort_figure("tcp_scatter", ckey, (("split", split),), result)
except ValueError as err:
    st.info(str(err))
    st.stop()

from fusioncore.inspect import fraction_table, tcp_summary  # noqa: E402

table, fractions = tcp_summary(result.on_split(split))
st.subheader("Summary statistics", help=help_("TCP error"))
st.caption(f"{scatter.rows}.")
st.dataframe(table.rename(columns={"mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R2", "mape": "MAPE (%)"}),
             hide_index=True, key="tcp_stats")
left, right = st.columns(2)
with left:
    st.subheader("Predicted vs true TCP")
    st.plotly_chart(scatter.figure, key="fig_tcp_scatter")
    widgets.export_buttons(scatter, ctx, key="tcp_scatter")
with right:
    st.subheader("Relative error", help=help_("relative error"))
    nbins = widgets.control(c_bins.slider, "tcp_bins", 30, scope=ctx.scope, label="Histogram bins", min_value=5,
                            max_value=100, help="Number of bars of the relative-error histogram.")
    hist = state.cohort_figure("tcp_histogram", ckey, (("nbins", int(nbins)), ("split", split)), result)
    st.plotly_chart(hist.figure, key="fig_tcp_hist")
    widgets.export_buttons(hist, ctx, key="tcp_hist")
st.subheader("Fraction of samples with |error| > k * TCP")
frac = state.cohort_figure("tcp_fractions", ckey, (("split", split),), result)
st.dataframe(fraction_table(fractions, table["modality"]), key="tcp_fraction_table")
widgets.export_buttons(frac, ctx, key="tcp_fractions")
