"""The dashboard's figures, by view name: explanation/cohort objects in, figure + data out.

Each function returns a :class:`FigureBundle`: the plotly figure (from ``fusioncore.viz``), the
tidy frame it is drawn from (the CSV export) and what its export is named after and records:
view, sample, explained (or predicted) class, switched-off modalities and the value of every
control that shaped it; :meth:`FigureBundle.titled_figure` writes that line under the title of
the exported figure, so it says what it shows without its file name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import viz
from .cohort import CohortResult, tcp_arrays, tcp_summary
from .robustness import RobustnessResult
from .session import SampleExplanation

COLORSCALES = ("Viridis", "Inferno", "Magma", "Plasma", "Hot", "Jet", "Greys", "RdBu")


@dataclass(frozen=True)
class FigureBundle:
    """A figure, the data behind it, and what its export files are named after and record.

    class_label:  ``"predicted <class>"`` or ``"explained <class>"`` (attributions), or None.
    switched_off: modalities the sample has but that were switched off for this figure.
    controls:     every control's value (opacity, colour map, clip, top-k, layer, metric, ...).
    """

    view: str
    figure: Any
    data: pd.DataFrame
    sample_id: str | None = None
    extra: dict | None = None
    class_label: str | None = None
    switched_off: tuple[str, ...] = ()
    controls: dict = field(default_factory=dict)
    rows: str | None = None  # cohort figures: which samples (e.g. "test split, 106 samples")

    @property
    def description(self) -> str:
        """``sample S · predicted C · without a, b`` (the parts that apply)."""
        parts = [f"sample {self.sample_id}" if self.sample_id is not None else None, self.class_label,
                 f"without {', '.join(self.switched_off)}" if self.switched_off else None, self.rows]
        return " · ".join(p for p in parts if p)

    def export_stem(self, model_label: str | None = None) -> str:
        """A file-system-safe stem: view, model, sample, class, switched-off modalities, e.g.
        ``heatmap-histology__demo__S-12__predicted-lymphoid__without-mrna``."""
        parts = [self.class_label.replace(" ", "-") if self.class_label else None,
                 "without-" + "+".join(self.switched_off) if self.switched_off else None,
                 f"split-{self.controls['split']}" if "split" in self.controls else None]
        return viz.make_export_stem(self.view, model_label, self.sample_id, *[p for p in parts if p])

    def titled_figure(self):
        """A copy of the figure with :attr:`description` under its title, for export. The page
        draws the plain figure: its JSON then stays the same when only another modality's
        switch changed, and the browser does not redraw it."""
        import plotly.graph_objects as go

        return viz.add_subtitle(go.Figure(self.figure), self.description)

    def provenance_extra(self) -> dict:
        """What the provenance JSON records about this figure beyond the model and data."""
        return {**(self.extra or {}), "figure": self.description, "class": self.class_label,
                "switched_off": list(self.switched_off), "controls": dict(self.controls)}


def _with_description(bundle: FigureBundle, exp: SampleExplanation, params: dict, class_label: str | None = None
                      ) -> FigureBundle:
    """``bundle`` with the sample's class, switched-off modalities and controls, written under its title."""
    off = tuple(m for m, a, p in zip(exp.modality_names, exp.available, exp.present) if a and not p)
    bundle = replace(bundle, class_label=class_label or f"predicted {exp.predicted_class}", switched_off=off,
                     controls={k: _plain(v) for k, v in params.items()})
    return bundle


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def probabilities(exp: SampleExplanation) -> FigureBundle:
    fig = viz.class_probabilities_figure(exp.probabilities, exp.classes, reference=exp.reference, true_class=exp.true_class)
    data = viz.class_probabilities_data(exp.probabilities, exp.classes, reference=exp.reference, true_class=exp.true_class)
    return FigureBundle("probabilities", fig, data, exp.sample_id)


