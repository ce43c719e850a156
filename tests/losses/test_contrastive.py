"""Contrastive recipes as data: number and kind of terms (spec §1a, §3b), presence rules, the loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.layers.masks import channels_from_combos
from fusioncore.losses.contrastive import (
    ContrastivePair,
    ContrastiveRecipeLoss,
    clip_loss,
    eao_recipe,
    mca_recipe,
    pair_rows,
    zorro_recipe,
)

MODS = ["m0", "m1", "m2", "m3"]
CHANNELS = channels_from_combos(4)
NAMES = ["+".join(MODS[i] for i in c) for c in CHANNELS]


def kinds(pairs):
    """Count pairs by kind: (modality|fusion|channel, modality|fusion|channel)."""
    def kind(n):
        return "fusion" if n == "fusion" else ("modality" if n in MODS else "channel")

    out = {}
    for p in pairs:
        key = (kind(p.a), kind(p.b))
        out[key] = out.get(key, 0) + 1
    return out


def test_cmu_mca_recipe_has_14_terms():
    pairs = mca_recipe(MODS, CHANNELS, "cmu")
    assert len(pairs) == 14
    assert kinds(pairs) == {("modality", "fusion"): 4, ("fusion", "channel"): 10}
    assert NAMES[0] not in {p.b for p in pairs}, "the root channel is the fusion embedding, not contrasted with itself"


def test_tcga_mca_recipe_has_60_terms():
    pairs = mca_recipe(MODS, CHANNELS, "tcga")
    assert len(pairs) == 60
    assert kinds(pairs) == {
        ("modality", "modality"): 6, ("modality", "fusion"): 4, ("fusion", "channel"): 10, ("modality", "channel"): 40,
    }
    assert ContrastivePair("m0", "m0+m1") in pairs  # a modality is also contrasted with channels containing it


def test_zorro_recipes():
    assert kinds(zorro_recipe(MODS, "cmu")) == {("modality", "fusion"): 4}
    assert kinds(zorro_recipe(MODS, "tcga")) == {("modality", "modality"): 6, ("modality", "fusion"): 4}


def test_eao_recipe_26_terms_with_the_repo_quirk():
    pairs_ = [c for c in CHANNELS if len(c) == 2]
    pairs = eao_recipe(MODS, pairs_)
    assert len(pairs) == 26
    assert kinds(pairs) == {("modality", "modality"): 6, ("modality", "channel"): 20}
    assert "m0+m1" not in {p.b for p in pairs}
    assert len(eao_recipe(MODS, pairs_, skip_first_pair=False)) == 30


def test_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match="recipe"):
        mca_recipe(MODS, CHANNELS, "clip")


def test_presence_rules():
    present = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    members = {"m0+m1": (0, 1), "fusion": (0, 1, 2, 3)}
    both = pair_rows(ContrastivePair("m2", "m0+m1"), present, MODS, members)
    assert both.tolist() == [False, True, False]  # m2 present AND any of m0, m1
    assert pair_rows(ContrastivePair("fusion", "m0+m1"), present, MODS, members).tolist() == [True, True, False]
    assert pair_rows(ContrastivePair("m2", "m0+m1", "all"), present, MODS, members).tolist() == [False, False, False]
    with pytest.raises(ValueError, match="no embedding"):
        pair_rows(ContrastivePair("m9", "fusion"), present, MODS, members)


def test_clip_loss_filters_rows_not_columns():
    torch.manual_seed(0)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    rows = torch.tensor([True, False, True, True])
    scale = torch.tensor(2.0)
    got = clip_loss(a, b, scale, rows)
    la = F.cross_entropy((scale * a @ b.T)[rows], torch.tensor([0, 2, 3]))
    lb = F.cross_entropy((scale * b @ a.T)[rows], torch.tensor([0, 2, 3]))
    assert torch.allclose(got, (la + lb) / 2)


def test_shared_temperature_is_clamped_and_empty_pairs_are_skipped():
    loss = ContrastiveRecipeLoss([ContrastivePair("m0", "fusion"), ContrastivePair("m1", "fusion")], MODS, {"fusion": (0, 1, 2, 3)})
    assert math.isclose(loss.scale.item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        loss.log_scale.fill_(10.0)
    assert math.isclose(loss.scale.item(), 100.0, rel_tol=1e-5)
    emb = {n: torch.randn(3, 4, requires_grad=True) for n in MODS + ["fusion"]}
    present = torch.tensor([[1, 0, 0, 0]] * 3, dtype=torch.bool)  # m1 never present: its pair is skipped
    out = loss(emb, present)
    assert "m0~fusion" in out.terms and "m1~fusion" not in out.terms
    assert torch.allclose(out.total, out.terms["m0~fusion"])
    none = loss(emb, torch.zeros(3, 4, dtype=torch.bool))
    assert none.total.item() == 0.0 and torch.isfinite(none.total)
    none.total.backward()  # differentiable zero


def _schema():
    mods = tuple(ModalitySpec(n, "tabular", (3,)) for n in MODS)
    return DataSchema(mods, ("a", "b"))


@pytest.mark.parametrize(
    "method,recipe,n_terms", [("mca", "cmu", 14), ("mca", "tcga", 60), ("zorro", "cmu", 4), ("zorro", "tcga", 10), ("eao", "tcga", 26)]
)
def test_models_use_their_recipe(method, recipe, n_terms):
    torch.manual_seed(0)
    model = fc.create_model(method, _schema(), dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1, recipe=recipe)
    assert len(model.contrastive.pairs) == n_terms
    batch = fc.Batch({n: torch.randn(4, 3) for n in MODS}, torch.ones(4, 4, dtype=torch.bool), torch.tensor([0, 1, 0, 1]))
    out = model.loss(model(batch), batch)
    assert sum("~" in k for k in out.terms) == n_terms
    assert "ce_fused" in out.terms  # lambda_supervised = 1 by default
    model0 = fc.create_model(method, _schema(), dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1, recipe=recipe, lambda_supervised=0.0)
    out0 = model0.loss(model0(batch), batch)
    assert "ce_fused" not in out0.terms and torch.allclose(out0.total, out0.terms["contrastive"])


def test_loss_normalize_uses_cosine_logits():
    torch.manual_seed(0)
    model = fc.create_model("zorro", _schema(), dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1,
                            recipe="cmu", lambda_supervised=0.0, loss_normalize=True)
    batch = fc.Batch({n: torch.randn(4, 3) for n in MODS}, torch.ones(4, 4, dtype=torch.bool))
    out = model(batch)
    got = model.loss(out, batch).total
    scale = model.contrastive.scale
    rows = torch.ones(4, dtype=torch.bool)
    norm = {k: F.normalize(v, dim=-1) for k, v in out.embeddings.items()}
    want = torch.stack([clip_loss(norm[m], norm["fusion"], scale, rows) for m in MODS]).mean()
    assert torch.allclose(got, want, atol=1e-6)
