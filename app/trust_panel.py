"""The trust panel shown beside each explanation, and the cohort trust table.

Pages call :func:`trust_panel` next to an explanation (gates, image map, attention, an
attribution) of the sample on screen, and :func:`cohort_trust_table` on the Cohort page. Both
compute on demand (a button / toggle, with a progress bar) through the caches in ``state.py``:
once per (model, sample, presence pattern) and once per (model, cohort, number of samples).
The numbers come from ``fusioncore.explain.trust_assess``; this module only lays them out.
"""

from __future__ import annotations

import streamlit as st

import state
from fusioncore import viz
from fusioncore.explain.trust_scores import Explanation
from fusioncore.inspect.cache import cohort_trust_key, sample_trust_key

VERDICT_BADGE = {"trustworthy": ":green[**trustworthy**]", "doubtful": ":orange[**doubtful**]",
                 "untrustworthy": ":red[**untrustworthy**]"}
STATUS_MARK = {"pass": ":green[pass]", "borderline": ":orange[borderline]", "fail": ":red[fail]", "untestable": ":gray[untestable]"}
HOW = ("Checked three ways: recomputed with the model's layers re-initialised from the output down (the map should "
       "change), its units deleted in its order against random orders (the class probability should fall faster), "
       "and, for images, patches removed by noisy linear imputation (ROAD); planted truth where the data has it.")


def _progress(text: str):
    bar = st.progress(0.0, text=text)
    return bar, lambda done, total, what: bar.progress(done / total, text=f"{text} {what} ({done}/{total})")


def _sample_report(ctx, index: int, pattern: tuple[bool, ...], attribution: str | None, button_key: str):
    """The cached trust report of this sample, or None until the user asks for it."""
    key = sample_trust_key(ctx.model_key, ctx.data_key, index, pattern, attribution)
    if not state.has_trust(key):
        slot = st.empty()
        with slot.container():
            st.caption("Trust of this explanation: not checked yet (one sample takes seconds to a minute on a CPU).")
            clicked = st.button("Check trust", key=button_key)
        if not clicked:
            return None
        slot.empty()  # the button is gone in the run that computes, not only in the next one
    bar, progress = _progress("Trust checks:")
    try:
        report = state.sample_trust(key, ctx.model, ctx.data, state.planted_truth(ctx.data_key, ctx.data), progress=progress)
    except ValueError as err:
        st.error(str(err))
        return None
    finally:
        bar.empty()
    return report


def show_record(record, key: str) -> None:
    """Verdict, the three headline numbers, how they were computed and, one click away, why."""
    st.markdown(f"Trust: {VERDICT_BADGE[record.verdict]} — {record.label}")
    cols = st.columns(3)
    cols[0].metric("Randomisation |ρ|", f"{record.randomisation_similarity:.2f}",
                   help="Rank correlation with the same explanation of the model with every layer re-initialised (low is good).")
    gap = record.deletion_gap
    cols[1].metric("Deletion gap", f"{gap.mean:+.3f}", help="Deletion AUC of random orders minus the explanation's "
                   f"(true-class probability; high is good). Interval: [{gap.low:+.3f}, {gap.high:+.3f}].")
    if record.road_gap is not None:
        cols[2].metric("ROAD gap", f"{record.road_gap.mean:+.3f}", help="p(class) with the least minus the most relevant "
                       "patches imputed, averaged over removed fractions (high is good).")
    elif record.recovery_auroc is not None:
        cols[2].metric("Planted truth AUROC", f"{record.recovery_auroc:.2f}", help="How well it ranks the planted units.")
    st.caption(HOW)
    with st.expander("Why", key=f"trust_why_{key}"):
        for c in record.checks:
            st.markdown(f"- **{c.name}** {STATUS_MARK[c.status]}: {c.line}")
        for other, values in record.agreement.items():
            st.markdown(f"- agreement with **{other}**: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))


def trust_panel(ctx, index: int, pattern: tuple[bool, ...], kind: str, modality: str, *, attribution: str | None = "ig"):
    """The trust panel of explanation ``kind`` of ``modality`` for the sample on screen; returns
    its record (None until computed, or when the modality is switched off)."""
    explanation = Explanation(kind, modality)
    if explanation.is_attribution:
        attribution = kind
    key = f"{kind}_{modality}"
    with st.container(border=True):
        report = _sample_report(ctx, index, pattern, attribution, f"trust_go_{key}")
        if report is None:
            return None
        if explanation not in report.explanations:
            st.caption(f"Trust: no {explanation.label} for this sample under the current switches.")
            return None
        record = report.record(explanation)
        show_record(record, key)
    return record


def cohort_trust_table(ctx) -> None:
    """The Cohort page's table: one row per explanation the model gives, verdict and numbers."""
    from fusioncore.reports.trust import records_json

    st.subheader("Trust of the explanations")
    st.caption("Every explanation the model gives, checked on the first samples of the cohort: " + HOW)
    n = int(st.number_input("Samples to check", 2, max(2, len(ctx.data)), min(16, len(ctx.data)), key="trust_n",
                            help="The image model takes minutes for 16 samples on a CPU; seconds on a GPU."))
    if not st.toggle("Compute the trust table", key="trust_on"):
        return
    key = cohort_trust_key(ctx.model_key, ctx.data_key, n)
    bar, progress = _progress("Trust table:")
    try:
        report = state.cohort_trust(key, ctx.model, ctx.data, state.planted_truth(ctx.data_key, ctx.data), progress=progress)
    except ValueError as err:
        st.error(str(err))
        return
    finally:
        bar.empty()
    records = records_json(report)
    table = viz.trust_table_data(records)
    st.dataframe(table, hide_index=True, key="trust_table")
    st.caption(f"{len(report.sample_ids)} samples, {report.device}, {report.seconds:.0f} s. Intervals: 95 % bootstrap over samples.")
    st.plotly_chart(viz.trust_gap_figure(table), key="fig_trust_gaps")
    with st.expander("Why each verdict"):
        for r in report.records:
            st.markdown(f"**{r.label}**: {VERDICT_BADGE[r.verdict]}")
            for c in r.checks:
                st.markdown(f"- **{c.name}** {STATUS_MARK[c.status]}: {c.line}")
    st.download_button("Download the trust table (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"trust__{ctx.model_label}.csv", mime="text/csv", key="trust_csv", on_click="ignore")
