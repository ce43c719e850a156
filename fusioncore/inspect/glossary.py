"""What every number, explanation and control of the dashboard means, in plain words.

One table (:data:`TERMS`) feeds both the short help text beside each control or figure
(``Term.short``, a tooltip) and the glossary page (``Term.long``), so a tooltip and the
glossary can never disagree. The dashboard looks terms up with :func:`help_text`; an unknown
term is a ``KeyError`` (a typo in a page must fail its test, not show an empty tooltip).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """A glossary entry: ``short`` for a tooltip (one sentence), ``long`` for the glossary page."""

    name: str
    short: str
    long: str
    group: str


_ENTRIES = [
    # -- prediction -------------------------------------------------------------------------
    Term("prediction", "The class with the highest probability for this sample, from the modalities switched on.",
         "The model's class for the sample: the arg-max of the class probabilities computed from the modalities "
         "that are switched on (and present in the data). Switching a modality off re-runs the model with that "
         "modality flagged absent — its values are never replaced by zeros.", "Prediction"),
    Term("probability", "Softmax of the model's fused output: the model's probability for each class.",
         "The softmax of the fused logits. The bars beside them (\"all present\") are the prediction with every "
         "modality the sample has; the signed number above a bar is the change switching modalities off caused.",
         "Prediction"),
    Term("modality switch", "On: the model sees this modality. Off: it is flagged absent, as if it were never measured.",
         "One switch per modality. Off sets the modality's presence flag to false for this sample only; the model "
         "then predicts from the rest (the same mechanism as a genuinely missing modality). A greyed-out switch "
         "means the modality is missing in this sample's data.", "Prediction"),
    Term("split", "Which part of the data the sample belongs to: train (seen during training), test or val (held out).",
         "The split a sample came from. Numbers on training samples flatter the model — it has seen them — so the "
         "dashboard opens on held-out samples and computes cohort metrics on the test (else validation) split.",
         "Prediction"),
    Term("explained class", "The class an explanation is computed for (the predicted class unless stated).",
         "Attributions and patch maps answer \"what pushed the model towards class C\"; C is named above each "
         "explanation. Unless stated otherwise it is the predicted class.", "Prediction"),
    # -- modality informativeness -----------------------------------------------------------
    Term("TCP", "True-class probability: the softmax probability a modality's own classifier gives the true class.",
         "TCP (true-class probability, Corbière et al. 2019) of modality m = softmax(unimodal logits of m)[true "
         "class]. It is a probability in [0, 1] and needs the label, so it is known only for labelled samples.",
         "Modality informativeness"),
    Term("confidence", "MM-dynamics' predicted TCP: a raw linear output (not a probability; it can leave [0, 1]).",
         "MM-dynamics learns to predict each modality's TCP with a linear layer c = W·h (no sigmoid), trained with a "
         "squared error against the true TCP. It is the model's estimate of how informative the modality is for this "
         "sample, on the TCP scale but not bounded: values such as 1.28 mean \"very informative\", not a probability "
         "above one. The hidden vector is multiplied by it before fusion.", "Modality informativeness"),
    Term("modality informativeness", "How much the model relies on each modality for this sample (its confidence or weight).",
         "Per-modality numbers the model itself computes: MM-dynamics' predicted TCP (confidence), or a fusion "
         "weight (late / hybrid fusion). A switched-off or missing modality has none.", "Modality informativeness"),
    Term("TCP error", "Predicted confidence minus true TCP: how wrong the model is about a modality's usefulness.",
         "For each labelled sample and modality: confidence − true TCP. The TCP error page summarises it over the "
         "chosen split (MSE, RMSE, MAE, R², MAPE) and counts the samples whose |error| exceeds k·TCP.",
         "Modality informativeness"),
    Term("relative error", "(confidence − true TCP) / true TCP for one sample and modality.",
         "The TCP error divided by the true TCP. Large when the true TCP is small, so the histogram is clipped to "
         "the central range and the fraction table counts |error| > k·TCP instead.", "Modality informativeness"),
    Term("modality weight", "The fusion weight a late/hybrid model gives each modality for this sample.",
         "Late fusion averages per-modality predictions with learned weights; hybrid fusion reads them off its "
         "readout attention. Weights of the present modalities sum to one.", "Modality informativeness"),
    # -- feature informativeness ------------------------------------------------------------
    Term("feature gate", "MM-dynamics' per-feature gate in [0, 1]: how much of a feature the model lets through for this sample.",
         "Feature informativeness: a sigmoid gate per input feature, computed from the sample itself and "
         "multiplied with the feature before encoding (trained with an L1 sparsity penalty). High = the model uses "
         "the feature for this sample.", "Feature informativeness"),
    Term("top k", "How many of the highest-scoring features or patches to show.",
         "Only the k highest gates (or attributions, or patches) are drawn; the CSV export holds every value.",
         "Feature informativeness"),
    Term("feature search", "Show only features whose name matches (a substring or a regular expression such as ^mrna).",
         "Filters the feature-gate bars by name: plain text matches anywhere (case-insensitive); text with regex "
         "characters is used as a regular expression.", "Feature informativeness"),
    # -- image maps -------------------------------------------------------------------------
    Term("patch map", "The U-Net gate's informativeness per image patch (constant on each patch), over the tile.",
         "MM-dynamics with an image modality gates its pixels with a U-Net; the gate is averaged over square "
         "patches so the map says which patches the model keeps. The top-k patches are outlined.", "Image maps"),
    Term("opacity", "How strongly the map is drawn over the image (0 = image only, 1 = map only).",
         "The overlay's alpha. The side-by-side panel always shows the map at full strength.", "Image maps"),
    Term("colour map", "The colour scale of the map (low to high).",
         "Viridis, Inferno, Magma and Plasma are perceptually uniform (equal steps look equal); Jet and Hot are not.",
         "Image maps"),
    Term("clip percentiles", "The colour range runs from these percentiles of the map, so a few extreme patches do not wash it out.",
         "Values below the low percentile get the lowest colour, above the high percentile the highest. (2, 98) "
         "keeps the 2 % extremes from making every other patch look uniformly cold; (0, 100) shows the raw range.",
         "Image maps"),
    Term("top-k patches", "Outline the k patches with the highest values.",
         "Outlined patches are ranked by the map's value per patch (ties broken by position); 0 outlines none.",
         "Image maps"),
    Term("input rule", "How an image becomes the model's input: scaled so it covers the input, then centre-cropped (no squashing).",
         "An image is scaled (bilinear) until it covers the model's input size, keeping its aspect ratio, and the "
         "centre is cropped; a square image is simply resized. Training images went through the same rule, so "
         "nothing is stretched. Tiled whole-image maps cut tiles at the input size instead (no scaling).",
         "Image maps"),
    Term("out of distribution", "The uploaded image differs from the training images (size, aspect, colours or resolution): read its map with care.",
         "The checkpoint stores statistics of its training images (input size, per-image colour means and spread, "
         "microns per pixel when known). An uploaded image far outside them — another size, a non-square crop, other "
         "staining colours, another magnification — is one the model has never seen; its prediction and maps may "
         "mean nothing. Checkpoints trained before these statistics existed cannot be checked.", "Image maps"),
    Term("whole-image map", "A large image cut into model-sized tiles, each tile's patch map stitched back at full resolution.",
         "Tiles are cut at the model's input size (no scaling), so the map keeps the image's resolution; tile edges "
         "can show as seams because each tile is judged on its own.", "Image maps"),
    # -- attributions -----------------------------------------------------------------------
    Term("attribution", "How much each input feature or pixel pushed the explained class's score up (red) or down (blue).",
         "Captum attributions of the explained class's logit. Red (positive) = the value pushed towards the class, "
         "blue (negative) = away from it, relative to the baseline (the cohort's mean per modality). Image maps "
         "show |attribution| (size only).", "Attributions"),
    Term("Integrated Gradients", "Gradients averaged along a straight path from the baseline to the sample (Sundararajan et al. 2017).",
         "Attributions that sum to the score difference between the sample and the baseline (completeness).",
         "Attributions"),
    Term("GradientShap", "Expected gradients over random points between noisy baselines and the sample.",
         "A sampling approximation of SHAP values; noisier than Integrated Gradients, less sensitive to the baseline.",
         "Attributions"),
    Term("Feature Ablation", "The score change when each feature (or patch) is replaced by the baseline, one at a time.",
         "Model-agnostic, one forward pass per feature group; ignores interactions between features.",
         "Attributions"),
    Term("Occlusion", "The score change when a sliding window of the input is replaced by the baseline.",
         "Feature ablation with a window (patches of the image); cost grows with the number of windows.",
         "Attributions"),
    # -- attention --------------------------------------------------------------------------
    Term("attention mask", "Which token may attend to which (True = may attend); absent modalities are masked out.",
         "The boolean mask the transformer uses; the modalities switched off are masked (grey).", "Attention"),
    Term("attention map", "The attention weights of one layer (one head, or the mean over heads).",
         "Rows are queries, columns keys; each row sums to one over the keys it may attend to.", "Attention"),
    Term("mass", "The share of a fusion channel's attention that goes to each modality's tokens (rows sum to one).",
         "Channel x modality mass: for each fusion channel (e.g. MCA's per-modality channels, Zorro's fusion "
         "tokens) the attention summed over each modality's tokens.", "Attention"),
    Term("patch attention", "The share of one reader's attention to an image that goes to each of its patches.",
         "For models that cut an image into patch tokens (MCA, Zorro, EAO, hybrid with image_tokens='patches'): "
         "mean over layers, heads and the reader's tokens, divided by the reader's total attention on the image; "
         "drawn over the tile, the red boxes are the most attended patches.", "Attention"),
    Term("reader", "Who attends to the image: a fusion channel, the image's return token or readout, or its own patches.",
         "Fusion channels that may see the image (MCA: every channel containing it; Zorro: its one channel; hybrid: "
         "the fusion token), the pooling query (return token / readout), and the patches themselves (attention received).",
         "Attention"),
    # -- cohort -----------------------------------------------------------------------------
    Term("p_predicted", "The probability of the predicted class for that sample.",
         "Column of the cohort table: softmax probability of the arg-max class.", "Cohort"),
    Term("balanced accuracy", "The mean of the per-class recalls (accuracy that does not reward predicting the majority class).",
         "scikit-learn's balanced_accuracy_score on the evaluation split.", "Cohort"),
    Term("macro F1", "The unweighted mean of the per-class F1 scores.", "scikit-learn's f1_score(average='macro').",
         "Cohort"),
    Term("AUC", "Area under the ROC curve (one-vs-rest, macro-averaged for more than two classes).",
         "scikit-learn's roc_auc_score of the class probabilities.", "Cohort"),
    Term("robustness matrix", "The metric with only a subset of modalities switched on, for every non-empty subset.",
         "2^M − 1 batched passes over the cohort; samples that keep none of the subset's modalities are left out "
         "(n_excluded).", "Cohort"),
    Term("synthetic demo", "The bundled demo is synthetic: generated tiles and omics with planted evidence, not patients.",
         "fusioncore/assets/demo holds a generated cohort (64 x 64 tiles with evidence planted in known 8 x 8 patches, omics "
         "with named informative features) and models trained on it. It shows how the views work and lets "
         "explanations be scored against the planted truth; its models have never seen real tissue.", "Cohort"),
]

TERMS: dict[str, Term] = {t.name: t for t in _ENTRIES}
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(t.group for t in _ENTRIES))


def help_text(name: str) -> str:
    """The one-sentence help of ``name`` (a key of :data:`TERMS`)."""
    return TERMS[name].short


def terms_in(group: str) -> list[Term]:
    """Entries of one glossary section, in reading order."""
    return [t for t in _ENTRIES if t.group == group]