def confidence(exp: SampleExplanation) -> FigureBundle:
    """Modality informativeness (and true TCP with its error when the label is known)."""
    names = list(exp.modality_names)
    kw = dict(present=list(map(bool, exp.present)), true_tcp=exp.true_tcp or None)
    if exp.confidence:
        fig = viz.modality_confidence_figure(exp.confidence, names, **kw)
        data = viz.modality_confidence_data(exp.confidence, names, **kw)
        return FigureBundle("confidence", fig, data, exp.sample_id)
    if exp.modality_weights:
        fig = viz.modality_contribution_figure(exp.modality_weights, names, present=kw["present"],
                                               title="Modality weights", value_name="weight")
        data = viz.modality_contribution_data(exp.modality_weights, names, present=kw["present"], value_name="weight")
        return FigureBundle("modality-weights", fig, data, exp.sample_id)
    raise ValueError(f"method {exp.method!r} gives no per-modality confidence or weight")


def gates(exp: SampleExplanation, modality: str, top_k: int = 20, search: str = "") -> FigureBundle:
    """Top-k feature gates of one tabular modality, filtered by a name search."""
    present = modality in exp.gates
    g = exp.gates.get(modality, np.zeros(len(exp.feature_names.get(modality, ())) or 1))
    names = exp.feature_names.get(modality) or None
    fig = viz.feature_gates_figure(g, names, top_k=top_k, name_filter=search or None, present=present, modality=modality)
    data = viz.feature_gates_data(g, names, top_k=None, name_filter=search or None, present=present)
    return FigureBundle(f"gates-{modality}", fig, data, exp.sample_id)


def heatmap(exp: SampleExplanation, modality: str, opacity: float = 0.5, colorscale: str = "Viridis",
            clip: tuple[float, float] = (2.0, 98.0), top_k: int = 5, side_by_side: bool = True) -> FigureBundle:
    """The U-Net patch map over the image, clipped at percentiles so outliers do not wash it out."""
    image = exp.images[modality]
    present = modality in exp.gates
    heat = exp.gates.get(modality, np.zeros(image.shape[1:]))
    fig = viz.image_heatmap_figure(image, heat, opacity=opacity, colorscale=colorscale, clip_percentiles=tuple(clip),
                                   top_k=top_k, patch_size=exp.patch_size, side_by_side=side_by_side, present=present,
                                   title=f"Image informativeness ({modality})")
    data = viz.image_heatmap_data(image, heat, patch_size=exp.patch_size, top_k=top_k) if present else pd.DataFrame()
    return FigureBundle(f"heatmap-{modality}", fig, data, exp.sample_id)


def _attention(exp: SampleExplanation):
    if exp.attention is None or not exp.attention.layers:
        raise ValueError(f"method {exp.method!r} returns no attention maps (only mca, zorro and eao do)")
    return exp.attention


def attention_mask(exp: SampleExplanation) -> FigureBundle:
    att = _attention(exp)
    labels = viz.token_labels(att, list(exp.modality_names)) if att.token_modality is not None else None
    fig = viz.attention_mask_figure(att.mask, labels)
    return FigureBundle("attention-mask", fig, viz.attention_mask_data(att.mask, labels), exp.sample_id)


def attention_layer(exp: SampleExplanation, layer: int = -1, head: int | None = None) -> FigureBundle:
    att = _attention(exp)
    kw = dict(layer=layer, head=head, sample=0, present=list(map(bool, exp.present)))
    fig = viz.attention_map_figure(att, list(exp.modality_names), **kw)
    data = viz.attention_map_data(att, list(exp.modality_names), **kw)
    return FigureBundle(f"attention-l{layer}-{'mean' if head is None else f'h{head}'}", fig, data, exp.sample_id)


def channel_modality(exp: SampleExplanation) -> FigureBundle:
    att = _attention(exp)
    kw = dict(sample=0, present=list(map(bool, exp.present)))
    fig = viz.channel_modality_figure(att, list(exp.modality_names), **kw)
    return FigureBundle("channel-modality", fig, viz.channel_modality_data(att, list(exp.modality_names), **kw), exp.sample_id)


