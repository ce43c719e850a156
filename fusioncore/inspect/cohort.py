"""A cohort through a model: predictions, the per-sample table and the TCP-error summaries.

One batched pass (``fusioncore.training.predict``) gives every number of the cohort and TCP
views; the table is what the dashboard sorts and filters, and a row's ``index`` opens that
sample in the sample view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..data.dataset import MultimodalDataset
from ..explain.tcp import threshold_table
from ..metrics import tcp_errors, tcp_statistics, true_tcp
from ..types import FusionOutput
from .session import ensure_aligned

Progress = Callable[[int, int], None]

#: The cohort view's headline metrics: ``(key of CohortResult.metrics(), label, glossary term)``.
HEADLINE_METRICS: tuple[tuple[str, str, str | None], ...] = (
    ("acc", "Accuracy", None), ("balanced_acc", "Balanced accuracy", "balanced accuracy"),
    ("f1_macro", "Macro F1", "macro F1"), ("auc", "AUC", "AUC"))


@dataclass(frozen=True)
class CohortResult:
    """Outputs of a model on a whole cohort (rows in ``data`` order, CPU).

    probabilities: ``(N, K)``; output: the concatenated :class:`FusionOutput`; split: optional
    per-sample split tag (``train``/``test``/``val``) shown in the table.
    """

    data: MultimodalDataset
    probabilities: np.ndarray
    output: FusionOutput
    split: tuple[str, ...] | None = None

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def metrics(self) -> dict[str, float]:
        """Metrics on the held-out rows when the cohort has split tags (test, else val), otherwise
        on every row, so a user never reads training-set accuracy as the model's performance."""
        if self.data.labels is None:
            raise ValueError(f"{self.data.source or 'the cohort'} has no labels: no metrics")
        from ..metrics import classification_metrics  # scikit-learn: imported when metrics are asked for

        rows = self.evaluation_rows
        return classification_metrics(self.data.labels[rows], self.probabilities[rows])

    @property
    def evaluation_split(self) -> str:
        tags = set(self.split or ())
        return next((t for t in ("test", "val") if t in tags), "all")

    @property
    def evaluation_rows(self) -> np.ndarray:
        if self.evaluation_split == "all":
            return np.arange(len(self.data))
        return np.flatnonzero(np.asarray(self.split) == self.evaluation_split)

    @property
    def splits(self) -> tuple[str, ...]:
        """The split tags present, held-out first (``("test", "train")``), or ``("all",)``."""
        tags = list(dict.fromkeys(self.split or ()))
        order = {"test": 0, "val": 1, "train": 2}
        return tuple(sorted(tags, key=lambda t: order.get(t, 3))) or ("all",)

    def split_choices(self) -> list[str]:
        """The splits a view can be restricted to: each tag (held-out first), then ``"all"``."""
        return list(self.splits) + (["all"] if self.splits != ("all",) else [])

    def on_split(self, tag: str) -> "CohortResult":
        """The rows of split ``tag`` only (``"all"``: every row), e.g. the TCP page's held-out view."""
        if tag == "all":
            return self
        if tag not in (self.split or ()):
            raise ValueError(f"split {tag!r} is not in this cohort; its splits are {', '.join(self.splits)}")
        rows = np.flatnonzero(np.asarray(self.split) == tag)
        output = self.output.select(torch.from_numpy(rows))
        return CohortResult(data=self.data.subset(rows), probabilities=self.probabilities[rows], output=output,
                            split=tuple(self.split[i] for i in rows))


def run_cohort(model, data: MultimodalDataset, *, batch_size: int = 64, progress: Progress | None = None,
               split: tuple[str, ...] | None = None) -> CohortResult:
    """Predict every sample of ``data`` (aligned to the model's schema first)."""
    from ..training import predict

    data = ensure_aligned(model, data)
    if len(data) == 0:
        raise ValueError(f"{data.source or 'the cohort'} has no samples")
    pred = predict(model, data, batch_size=batch_size, progress=progress)
    return CohortResult(data=pred.data, probabilities=pred.probabilities, output=pred.output, split=split)


