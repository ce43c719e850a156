"""FusionOutput.map / cat / select / row / detach: every field carried, attention and extras included."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import fusioncore as fc
from fusioncore.types import AttentionMaps, FusionOutput

from .base import make_batch, mixed_presence, tiny_schema


def _assert_same(a, b, where: str = "output") -> None:
    """Recursive equality of outputs, dicts, lists and tensors (a missing field is a failure)."""
    if isinstance(a, (FusionOutput, AttentionMaps)):
        assert type(a) is type(b), where
        for name in vars(a):
            _assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert_close(a, b, equal_nan=True, msg=where)
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def batch():
    schema = tiny_schema()
    return schema, make_batch(schema, mixed_presence(schema, repeats=1))  # 7 rows, every pattern


@pytest.mark.parametrize("method", ["hybrid", "mca", "mmdynamics", "late"])
def test_cat_of_two_halves_is_the_whole_batch(method, batch) -> None:
    schema, full_batch = batch
    torch.manual_seed(0)
    model = fc.create_model(method, schema).eval()
    attention = bool(model.gives_attention)
    with torch.no_grad():
        whole = model(full_batch, return_attention=attention)
        halves = [model(full_batch.select(slice(0, 3)), return_attention=attention),
                  model(full_batch.select(slice(3, 7)), return_attention=attention)]
    joined = FusionOutput.cat(halves)
    _assert_same(joined, whole)
    if attention:  # attention is carried, not dropped
        assert joined.attention is not None and joined.attention.layers[0].shape[0] == 7
    if method in ("mmdynamics", "late"):  # so are the loss inputs
        assert joined.extras and whole.extras


def test_row_and_select_keep_the_batch_dimension_and_shared_tensors(batch) -> None:
    schema, full_batch = batch
    torch.manual_seed(0)
    model = fc.create_model("hybrid", schema).eval()
    with torch.no_grad():
        out = model(full_batch, return_attention=True)
    one = out.row(2)
    assert one.logits.shape == (1, schema.n_classes)
    assert_close(one.logits, out.logits[2:3])
    assert all(layer.shape[0] == 1 for layer in one.attention.layers)
    assert one.attention.token_modality is out.attention.token_modality  # no batch dimension: shared
    picked = out.select(torch.tensor([4, 1]))
    assert_close(picked.embeddings["fusion"], out.embeddings["fusion"][[4, 1]])
    assert_close(picked.modality_weights["rna"], out.modality_weights["rna"][[4, 1]])


def test_detach_and_cpu_drop_the_loss_inputs_only(batch) -> None:
    schema, full_batch = batch
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", schema)
    out = model(full_batch)
    assert out.logits.requires_grad and out.extras
    for copy in (out.detach(), out.cpu()):
        assert not copy.logits.requires_grad and copy.extras == {}
        assert all(not g.requires_grad for g in copy.gates.values())
        _assert_same(copy.confidence, {k: v.detach() for k, v in out.confidence.items()})


def test_cat_refuses_outputs_that_do_not_match() -> None:
    a = FusionOutput(logits=torch.zeros(2, 2), present=torch.ones(2, 1, dtype=torch.bool), gates={"x": torch.zeros(2, 3)})
    b = FusionOutput(logits=torch.zeros(1, 2), present=torch.ones(1, 1, dtype=torch.bool), gates={"y": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match="gates"):
        FusionOutput.cat([a, b])
    with_maps = FusionOutput(logits=torch.zeros(1, 2), present=torch.ones(1, 1, dtype=torch.bool),
                             gates={"x": torch.zeros(1, 3)}, attention=AttentionMaps())
    with pytest.raises(ValueError, match="attention"):
        FusionOutput.cat([a, with_maps])
    with pytest.raises(ValueError, match="at least one"):
        FusionOutput.combine([], torch.cat)
