"""Late fusion specifics (the contract itself is tested for every method in ``test_registered.py``)."""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.models.late import LateFusionConfig, modality_contributions

from .base import make_batch, mixed_presence, tiny_schema


def _model(decision: str):
    torch.manual_seed(0)
    return fc.create_model("late", tiny_schema(), hidden_dim=8, decision=decision).eval()


def test_mean_decision_is_the_average_of_present_unimodal_logits():
    model = _model("mean")
    schema = tiny_schema()
    present = mixed_presence(schema)
    with torch.no_grad():
        out = model(make_batch(schema, present))
    raw = torch.stack([out.extras["raw_modality_logits"][n] for n in schema.modality_names], dim=1)  # (B, M, K)
    expected = (raw * present.unsqueeze(-1)).sum(1) / present.sum(1, keepdim=True)
    assert torch.allclose(out.logits, expected, atol=1e-6)


@pytest.mark.parametrize("decision", ["learned", "static", "mean"])
def test_contributions_sum_to_logits_and_weights_are_a_distribution(decision):
    model = _model(decision)
    schema = tiny_schema()
    present = mixed_presence(schema)
    with torch.no_grad():
        out = model(make_batch(schema, present, seed=3))
    contrib = modality_contributions(out)
    assert torch.allclose(sum(contrib.values()), out.logits, atol=1e-6)
    weights = torch.stack([out.modality_weights[n] for n in schema.modality_names], dim=1)
    assert torch.allclose(weights.sum(1), torch.ones(len(present)), atol=1e-6)
    assert torch.count_nonzero(weights[~present]) == 0
    for j, name in enumerate(schema.modality_names):
        assert torch.isnan(out.modality_logits[name][~present[:, j]]).all()


def test_one_present_modality_predicts_with_its_own_classifier():
    model = _model("learned")
    schema = tiny_schema()
    present = torch.tensor([[False, True, False]] * 2)
    with torch.no_grad():
        out = model(make_batch(schema, present))
    assert torch.equal(out.logits, out.modality_logits["meth"])


def test_unimodal_losses_only_over_present_rows():
    model = _model("learned")
    schema = tiny_schema()
    present = mixed_presence(schema)
    batch = make_batch(schema, present)
    out = model(batch)
    terms = model.loss(out, batch).terms
    raw = out.extras["raw_modality_logits"]["rna"]
    rows = present[:, 0]
    expected = torch.nn.functional.cross_entropy(raw[rows], batch.labels[rows])
    assert torch.allclose(terms["ce_rna"], expected)


def test_unknown_decision_is_refused():
    with pytest.raises(ValueError, match="decision"):
        LateFusionConfig(decision="vote")
