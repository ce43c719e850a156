"""Explanations: TCP errors, heatmaps, captum attributions, modality Shapley values, fidelity,
planted-truth recovery.

Imports stay light on purpose (captum, scipy and the figure code load only when a function
that needs them runs); import the submodules directly, e.g.
``from fusioncore.explain.attributions import attribute_dataset``,
``from fusioncore.explain.shapley import modality_shapley``,
``from fusioncore.explain.fidelity import perturbation_curves``,
``from fusioncore.explain.planted import planted_recovery``.
Nothing here writes files or draws: the writers are in :mod:`fusioncore.reports`.
"""
