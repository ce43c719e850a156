"""Tiny models and data shared by the explanation tests (attributions, Shapley, fidelity)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.dataset import MultimodalDataset
from fusioncore.registry import get_method

# Small values for whichever of these hyper-parameters a method has (keeps every test fast).
TINY = {"hidden_dim": 16, "image_hidden_dim": 16, "dim": 16, "depth": 1, "heads": 2, "dim_head": 8, "ff_mult": 1,
        "head_dim": 16, "token_dim": 16, "n_heads": 2, "n_layers": 1, "tokens_per_modality": 2, "image_gate": "paper"}


def tabular_schema(dims=(5, 4, 3), n_classes: int = 3) -> DataSchema:
    mods = tuple(ModalitySpec(f"m{j}", "tabular", (d,), tuple(f"m{j}_f{i}" for i in range(d))) for j, d in enumerate(dims))
    return DataSchema(mods, tuple(f"c{k}" for k in range(n_classes)))


def methods_for(schema: DataSchema) -> list[str]:
    """Registered methods whose ``supports`` covers every modality kind of ``schema``."""
    kinds = {m.kind for m in schema.modalities}
    return [n for n in fc.list_models() if kinds <= set(get_method(n).supports)]


def tiny_model(name: str, schema: DataSchema, seed: int = 0):
    torch.manual_seed(seed)
    fields = {f.name for f in dataclasses.fields(get_method(name).config_cls)}
    model = fc.create_model(name, schema, **{k: v for k, v in TINY.items() if k in fields})
    return model.eval()


def random_data(schema: DataSchema, n: int = 6, seed: int = 0, absent: dict[int, int] | None = None) -> MultimodalDataset:
    """Random features; ``absent`` maps row -> modality column made absent (zeros + flag)."""
    rng = np.random.default_rng(seed)
    feats = {m.name: rng.normal(size=(n, *m.shape)).astype(np.float32) for m in schema.modalities}
    for m in schema.modalities:
        if m.kind == "image":
            feats[m.name] = rng.random((n, *m.shape)).astype(np.float32)
    present = np.ones((n, len(schema.modalities)), dtype=bool)
    for row, col in (absent or {}).items():
        present[row, col] = False
        feats[schema.modalities[col].name][row] = 0.0
    labels = rng.integers(0, schema.n_classes, n)
    return MultimodalDataset(schema, feats, present, labels, tuple(f"s{i}" for i in range(n)))
