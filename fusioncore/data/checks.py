"""What a user must hear about a dataset before trusting a result built on it.

The loaders record their findings on the dataset (``notes`` and ``warnings``); a model's
preprocessing adds one more check (features constant in training that vary later). These
functions gather both, so the CLI (:func:`fusioncore.cli.args.report_data`) and the dashboard
(``app/sidebar.py``) show the same messages.
"""

from __future__ import annotations

from typing import Any

from .dataset import DatasetSplits, MultimodalDataset
from .errors import DataError
from .preprocessing import MinMaxScaler, constant_feature_warnings


def data_warnings(data: MultimodalDataset, preprocessing: dict[str, Any] | None = None) -> list[str]:
    """``data``'s own warnings, plus the constant-feature check against a model's preprocessing."""
    found = list(data.warnings)
    if preprocessing:
        found += constant_feature_warnings(preprocessing, data)
    return list(dict.fromkeys(found))


def splits_messages(splits: DatasetSplits) -> tuple[list[str], list[str]]:
    """``(notes, warnings)`` of every split, with the test / validation splits checked for
    features that were constant in the training split (min-max scaling as training fits it)."""
    parts = [("test", splits.test)] + ([("val", splits.val)] if splits.val is not None else [])
    notes = [n for d in (splits.train, *(p for _, p in parts)) for n in d.notes]
    found = [w for d in (splits.train, *(p for _, p in parts)) for w in d.warnings]
    train = splits.train
    scalers = {
        spec.name: MinMaxScaler.fit(train.features[spec.name], train.present[:, j])
        for j, spec in enumerate(train.schema.modalities)
        if spec.kind == "tabular" and train.present[:, j].any()
    }
    for tag, part in parts:
        found += constant_feature_warnings(scalers, part, where=f"in the {tag} split")
    return list(dict.fromkeys(notes)), list(dict.fromkeys(found))


def check_trainable(splits: DatasetSplits) -> None:
    """Refuse training data a classifier cannot learn from: labels of a single class.

    (Scoring a one-class cohort with a trained model is fine, so the loaders only warn.)
    """
    train = splits.train
    if train.labels is None:
        return
    seen = sorted(set(int(k) for k in train.labels))
    if len(seen) < 2:
        only = train.schema.classes[seen[0]] if seen else "none"
        raise DataError(f"{train.source or 'data'}: every training sample has the label {only!r}; a classifier needs "
                        "training samples of at least two classes (check the label column)")