def patch_attention(exp: SampleExplanation, modality: str, reader: str | None = None, layer: int | None = None,
                    head: int | None = None, top_k: int = 5, opacity: float = 0.55,
                    colorscale: str = "Viridis") -> FigureBundle:
    """Attention to each patch of image ``modality`` (models that cut it into patch tokens): every
    reader's map over the tile (``reader=None``) or one reader's at full size, beside the tile."""
    from ..explain.attention_patches import patch_attention as compute

    att = _attention(exp)
    image = exp.images[modality]
    j = list(exp.modality_names).index(modality)
    stem = f"patch-attention-{modality}" + ("" if reader is None else f"-{reader}")
    if not exp.present[j]:
        fig = viz.patch_attention_figure(image, np.zeros((1, 1, 1)), ["-"], present=False)
        return FigureBundle(stem, fig, pd.DataFrame(), exp.sample_id)
    grid = (image.shape[1] // exp.patch_size, image.shape[2] // exp.patch_size)
    pa = compute(att, j, grid, modality_name=modality, layer=layer, head=head)
    maps, mass, readers = pa.maps[0], pa.mass[0], list(pa.readers)
    if reader is not None:
        if reader not in readers:
            raise ValueError(f"no attention reader {reader!r} for {modality}; readers: {', '.join(readers)}")
        k = readers.index(reader)
        maps, mass, readers = maps[k : k + 1], mass[k : k + 1], [reader]
        fig = viz.image_heatmap_figure(image, maps[0], opacity=opacity, colorscale=colorscale, top_k=top_k,
                                       title=f"Attention of {reader} to each {modality} patch (share)")
    else:
        fig = viz.patch_attention_figure(image, maps, readers, mass=mass, opacity=opacity, colorscale=colorscale,
                                         top_k=top_k)
    return FigureBundle(stem, fig, viz.patch_attention_data(maps, readers, mass=mass, top_k=top_k), exp.sample_id)


def attributions(attr, modality: str, top_k: int = 20, patch_size: int = 8, image: Any = None,
                 exp: SampleExplanation | None = None) -> FigureBundle:
    """Captum attributions of one sample (``Attributions`` with one row) for one modality.

    ``exp`` (the sample's explanation under the same pattern) names the switched-off modalities;
    the explained class is the attribution's own target.
    """
    kind = attr.kinds[modality]
    label = attr.method
    sid = attr.sample_ids[0]
    scores = attr.scores(modality)[0]
    classes = exp.classes if exp is not None else None
    target = int(attr.target[0])
    explained = classes[target] if classes is not None else str(target)
    if kind == "image":
        heat = np.abs(scores)
        fig = viz.image_heatmap_figure(image, heat, clip_percentiles=(1, 99), top_k=top_k, patch_size=patch_size,
                                       title=f"|attribution| ({label}, {modality})", present=bool(np.isfinite(heat).any()))
        data = viz.image_heatmap_data(image, np.nan_to_num(heat), patch_size=patch_size, top_k=top_k)
    else:
        names = attr.feature_names.get(modality)
        fig = viz.attribution_bar_figure(scores, names, top_k=top_k, method=f"{label}, {modality}")
        data = viz.attribution_bar_data(scores, names, top_k=None) if np.isfinite(scores).any() else pd.DataFrame()
    bundle = FigureBundle(f"attr-{label}-{modality}", fig, data, sid)
    params = {"method": label, "top_k": top_k, "target": explained}
    if exp is None:
        return replace(bundle, class_label=f"explained {explained}", controls=params)
    return _with_description(bundle, exp, params, class_label=f"explained {explained}")


SAMPLE_VIEWS = {
    "probabilities": probabilities,
    "confidence": confidence,
    "gates": gates,
    "heatmap": heatmap,
    "attention_mask": attention_mask,
    "attention_layer": attention_layer,
    "channel_modality": channel_modality,
    "patch_attention": patch_attention,
}


def sample_figure(view: str, exp: SampleExplanation, **params: Any) -> FigureBundle:
    """The figure ``view`` of ``exp`` with controls ``params``, titled with what it shows."""
    if view not in SAMPLE_VIEWS:
        raise ValueError(f"unknown sample view {view!r}; views: {', '.join(SAMPLE_VIEWS)}")
    return _with_description(SAMPLE_VIEWS[view](exp, **params), exp, params)


# -- cohort views -----------------------------------------------------------------------------


def _tcp(result: CohortResult):
    predicted, true = tcp_arrays(result)
    if not predicted:
        raise ValueError("no TCP errors: the method has no TCP confidence (MM-dynamics has) or the cohort has no labels")
    return predicted, true


def tcp_scatter(result: CohortResult) -> FigureBundle:
    predicted, true = _tcp(result)
    ids = list(result.data.sample_ids)
    fig = viz.tcp_scatter_figure(predicted, true, sample_ids=ids)
    return FigureBundle("tcp-scatter", fig, viz.tcp_error_data(predicted, true, sample_ids=ids))


def tcp_histogram(result: CohortResult, nbins: int = 30) -> FigureBundle:
    predicted, true = _tcp(result)
    fig = viz.tcp_relative_error_histogram(predicted, true, nbins=nbins)
    return FigureBundle("tcp-relative-error", fig, viz.tcp_error_data(predicted, true, sample_ids=list(result.data.sample_ids)))


def tcp_fractions(result: CohortResult) -> FigureBundle:
    predicted, true = _tcp(result)
    return FigureBundle("tcp-fractions", viz.tcp_fraction_table_figure(predicted, true), viz.tcp_fraction_data(predicted, true))


def sample_confidence_table(exp: SampleExplanation) -> pd.DataFrame:
    """One row per modality with a confidence: whether it was used, its predicted confidence, true TCP
    and the error, as text (3 decimals); a modality not used says why instead of showing numbers.

    Text, not floats, because a table widget renders a missing float as "None", which reads as a
    value; here an unused modality's cells are "—" and its status says "switched off" or "missing
    in the data".
    """
    rows = []
    for j, m in enumerate(exp.modality_names):
        if m not in exp.confidence and m not in exp.true_tcp:
            continue
        if exp.present[j]:
            status = "used"
        elif exp.available[j]:
            status = "switched off"
        else:
            status = "missing in the data"
        values = {"confidence": exp.confidence.get(m, float("nan")), "true TCP": exp.true_tcp.get(m, float("nan")),
                  "error": exp.tcp_error.get(m, float("nan"))}
        rows.append({"modality": m, "status": status,
                     **{k: "—" if not np.isfinite(v) else f"{v:.3f}" for k, v in values.items()}})
    return pd.DataFrame(rows, columns=["modality", "status", "confidence", "true TCP", "error"])


def tcp_statistics_table(result: CohortResult) -> pd.DataFrame:
    return tcp_summary(result)[0]


def robustness(result: RobustnessResult, metric: str = "balanced_acc") -> FigureBundle:
    values = result.values(metric)
    fig = viz.robustness_figure(values, list(result.modalities), metric=metric)
    data = result.frame
    return FigureBundle(f"robustness-{metric}", fig, data)


COHORT_VIEWS = {
    "tcp_scatter": tcp_scatter,
    "tcp_histogram": tcp_histogram,
    "tcp_fractions": tcp_fractions,
    "robustness": robustness,
}


def cohort_figure(view: str, result: Any, split: str | None = None, **params: Any) -> FigureBundle:
    """The cohort figure ``view`` of ``result`` (a ``CohortResult``, restricted to ``split`` when
    given, or a ``RobustnessResult``), titled with the rows it shows."""
    if view not in COHORT_VIEWS:
        raise ValueError(f"unknown cohort view {view!r}; views: {', '.join(COHORT_VIEWS)}")
    if split is not None:
        result = result.on_split(split)
    bundle = COHORT_VIEWS[view](result, **params)
    n = len(result.data)
    rows = f"all {n} samples" if split in (None, "all") else f"{split} split, {n} samples"
    controls = {k: _plain(v) for k, v in params.items()}
    return replace(bundle, rows=rows, controls={**({"split": split} if split is not None else {}), **controls})
