"""Early fusion specifics (the contract itself is tested for every method in ``test_registered.py``)."""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec

from .base import make_batch, mixed_presence, tiny_schema


@pytest.fixture
def model():
    torch.manual_seed(0)
    return fc.create_model("early", tiny_schema(), hidden_dim=8, head_dim=4).eval()


def test_absent_modality_is_replaced_by_its_learned_missing_embedding(model):
    schema = tiny_schema()
    present = mixed_presence(schema)
    with torch.no_grad():
        out = model(make_batch(schema, present))
    fused = out.embeddings["fusion"]  # (B, M * hidden)
    for j, name in enumerate(schema.modality_names):
        block = fused[:, 8 * j : 8 * (j + 1)]
        absent = ~present[:, j]
        assert torch.equal(block[absent], model.missing_embeddings[name].expand(int(absent.sum()), -1))
        assert torch.equal(block[~absent], out.embeddings[name][~absent])
        assert torch.isnan(out.embeddings[name][absent]).all()  # no explanation for an absent modality


def test_missing_embedding_learns_only_when_its_modality_is_absent(model):
    schema = tiny_schema()
    model.train()
    full = make_batch(schema, torch.ones(4, 3, dtype=torch.bool))
    model.loss(model(full), full).total.backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.missing_embeddings.values())
    model.zero_grad(set_to_none=True)
    present = torch.tensor([[False, True, True]] * 4)
    part = make_batch(schema, present)
    model.loss(model(part), part).total.backward()
    assert torch.count_nonzero(model.missing_embeddings["rna"].grad) > 0
    assert model.missing_embeddings["meth"].grad is None or torch.count_nonzero(model.missing_embeddings["meth"].grad) == 0


def test_linear_head_variant():
    m = fc.create_model("early", tiny_schema(), hidden_dim=8, head_dim=0).eval()
    assert isinstance(m.head, torch.nn.Linear) and m.head.in_features == 24
    out = m(make_batch(tiny_schema(), mixed_presence(tiny_schema())))
    assert torch.isfinite(out.logits).all()


def test_non_tabular_modality_is_refused_by_name():
    schema = DataSchema((ModalitySpec("seq", "sequence", (4, 3)), ModalitySpec("rna", "tabular", (5,))), ("a", "b"))
    with pytest.raises(ValueError, match="supports tabular"):
        fc.create_model("early", schema)
    from fusioncore.models.early import EarlyFusion, EarlyFusionConfig

    with pytest.raises(ValueError, match="'seq'"):
        EarlyFusion(EarlyFusionConfig(), schema)
