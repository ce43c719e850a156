"""Dashboard logic without a user interface: everything the Streamlit app shows is computed here.

* :mod:`.session`    — one sample explained for one presence pattern (the sample view), model summary;
* :mod:`.cohort`     — predictions and the per-sample table of a cohort, TCP-error summaries;
* :mod:`.robustness` — the metric for every non-empty subset of modalities;
* :mod:`.cache`      — the keys of the dashboard's caches and its thread-safe result store;
* :mod:`.uploads`    — checkpoint ``.zip`` extraction and uploaded CSV/image parsing, validated;
* :mod:`.sources`    — the bundled demo and dataset folders as one cohort.

Nothing here imports streamlit, so every number the dashboard shows is unit-tested here.
"""

# Attributes are imported on first use (PEP 562): the dashboard's first page needs the session
# backend, not scikit-learn (metrics) or the dataset loaders, and every import costs start-up time.
_HOMES = {
    "CohortResult": "cohort", "cohort_table": "cohort", "run_cohort": "cohort", "tcp_arrays": "cohort",
    "tcp_summary": "cohort", "filter_table": "cohort", "fraction_table": "cohort", "HEADLINE_METRICS": "cohort",
    "ResultCache": "cache", "explanation_key": "cache", "attributions_key": "cache", "cohort_key": "cache",
    "sample_trust_key": "cache", "cohort_trust_key": "cache", "slide_run_key": "cache",
    "RobustnessResult": "robustness", "subset_robustness": "robustness",
    "ModelSummary": "session", "SampleExplanation": "session", "explain_sample": "session", "one_click_away": "session",
    "reference_pattern": "session",
    "model_summary": "session", "sample_attributions": "session",
    "DemoAssets": "sources", "combine_splits": "sources", "demo_assets": "sources", "load_cohort": "sources",
    "extract_checkpoint_zip": "uploads", "read_uploaded_samples": "uploads",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "HEADLINE_METRICS",
    "CohortResult",
    "ResultCache",
    "attributions_key",
    "cohort_key",
    "cohort_trust_key",
    "explanation_key",
    "filter_table",
    "fraction_table",
    "reference_pattern",
    "sample_trust_key",
    "slide_run_key",
    "DemoAssets",
    "ModelSummary",
    "RobustnessResult",
    "SampleExplanation",
    "cohort_table",
    "combine_splits",
    "demo_assets",
    "explain_sample",
    "one_click_away",
    "extract_checkpoint_zip",
    "load_cohort",
    "model_summary",
    "read_uploaded_samples",
    "run_cohort",
    "sample_attributions",
    "subset_robustness",
    "tcp_arrays",
    "tcp_summary",
]
