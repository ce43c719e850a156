"""A synthetic *sparse* multimodal dataset for MCA / Zorro / EAO that trains on CPU in minutes.

Four modalities share one latent signal ``z ~ N(0, I_k)``: two pre-embedded **sequences** and
two dense **tabular** blocks. Each sees ``z`` through its own random map plus noise, so every
modality alone carries part of the signal and the modalities agree with each other (what
contrastive training needs). The class is a linear function of ``z``
(``argmax(z W)``), so a probe on a good fusion embedding recovers it; ``latent[:, 0]`` is a
continuous target for regression probes.

* ``seq_a``: ``(12, 8)`` tokens, token t = ``z A_a + 0.5 pos_t + noise`` (signal spread over tokens);
* ``seq_b``: ``(8, 6)`` tokens, token t = ``sin(z A_b) * c_t + noise`` (non-linear, token-scaled);
* ``tab_c``: ``16`` features ``z A_c + noise``;
* ``tab_d``: ``12`` features ``tanh(z A_d) + noise``.

Sparsity is the paper's predrop: each modality of each sample is deleted with probability
``sparsity``, once, seeded, *before* the split (``fusioncore.data.predrop``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DataSchema, ModalitySpec
from .dataset import DatasetSplits, MultimodalDataset
from .predrop import apply_predrop
from .splits import held_out_rows, rest

MODALITIES = ("seq_a", "seq_b", "tab_c", "tab_d")


@dataclass(frozen=True)
class SyntheticSparse:
    """The splits plus the latent signal of each split's samples (``(N, k)``, rows in split order)."""

    splits: DatasetSplits
    latent_train: np.ndarray
    latent_test: np.ndarray


def synthetic_sparse_schema(n_classes: int = 2) -> DataSchema:
    return DataSchema(
        modalities=(
            ModalitySpec("seq_a", "sequence", (12, 8)),
            ModalitySpec("seq_b", "sequence", (8, 6)),
            ModalitySpec("tab_c", "tabular", (16,), tuple(f"c{i}" for i in range(16))),
            ModalitySpec("tab_d", "tabular", (12,), tuple(f"d{i}" for i in range(12))),
        ),
        classes=tuple(f"class_{i}" for i in range(n_classes)),
    )


def make_synthetic_sparse(
    n_samples: int = 800,
    *,
    sparsity: float = 0.0,
    n_classes: int = 2,
    latent_dim: int = 4,
    noise: float = 0.5,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> SyntheticSparse:
    """Generate, predrop with ``sparsity`` (seed ``seed + 1``), then split (``data.splits``: a seeded permutation, seed ``seed + 2``)."""
    if n_samples < 8:
        raise ValueError(f"make_synthetic_sparse: n_samples must be >= 8, got {n_samples}")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"make_synthetic_sparse: sparsity must be in [0, 1], got {sparsity}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"make_synthetic_sparse: test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    schema = synthetic_sparse_schema(n_classes)
    z = rng.standard_normal((n_samples, latent_dim))
    labels = np.argmax(z @ rng.standard_normal((latent_dim, n_classes)), axis=1).astype(np.int64)

    def proj(d: int) -> np.ndarray:
        return rng.standard_normal((latent_dim, d)) / np.sqrt(latent_dim)

    a, b = schema.modality("seq_a").shape, schema.modality("seq_b").shape
    pos = rng.standard_normal(a)
    seq_a = (z @ proj(a[1]))[:, None, :] + 0.5 * pos[None] + noise * rng.standard_normal((n_samples,) + a)
    scale_b = 0.5 + rng.random((b[0], 1))
    seq_b = np.sin(z @ proj(b[1]))[:, None, :] * scale_b[None] + noise * rng.standard_normal((n_samples,) + b)
    tab_c = z @ proj(16) + noise * rng.standard_normal((n_samples, 16))
    tab_d = np.tanh(z @ proj(12)) + noise * rng.standard_normal((n_samples, 12))
    features = {k: v.astype(np.float32) for k, v in zip(MODALITIES, (seq_a, seq_b, tab_c, tab_d))}
    data = MultimodalDataset(
        schema=schema,
        features=features,
        present=np.ones((n_samples, 4), dtype=bool),
        labels=labels,
        sample_ids=tuple(f"syn{i:05d}" for i in range(n_samples)),
        source=f"synthetic_sparse(n={n_samples}, sparsity={sparsity}, seed={seed})",
    )
    if sparsity > 0:
        data = apply_predrop(data, sparsity, seed + 1)
        for j, name in enumerate(MODALITIES):  # absent rows hold zeros, as the dataset contract says
            data.features[name][~data.present[:, j]] = 0.0
    test_idx = held_out_rows(n_samples, test_fraction, seed + 2, at_least=1)
    train_idx = rest(n_samples, test_idx)
    return SyntheticSparse(
        splits=DatasetSplits(train=data.subset(train_idx), test=data.subset(test_idx)),
        latent_train=z[train_idx].astype(np.float32),
        latent_test=z[test_idx].astype(np.float32),
    )


def load_synthetic_sparse(spec: str | int = "", **options) -> DatasetSplits:
    """The CLI's ``synthetic-sparse[:SPEC]`` data: ``SPEC`` is a sample count (``"800"``) or
    ``key=value`` pairs (``"n=800,sparsity=0.4,seed=1"``); ``options`` override them."""
    kwargs: dict = {}
    text = str(spec).strip()
    if text:
        for part in text.split(","):
            key, eq, value = part.partition("=")
            if not eq:
                key, value = "n", key
            key = key.strip()
            if key not in ("n", "sparsity", "seed", "n_classes", "noise"):
                raise ValueError(f"synthetic-sparse:{text}: unknown setting {key!r} (use n, sparsity, seed, n_classes, noise)")
            try:
                kwargs[key] = float(value) if key in ("sparsity", "noise") else int(value)
            except ValueError as err:
                raise ValueError(f"synthetic-sparse:{text}: {key}={value!r} is not a number") from err
    kwargs.update(options)
    n = kwargs.pop("n", 800)
    return make_synthetic_sparse(n, **kwargs).splits


__all__ = ["MODALITIES", "SyntheticSparse", "load_synthetic_sparse", "make_synthetic_sparse", "synthetic_sparse_schema"]
