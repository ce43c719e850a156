"""Report writers: turn what ``fusioncore.explain`` and ``fusioncore.slides`` compute into files
(JSON, CSV, TIFF, figures).

``explain/`` and ``slides/`` return arrays and dataclasses; the modules here write them, through
``fusioncore.viz`` for the figures. Import the submodule you need, e.g.
``from fusioncore.reports.trust import write_trust_report`` or
``from fusioncore.reports.slide_run import explain_slide``.
"""
