"""Cohort view: every sample in a sortable, filterable table, and the robustness matrix over
every non-empty modality subset; a selected row opens in the sample view."""

import streamlit as st

import state
import widgets

ctx = widgets.context()
st.title("Cohort view")
widgets.page_notices(ctx)
help_ = widgets.helptip
bar = st.progress(0.0, text="Cohort inference …")
result = state.cohort(ctx.model_key, ctx.data_key, ctx.model, ctx.data, ctx.split,
                      lambda done, total: bar.progress(done / total, text=f"Cohort inference: {done}/{total} samples"))
bar.empty()

from fusioncore.inspect import HEADLINE_METRICS, cohort_table, filter_table  # noqa: E402

table = cohort_table(result)
if ctx.data.labels is not None:
    try:
        m = result.metrics()
    except ValueError as err:
        st.error(str(err))
    else:
        if result.evaluation_split != "all":
            st.caption(f"Metrics on the {result.evaluation_split} split only ({len(result.evaluation_rows)} samples).")
        for col, (name, label, term) in zip(st.columns(len(HEADLINE_METRICS)), HEADLINE_METRICS):
            col.metric(label, f"{m[name]:.3f}", help=help_(term) if term else None)


def open_sample(sample_id: str, pattern: dict | None = None) -> None:
    widgets.preset(ctx, "sample", sample_id)
    for name in ctx.summary.modalities:
        widgets.preset(ctx, f"toggle_{name}", True if pattern is None else pattern[name])
    st.switch_page("views/sample.py")


st.subheader("Samples")
c1, c2, c3 = st.columns([2, 2, 1])
query = widgets.control(c1.text_input, "cohort_query", "", scope=ctx.scope, label="Filter sample id",
                        help="Show only samples whose id contains this text.")
classes = list(ctx.summary.classes)
pred_filter = widgets.control(c2.multiselect, "cohort_pred", [], scope=ctx.scope, label="Predicted class", options=classes)
wrong_only = widgets.control(c3.checkbox, "cohort_wrong", False, scope=ctx.scope, label="Misclassified only",
                             disabled="correct" not in table)
shown = filter_table(table, query, pred_filter, wrong_only)
st.caption(f"{len(shown)} of {len(table)} samples. Click a column header to sort; select a row to open it.")
columns = {"p_predicted": st.column_config.NumberColumn("p_predicted", help=help_("p_predicted"), format="%.3f"),
           "split": st.column_config.TextColumn("split", help=help_("split"))}
columns.update({c: st.column_config.NumberColumn(c, help=help_("confidence")) for c in shown.columns if c.endswith(":confidence")})
columns.update({c: st.column_config.NumberColumn(c, help=help_("TCP")) for c in shown.columns if c.endswith(":true_tcp")})
event = st.dataframe(shown, hide_index=True, on_select="rerun", selection_mode="single-row", key="cohort_table",
                     column_config=columns)
rows = event.selection.rows if event is not None else []
if rows:
    open_sample(str(shown.iloc[rows[0]]["sample_id"]))
c1, c2 = st.columns([3, 1])
ids = list(shown["sample_id"])
pick = widgets.control(c1.selectbox, "cohort_open", ids[0], scope=ctx.scope, label="Open sample", options=ids) if ids else None
if c2.button("Open in sample view", key="cohort_open_btn", disabled=pick is None):
    open_sample(pick)
csv = shown.to_csv(index=False).encode()
st.download_button("Download table (CSV)", csv, file_name=f"cohort__{ctx.model_label}.csv", mime="text/csv", key="cohort_csv",
                   on_click="ignore")

if ctx.data.labels is not None:
    import trust_panel

    trust_panel.cohort_trust_table(ctx)

st.subheader("Robustness to missing modalities", help=help_("robustness matrix"))
n_sub = 2 ** len(ctx.summary.modalities) - 1
if ctx.data.labels is None:
    st.info("The robustness matrix needs labels.")
    st.stop()
st.caption(f"The metric for every non-empty subset of modalities ({n_sub} subsets, one batched pass over the cohort each).")
if widgets.control(st.toggle, "robust_on", False, scope=ctx.scope, label="Compute the robustness matrix"):
    bar = st.progress(0.0, text="Robustness …")
    rob = state.robustness(ctx.model_key, ctx.data_key, ctx.model, ctx.data,
                           lambda done, total: bar.progress(done / total, text=f"Subset {done}/{total}"))
    bar.empty()
    metrics = ["balanced_acc", "acc", "f1_macro", "auc"]
    metric = widgets.control(st.selectbox, "robust_metric", metrics[0], scope=ctx.scope, label="Metric", options=metrics,
                             help="balanced_acc: " + help_("balanced accuracy") + " f1_macro: " + help_("macro F1") + " auc: " + help_("AUC"))
    bundle = state.cohort_figure("robustness", (ctx.model_key, ctx.data_key), (("metric", metric),), rob)
    st.plotly_chart(bundle.figure, key="fig_robustness")
    widgets.export_buttons(bundle, ctx, key="robustness")
    subsets = rob.subsets
    subset = widgets.control(st.selectbox, "robust_subset", subsets[0], scope=ctx.scope, label="Open a subset", options=subsets)
    samples = rob.samples(subset)
    st.dataframe(samples, hide_index=True, key="robust_samples")
    members = list(samples["sample_id"])
    pick = widgets.control(st.selectbox, "robust_open", members[0], scope=ctx.scope,
                           label="Open a sample with only these modalities", options=members)
    if st.button("Open in sample view", key="robust_open_btn"):
        open_sample(pick, rob.subset_pattern(subset))
