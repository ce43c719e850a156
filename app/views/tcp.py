"""TCP error view: predicted confidence vs true TCP over the cohort, with its error statistics."""

import streamlit as st

import state
import widgets

ctx = widgets.context()
st.title("TCP error view")
st.caption("How well each modality's predicted confidence matches its true-class probability "
           "(TCP = softmax(unimodal logits)[true class]) over the cohort.")
if ctx.data.labels is None:
    st.info("The cohort has no labels, so true TCP is unknown. Load labelled data (e.g. labels.csv with the uploads).")
    st.stop()
bar = st.progress(0.0, text="Cohort inference …")
result = state.cohort(ctx.model_key, ctx.data_key, ctx.model, ctx.data, ctx.split,
                      lambda done, total: bar.progress(done / total, text=f"Cohort inference: {done}/{total} samples"))
bar.empty()
ckey = (ctx.model_key, ctx.data_key)
try:
    stats = state.cohort_figure("tcp_scatter", ckey, (), result)
except ValueError as err:
    st.info(str(err))
    st.stop()

from fusioncore.inspect import tcp_summary  # noqa: E402

table, fractions = tcp_summary(result)
st.subheader("Summary statistics")
st.dataframe(table.rename(columns={"mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R2", "mape": "MAPE (%)"}),
             hide_index=True, key="tcp_stats")
st.subheader("Predicted vs true TCP")
st.plotly_chart(stats.figure, key="fig_tcp_scatter")
widgets.export_buttons(stats, ctx, key="tcp_scatter")
st.subheader("Relative error")
nbins = st.slider("Bins", 5, 100, 30, key="tcp_bins")
hist = state.cohort_figure("tcp_histogram", ckey, (("nbins", int(nbins)),), result)
st.plotly_chart(hist.figure, key="fig_tcp_hist")
widgets.export_buttons(hist, ctx, key="tcp_hist")
st.subheader("Fraction of samples with |error| > k * TCP")
frac = state.cohort_figure("tcp_fractions", ckey, (), result)
wide = fractions.pivot(index="k", columns="modality", values="fraction")[list(table["modality"])]
st.dataframe(wide, key="tcp_fraction_table")
widgets.export_buttons(frac, ctx, key="tcp_fractions")
