"""Dashboard logic without a user interface: everything the Streamlit app shows is computed here.

* :mod:`.session`    — one sample explained for one presence pattern (the sample view), model summary;
* :mod:`.cohort`     — predictions and the per-sample table of a cohort, TCP-error summaries;
* :mod:`.robustness` — the metric for every non-empty subset of modalities;
* :mod:`.uploads`    — checkpoint ``.zip`` extraction and uploaded CSV/image parsing, validated;
* :mod:`.sources`    — the bundled demo and dataset folders as one cohort.

Nothing here imports streamlit, so every number the dashboard shows is unit-tested here.
"""

from .cohort import CohortResult, cohort_table, run_cohort, tcp_arrays, tcp_summary
from .robustness import RobustnessResult, subset_robustness
from .session import ModelSummary, SampleExplanation, explain_sample, model_summary, sample_attributions
from .sources import DemoAssets, combine_splits, demo_assets, load_cohort
from .uploads import extract_checkpoint_zip, read_uploaded_samples

__all__ = [
    "CohortResult",
    "DemoAssets",
    "ModelSummary",
    "RobustnessResult",
    "SampleExplanation",
    "cohort_table",
    "combine_splits",
    "demo_assets",
    "explain_sample",
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