def tcp_arrays(result: CohortResult) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(predicted, true)``: modality -> ``(N,)`` confidence and true TCP, NaN where absent.

    Empty when the method has no TCP confidence or the cohort no labels.
    """
    out, data = result.output, result.data
    if data.labels is None:
        return {}, {}
    predicted, true = {}, {}
    for j, name in enumerate(data.modality_names):
        if name not in out.confidence or name not in out.modality_logits:
            continue
        here = data.present[:, j]
        # float32 in, float64 out: the same arithmetic as ``fusioncore.metrics.tcp_errors``
        conf = out.confidence[name].numpy().astype(np.float64)
        tcp = true_tcp(out.modality_logits[name].numpy(), data.labels).astype(np.float64)
        conf[~here], tcp[~here] = np.nan, np.nan
        predicted[name], true[name] = conf, tcp
    return predicted, true


def tcp_summary(result: CohortResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(statistics, thresholds)``: per modality n, MSE, RMSE, MAE, R², MAPE (%); and the
    fraction of samples with |error| > k·TCP for k = 0.1 … 1.0 (``fusioncore.metrics``)."""
    data = result.data
    errors = {} if data.labels is None else tcp_errors(result.output, data.labels, data.sample_ids, data.modality_names)
    rows = []
    for name, e in errors.items():
        s = tcp_statistics(e)
        rows.append({"modality": name, **{k: s.get(k, float("nan")) for k in ("n", "mse", "rmse", "mae", "r2", "mape")}})
    stats = pd.DataFrame(rows, columns=["modality", "n", "mse", "rmse", "mae", "r2", "mape"])
    return stats, threshold_table(errors)


def cohort_table(result: CohortResult) -> pd.DataFrame:
    """One row per sample: id, truth, prediction, its probability, correctness, and per modality
    presence, confidence, true TCP and TCP error (columns only for what the method gives)."""
    data, probs = result.data, result.probabilities
    classes = list(data.schema.classes)
    pred = probs.argmax(axis=1)
    frame = pd.DataFrame({"index": np.arange(len(data)), "sample_id": list(data.sample_ids)})
    if result.split is not None:
        frame["split"] = list(result.split)
    if data.labels is not None:
        frame["true"] = [classes[k] for k in data.labels]
    frame["predicted"] = [classes[k] for k in pred]
    frame["p_predicted"] = probs[np.arange(len(pred)), pred]
    if data.labels is not None:
        frame["correct"] = pred == data.labels
    predicted, true = tcp_arrays(result)
    for j, name in enumerate(data.modality_names):
        frame[f"{name}:present"] = data.present[:, j]
        if name in result.output.confidence:
            conf = result.output.confidence[name].double().numpy().copy()
            conf[~data.present[:, j]] = np.nan
            frame[f"{name}:confidence"] = conf
        if name in true:
            frame[f"{name}:true_tcp"] = true[name]
            frame[f"{name}:tcp_error"] = predicted[name] - true[name]
    return frame


def filter_table(table: pd.DataFrame, query: str = "", predicted: Sequence[str] = (),
                 wrong_only: bool = False) -> pd.DataFrame:
    """The rows of a :func:`cohort_table` the cohort view's filters keep: ids containing ``query``
    (case-insensitive, literal text, not a pattern), predicted as one of ``predicted`` (empty =
    any), misclassified only when ``wrong_only`` (ignored for a cohort without labels)."""
    shown = table
    if query:
        shown = shown[shown["sample_id"].str.contains(query, case=False, regex=False)]
    if predicted:
        shown = shown[shown["predicted"].isin(list(predicted))]
    if wrong_only and "correct" in shown:
        shown = shown[~shown["correct"].astype(bool)]
    return shown


def fraction_table(fractions: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """:func:`tcp_summary`'s threshold rows as a ``k`` x modality table, columns in ``modalities`` order."""
    return fractions.pivot(index="k", columns="modality", values="fraction")[list(modalities)]
