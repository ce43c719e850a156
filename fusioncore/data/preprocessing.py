"""Preprocessing fitted on the training split and stored in the checkpoint.

MM-dynamics' published numbers depend on per-feature min-max scaling with the *train*
minimum and maximum, applied unchanged to any later data (test values may leave [0, 1]).
Keeping the statistics in the checkpoint makes inference on new samples use exactly the
transform the model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-10


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

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.minimum) / (self.maximum - self.minimum + EPS)).astype(np.float32)

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


def preprocessing_to_json(pre: dict[str, Any]) -> dict[str, Any]:
    return {name: t.to_json() for name, t in pre.items()}


def preprocessing_from_json(data: dict[str, Any]) -> dict[str, Any]:
    return {name: transform_from_json(t) for name, t in data.items()}
