"""Preprocessing fitted on the training split and stored in the checkpoint.

MM-dynamics' published numbers depend on per-feature min-max scaling with the *train*
minimum and maximum, applied unchanged to any later data (test values may leave [0, 1]).
Keeping the statistics in the checkpoint makes inference on new samples use exactly the
transform the model was trained with.

Two guards keep later values bounded (see :meth:`MinMaxScaler.transform`): a feature constant
in training maps to 0 whatever its value later (the published rule divides by 1e-10 and turns a
0.1 shift into 1e9), and scaled values are clipped to ``[-CLIP_MARGIN, 1 + CLIP_MARGIN]``.
:func:`constant_feature_warnings` names the features a user must hear about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-10
#: Scaled values are clipped to [-CLIP_MARGIN, 1 + CLIP_MARGIN]: ten training ranges beyond the
#: training minimum / maximum. ROSMAP's test split stays inside [-1, 2], so the published
#: numbers do not change; a unit mix-up (a feature in ng instead of ug) cannot reach 1e9.
CLIP_MARGIN = 10.0


@dataclass(frozen=True)
class MinMaxScaler:
    """``x' = (x - min) / (max - min + 1e-10)`` per feature (the MOGONET/MM-dynamics rule)."""

    minimum: np.ndarray
    maximum: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, present: np.ndarray | None = None) -> "MinMaxScaler":
        """Fit on rows of ``x`` ``(N, d)`` where ``present`` is True (all rows if None).

        Missing cells (NaN, e.g. TCGA's RPPA) are ignored; a column with no observed value gets
        min 0 / max 1 so it passes through unchanged (its cells stay NaN = missing).
        """
        rows = x if present is None else x[present]
        if rows.shape[0] == 0:
            raise ValueError("cannot fit min-max scaling: no training sample has this modality")
        observed = np.isfinite(rows)
        lo = np.where(observed, rows, np.inf).min(axis=0)
        hi = np.where(observed, rows, -np.inf).max(axis=0)
        empty = ~observed.any(axis=0)
        lo[empty], hi[empty] = 0.0, 1.0
        return cls(lo.astype(np.float64), hi.astype(np.float64))

    @property
    def constant(self) -> np.ndarray:
        """``(d,)`` bool: features that took a single value in training (max == min)."""
        return self.maximum == self.minimum

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The published rule, bounded: ``(x - min) / (max - min + 1e-10)`` clipped to
        ``[-CLIP_MARGIN, 1 + CLIP_MARGIN]``, and 0 for features constant in training.

        Training values are unchanged (a constant feature already scaled to 0 there), so the
        model is fitted exactly as published; only values far outside the training range are
        held at the bound. NaN cells (missing values) stay NaN.
        """
        scaled = (np.asarray(x, dtype=np.float64) - self.minimum) / (self.maximum - self.minimum + EPS)
        scaled = np.clip(scaled, -CLIP_MARGIN, 1.0 + CLIP_MARGIN)
        scaled = np.where(self.constant & np.isfinite(scaled), 0.0, scaled)
        return scaled.astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "minmax", "min": self.minimum.tolist(), "max": self.maximum.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "MinMaxScaler":
        return cls(np.asarray(data["min"], dtype=np.float64), np.asarray(data["max"], dtype=np.float64))


@dataclass(frozen=True)
class IdentityTransform:
    """No scaling (images already in [0, 1]; data the user scaled)."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "identity"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "IdentityTransform":
        return cls()


_KINDS = {"minmax": MinMaxScaler, "identity": IdentityTransform}


def transform_from_json(data: dict[str, Any]) -> MinMaxScaler | IdentityTransform:
    kind = data.get("kind")
    if kind == "identity" and "reference" in data:  # an image modality with its training statistics
        from .image_reference import ImageReference

        return ImageReference.from_json(data)
    if kind not in _KINDS:
        raise ValueError(f"unknown preprocessing kind {kind!r}; expected one of {sorted(_KINDS)}")
    return _KINDS[kind].from_json(data)


Preprocessing = dict  # modality name -> MinMaxScaler | IdentityTransform


def constant_feature_warnings(preprocessing: dict[str, Any], data, where: str = "in this data") -> list[str]:
    """One warning per modality whose features were constant in training but vary in ``data``.

    Such a feature carried no information for the model (its scaled value was 0 for every
    training sample, and :meth:`MinMaxScaler.transform` keeps it at 0); a different value later
    usually means a unit or batch change that the user should know about.
    """
    out = []
    for j, name in enumerate(data.modality_names):
        scaler = preprocessing.get(name)
        if not isinstance(scaler, MinMaxScaler) or not scaler.constant.any() or not data.present[:, j].any():
            continue
        x = data.features[name][data.present[:, j]].astype(np.float64)
        if x.shape[1] != scaler.minimum.shape[0]:
            continue
        differs = np.isfinite(x) & (x != scaler.minimum) & scaler.constant
        cols = np.flatnonzero(differs.any(axis=0))
        if not len(cols):
            continue
        features = data.schema.modality(name).features or tuple(f"{name}_{k}" for k in range(x.shape[1]))
        shown = ", ".join(f"{features[c]!r} ({scaler.minimum[c]:g} in training, e.g. {x[differs[:, c], c][0]:g} "
                          f"in {int(differs[:, c].sum())} sample(s))" for c in cols[:5])
        more = f" and {len(cols) - 5} more" if len(cols) > 5 else ""
        out.append(f"modality {name!r}: {len(cols)} feature(s) constant in training take other values {where}: "
                   f"{shown}{more}; the model learned nothing from them and their scaled value is held at 0 "
                   "(check the units or the batch of these features)")
    return out


def preprocessing_to_json(pre: dict[str, Any]) -> dict[str, Any]:
    return {name: t.to_json() for name, t in pre.items()}


def preprocessing_from_json(data: dict[str, Any]) -> dict[str, Any]:
    return {name: transform_from_json(t) for name, t in data.items()}
