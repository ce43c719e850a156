"""The token encoders of MCA / Zorro / EAO, the image patch tokeniser above all (the shared contract
with an image modality runs in test_image_modalities.py)."""

from __future__ import annotations

import json

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.encoders.tokenizers import PatchTokenizer, sinusoidal_positions_2d, token_count, token_encoder

from .base import make_batch, mixed_presence, tiny_schema


def test_patch_tokens_are_row_major_patches():
    """Token k answers to patch (k // cols, k % cols) and to nothing else."""
    torch.manual_seed(0)
    tok = PatchTokenizer((3, 8, 12), patch_size=4, dim=8).eval()
    assert tok.grid == (2, 3) and tok.n_tokens == 6
    x = torch.rand(1, 3, 8, 12)
    base, real = tok(x)
    assert base.shape == (1, 6, 8) and real.all()
    for k in range(6):
        r, c = divmod(k, 3)
        y = x.clone()
        y[:, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 0.5 * torch.rand(1, 3, 4, 4)
        changed = (tok(y)[0] - base).abs().amax(dim=-1)[0] > 1e-6
        assert changed.tolist() == [i == k for i in range(6)], k


def test_sinusoidal_2d_positions_split_row_and_column():
    pe = sinusoidal_positions_2d(3, 4, 10).view(3, 4, 10)
    assert torch.equal(pe[:, 0, :5], pe[:, 3, :5]), "first half depends on the row only"
    assert torch.equal(pe[0, :, 5:], pe[2, :, 5:]), "second half depends on the column only"
    assert not torch.equal(pe[0, 0], pe[1, 0]) and not torch.equal(pe[0, 0], pe[0, 1])


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_position_kinds(positions):
    tok = PatchTokenizer((3, 8, 8), 4, 6, positions)
    learned = [n for n, _ in tok.named_parameters() if n == "positions"]
    assert learned == (["positions"] if positions == "learned" else [])
    assert "positions" not in tok.state_dict() or positions == "learned"  # fixed positions are not saved


def test_a_patch_with_a_missing_pixel_is_masked_and_finite():
    tok = PatchTokenizer((3, 8, 8), 4, 6)
    x = torch.rand(2, 3, 8, 8)
    x[0, 1, 5, 2] = float("nan")  # patch (1, 0) of sample 0
    tokens, real = tok(x)
    assert torch.isfinite(tokens).all()
    assert real.tolist() == [[True, True, False, True], [True, True, True, True]]


def test_bad_shapes_are_refused_by_name():
    with pytest.raises(ValueError, match="image_patch_size 3 must divide the image size 8x8"):
        PatchTokenizer((3, 8, 8), 3, 4)
    with pytest.raises(ValueError, match="image_positions"):
        PatchTokenizer((3, 8, 8), 4, 4, "rotary")
    with pytest.raises(ValueError, match=r"'img'.*\(C, H, W\)"):
        token_encoder(ModalitySpec("img", "image", (8, 8)), 4)
    with pytest.raises(ValueError, match="expects"):
        PatchTokenizer((3, 8, 8), 4, 4)(torch.zeros(2, 1, 8, 8))
    assert token_count(ModalitySpec("img", "image", (3, 16, 8)), 4) == 8


def _image_schema() -> DataSchema:
    return DataSchema((ModalitySpec("img", "image", (3, 8, 8)), ModalitySpec("rna", "tabular", (5,))), ("a", "b"))


@pytest.mark.parametrize("method", ["mca", "zorro", "eao"])
def test_image_patches_are_tokens_of_the_image_modality(method):
    torch.manual_seed(0)
    schema = _image_schema()
    model = fc.create_model(method, schema, image_patch_size=4).eval()
    assert model.patch_grid("img") == (2, 2) and model.patch_grid("rna") is None
    present = torch.tensor([[True, True], [False, True]])
    with torch.no_grad():
        att = model(make_batch(schema, present), return_attention=True).attention
    types = att.token_modality
    assert (types == 0).sum() == 4 and (types == 1).sum() == 5
    # the absent image of row 1 is never attended to, in any layer
    for layer in att.layers:
        assert layer[0][..., types == 0].sum() > 0
        assert torch.count_nonzero(layer[1][..., types == 0]) == 0


def test_tabular_checkpoints_from_before_the_image_tokeniser_load_unchanged(tmp_path):
    """A tabular MCA gains no parameter, and a config.json written without the image fields loads."""
    torch.manual_seed(0)
    schema = tiny_schema()
    model = fc.create_model("mca", schema).eval()
    encoder_parts = {k.split(".")[2] for k in model.state_dict() if k.startswith("encoders.")}
    assert encoder_parts == {"identity", "value"}, "a tabular MCA has tabular tokenisers only"
    batch = make_batch(schema, mixed_presence(schema))
    model.save(tmp_path / "ckpt")
    cfg_path = tmp_path / "ckpt" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for field in ("image_patch_size", "image_positions"):
        del cfg["model"][field]
    cfg_path.write_text(json.dumps(cfg))
    loaded = fc.load(tmp_path / "ckpt")
    with torch.no_grad():
        assert torch.equal(loaded(batch).logits, model(batch).logits)
