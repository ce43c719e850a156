"""Plotly figure builders and figure export (the only part of fusioncore that imports plotly).

Builders take arrays/dataclasses, never models, and return ``plotly.graph_objects.Figure``
(never shown). Each view ``<view>_figure`` has a sibling ``<view>_data`` returning the tidy
``pandas.DataFrame`` it is drawn from (the CSV export). :func:`export_figure` /
:func:`figure_bytes` write PNG/SVG/PDF/HTML/CSV/JSON with provenance.
"""

from .export import (
    ALL_FORMATS,
    ExportBytes,
    ExportResult,
    StaticExportError,
    export_figure,
    export_ready,
    figure_bytes,
    find_browser,
    make_export_stem,
    package_versions,
    provenance,
    render_static,
)
from ._common import add_subtitle, plain_text
from .figures_cohort import (
    all_subsets,
    fidelity_curve_figure,
    missing_rate_data,
    missing_rate_figure,
    robustness_data,
    robustness_figure,
    tcp_error_data,
    tcp_fraction_data,
    tcp_fraction_table_figure,
    tcp_relative_error_histogram,
    tcp_scatter_figure,
)
from .figures_maps import (
    attention_map_data,
    attention_map_figure,
    attention_mask_data,
    attention_mask_figure,
    channel_modality_data,
    channel_modality_figure,
    image_heatmap_data,
    image_heatmap_figure,
    token_labels,
)
from .figures_patches import patch_attention_data, patch_attention_figure
from .figures_trust import (
    VERDICT_COLORS,
    randomisation_curve_data,
    randomisation_curve_figure,
    trust_gap_figure,
    trust_table_data,
)
from .figures_sample import (
    attribution_bar_data,
    attribution_bar_figure,
    attribution_heatmap_data,
    attribution_heatmap_figure,
    class_probabilities_data,
    class_probabilities_figure,
    feature_gates_data,
    feature_gates_figure,
    modality_confidence_data,
    modality_confidence_figure,
    modality_contribution_data,
    modality_contribution_figure,
    ranked_features_data,
)

from types import ModuleType as _ModuleType

__all__ = sorted(n for n, v in dict(globals()).items() if not n.startswith("_") and not isinstance(v, _ModuleType))
