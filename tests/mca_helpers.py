"""Shared builders for the MCA / Zorro / EAO tests (a schema with sequences and tables, random batches)."""

from __future__ import annotations

import torch

from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.types import Batch


def mixed_schema() -> DataSchema:
    """Two sequences and two tabular modalities (the MCA setting), 2 classes."""
    return DataSchema(
        (
            ModalitySpec("aud", "sequence", (7, 5)),
            ModalitySpec("prot", "tabular", (6,)),
            ModalitySpec("vis", "sequence", (4, 3)),
            ModalitySpec("mirna", "tabular", (5,)),
        ),
        ("neg", "pos"),
    )


def random_batch(schema: DataSchema, b: int, seed: int, p_missing: float = 0.4) -> Batch:
    g = torch.Generator().manual_seed(seed)
    inputs = {m.name: torch.randn(b, *m.shape, generator=g) for m in schema.modalities}
    present = torch.rand(b, len(schema.modalities), generator=g) >= p_missing
    present[0] = False  # a sample with no modality at all
    present[1] = True
    padding = {}
    for m in schema.modalities:
        if m.kind == "sequence":
            lengths = torch.randint(1, m.shape[0] + 1, (b, 1), generator=g)
            padding[m.name] = torch.arange(m.shape[0])[None] < lengths
        else:
            padding[m.name] = torch.rand(b, m.shape[0], generator=g) > 0.25  # missing feature values
    labels = torch.randint(0, 2, (b,), generator=g)
    return Batch(inputs, present, labels, padding=padding)
