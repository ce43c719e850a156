"""MM-static: fixed per-modality scalars, no gates, no TCP (spec §5a)."""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.types import Batch

SCHEMA = DataSchema(
    (
        ModalitySpec("img", "image", (3, 64, 64)),
        ModalitySpec("rna", "tabular", (5,), tuple("abcde")),
        ModalitySpec("prot", "tabular", (4,), tuple("wxyz")),
    ),
    ("p", "q"),
)


def _batch(present=None) -> Batch:
    g = torch.Generator().manual_seed(1)
    n = 4
    return Batch(
        inputs={"img": torch.rand(n, 3, 64, 64, generator=g), "rna": torch.rand(n, 5, generator=g), "prot": torch.rand(n, 4, generator=g)},
        present=torch.ones(n, 3, dtype=torch.bool) if present is None else present,
        labels=torch.tensor([0, 1, 1, 0]),
    )


def test_registered_with_paper_defaults():
    assert "mmstatic" in fc.list_models()
    entry = fc.get_method("mmstatic")
    assert entry.train_defaults.epochs == 250 and entry.train_defaults.batch_size == 1024
    model = fc.create_model("mmstatic", SCHEMA, hidden_dim=8, image_hidden_dim=8)
    assert model.config.class_weighted
    assert model.scalars.tolist() == [6.0, 1.0, 1.0]


def test_fixed_scalars_weight_the_latents_exactly():
    torch.manual_seed(0)
    model = fc.create_model("mmstatic", SCHEMA, hidden_dim=8, image_hidden_dim=8, dropout=0.0,
                            modality_scalars={"img": 6.0, "rna": 1.0, "prot": 3.0}).eval()
    batch = _batch()
    out = model(batch)
    assert not out.gates and not out.confidence  # no gates, no TCP
    z = torch.cat([out.embeddings["img"] * 6.0, out.embeddings["rna"] * 1.0, out.embeddings["prot"] * 3.0], dim=-1)
    assert torch.allclose(out.logits, model.fusion(z), atol=1e-6)
    assert torch.equal(out.modality_weights["prot"], torch.full((4,), 3.0))


def test_absent_modality_contributes_nothing():
    torch.manual_seed(0)
    model = fc.create_model("mmstatic", SCHEMA, hidden_dim=8, image_hidden_dim=8).eval()
    batch = _batch()
    missing = batch.with_present(torch.tensor([[False, True, True]] * 4))
    changed = missing.inputs.copy()
    changed["img"] = torch.rand(4, 3, 64, 64)  # whatever an absent image holds
    a = model(missing)
    b = model(Batch(inputs=changed, present=missing.present, labels=missing.labels))
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.modality_weights["img"], torch.zeros(4))


def test_unknown_scalar_name_is_refused():
    with pytest.raises(ValueError, match="not modalities"):
        fc.create_model("mmstatic", SCHEMA, modality_scalars={"protein": 3.0})


def test_loss_is_class_weighted_ce_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = fc.create_model("mmstatic", SCHEMA, hidden_dim=8, image_hidden_dim=8)
    model.class_weights = torch.tensor([1.0, 3.0])
    batch = _batch()
    out = model(batch)
    loss = model.loss(out, batch)
    ref = torch.nn.functional.cross_entropy(out.logits, batch.labels, weight=model.class_weights)
    assert torch.allclose(loss.total, ref)
    loss.total.backward()
    model.eval()
    loaded = fc.load(model.save(tmp_path / "static"))
    assert torch.equal(loaded(batch).logits, model(batch).logits)
    assert loaded.config.modality_scalars is None
