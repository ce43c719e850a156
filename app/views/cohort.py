"""Cohort view: every sample in a sortable, filterable table, and the robustness matrix over
every non-empty modality subset; a selected row opens in the sample view."""

import streamlit as st

import state
import widgets

ctx = widgets.context()
st.title("Cohort view")
bar = st.progress(0.0, text="Cohort inference …")
result = state.cohort(ctx.model_key, ctx.data_key, ctx.model, ctx.data, ctx.split,
                      lambda done, total: bar.progress(done / total, text=f"Cohort inference: {done}/{total} samples"))
bar.empty()

from fusioncore.inspect import cohort_table  # noqa: E402

table = cohort_table(result)
if ctx.data.labels is not None:
    try:
        m = result.metrics()
    except ValueError as err:
        st.error(str(err))
    else:
        if result.evaluation_split != "all":
            st.caption(f"Metrics on the {result.evaluation_split} split only ({len(result.evaluation_rows)} samples).")
        cols = st.columns(4)
        for col, (name, label) in zip(cols, [("acc", "Accuracy"), ("balanced_acc", "Balanced accuracy"),
                                             ("f1_macro", "Macro F1"), ("auc", "AUC")]):
            col.metric(label, f"{m[name]:.3f}")


def open_sample(sample_id: str, pattern: dict | None = None) -> None:
    widgets.set_sticky("sample", sample_id)
    for name in ctx.summary.modalities:
        widgets.set_sticky(f"toggle_{name}", True if pattern is None else pattern[name])
    st.switch_page("views/sample.py")


st.subheader("Samples")
c1, c2, c3 = st.columns([2, 2, 1])
query = c1.text_input("Filter sample id", key="cohort_query")
classes = list(ctx.summary.classes)
pred_filter = c2.multiselect("Predicted class", classes, key="cohort_pred")
wrong_only = c3.checkbox("Misclassified only", key="cohort_wrong", disabled="correct" not in table)
shown = table
if query:
    shown = shown[shown["sample_id"].str.contains(query, case=False, regex=False)]
if pred_filter:
    shown = shown[shown["predicted"].isin(pred_filter)]
if wrong_only and "correct" in shown:
    shown = shown[~shown["correct"]]
st.caption(f"{len(shown)} of {len(table)} samples. Click a column header to sort; select a row to open it.")
event = st.dataframe(shown, hide_index=True, on_select="rerun", selection_mode="single-row", key="cohort_table")
rows = event.selection.rows if event is not None else []
if rows:
    open_sample(str(shown.iloc[rows[0]]["sample_id"]))
c1, c2 = st.columns([3, 1])
pick = c1.selectbox("Open sample", list(shown["sample_id"]), key="cohort_open") if len(shown) else None
if c2.button("Open in sample view", key="cohort_open_btn", disabled=pick is None):
    open_sample(pick)
csv = shown.to_csv(index=False).encode()
st.download_button("Download table (CSV)", csv, file_name=f"cohort__{ctx.model_label}.csv", mime="text/csv", key="cohort_csv",
                   on_click="ignore")

st.subheader("Robustness to missing modalities")
n_sub = 2 ** len(ctx.summary.modalities) - 1
if ctx.data.labels is None:
    st.info("The robustness matrix needs labels.")
    st.stop()
st.caption(f"The metric for every non-empty subset of modalities ({n_sub} subsets, one batched pass over the cohort each).")
if st.toggle("Compute the robustness matrix", key="robust_on"):
    bar = st.progress(0.0, text="Robustness …")
    rob = state.robustness(ctx.model_key, ctx.data_key, ctx.model, ctx.data,
                           lambda done, total: bar.progress(done / total, text=f"Subset {done}/{total}"))
    bar.empty()
    metric = st.selectbox("Metric", ["balanced_acc", "acc", "f1_macro", "auc"], key="robust_metric")
    bundle = state.cohort_figure("robustness", (ctx.model_key, ctx.data_key), (("metric", metric),), rob)
    st.plotly_chart(bundle.figure, key="fig_robustness")
    widgets.export_buttons(bundle, ctx, key="robustness")
    subset = st.selectbox("Open a subset", list(rob.frame["subset"]), key="robust_subset")
    samples = rob.samples(subset)
    st.dataframe(samples, hide_index=True, key="robust_samples")
    pick = st.selectbox("Open a sample with only these modalities", list(samples["sample_id"]), key="robust_open")
    if st.button("Open in sample view", key="robust_open_btn"):
        members = subset.split("+")
        open_sample(pick, {m: m in members for m in ctx.summary.modalities})
