"""Report writers: turn what ``fusioncore.explain`` computes into files (JSON, CSV, figures).

``explain/`` returns arrays and dataclasses; the modules here write them, through
``fusioncore.viz`` for the figures. Import the submodule you need, e.g.
``from fusioncore.reports.trust import write_trust_report``.
"""
