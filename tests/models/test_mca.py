"""MCA / Zorro / EAO specifics (the shared contract runs in tests/models/test_registered.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.config import TrainConfig
from fusioncore.data.dataset import to_batch
from fusioncore.data.synthetic_sparse import make_synthetic_sparse
from fusioncore.models.mca import PAPER_SCALE, MCAConfig

try:  # tests/ as a package or as rootdir-relative modules
    from .mca_helpers import mixed_schema, random_batch
except ImportError:  # pragma: no cover
    from mca_helpers import mixed_schema, random_batch

SMALL = {"dim": 16, "depth": 1, "heads": 2, "dim_head": 8, "tokens_per_channel": 1}


@pytest.mark.parametrize("method", ["mca", "zorro", "eao"])
def test_embedding_names_and_logits(method):
    torch.manual_seed(0)
    schema = mixed_schema()
    model = fc.create_model(method, schema, **SMALL).eval()
    out = model(random_batch(schema, 4, seed=0))
    names = set(schema.modality_names) | {"fusion"}
    if method == "mca":
        names |= set(model.channel_names)
        assert len(model.channel_names) == 11 and model.channel_names[0] == "aud+prot+vis+mirna"
        assert torch.equal(out.embeddings["fusion"], out.embeddings["aud+prot+vis+mirna"])
    elif method == "zorro":
        names |= {"aud+prot+vis+mirna"}
    else:
        names |= {"aud+prot", "aud+vis", "aud+mirna", "prot+vis", "prot+mirna", "vis+mirna"}
    assert set(out.embeddings) == names
    assert out.logits.shape == (4, 2)


@pytest.mark.parametrize("method", ["mca", "zorro", "eao"])
def test_all_missing_samples_are_nan_free_in_forward_loss_and_gradients(method):
    torch.manual_seed(0)
    schema = mixed_schema()
    model = fc.create_model(method, schema, **SMALL)
    batch = random_batch(schema, 4, seed=1)
    batch = batch.with_present(torch.zeros(4, 4, dtype=torch.bool))
    out = model(batch, return_attention=method != "eao")
    for k, v in out.embeddings.items():
        assert torch.isfinite(v).all(), k
    assert torch.isfinite(out.logits).all()
    for name in schema.modality_names:
        assert torch.count_nonzero(out.embeddings[name]) == 0, "absent modality embeddings are zero vectors"
    loss = model.loss(out, batch)
    assert torch.isfinite(loss.total)
    loss.total.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("method", ["mca", "eao"])
def test_padding_and_missing_values_are_ignored(method):
    """Values at padded positions / missing feature cells never change the output."""
    torch.manual_seed(0)
    schema = mixed_schema()
    model = fc.create_model(method, schema, **SMALL).eval()
    batch = random_batch(schema, 6, seed=2, p_missing=0.0)
    noisy = {k: v.clone() for k, v in batch.inputs.items()}
    for name, real in batch.padding.items():
        x = noisy[name]
        fill = 50 * torch.randn_like(x)
        mask = ~real if x.dim() == 2 else (~real).unsqueeze(-1).expand_as(x)
        x[mask] = fill[mask]
    with torch.no_grad():
        a = model(batch).embeddings
        b = model(fc.Batch(noisy, batch.present, batch.labels, padding=batch.padding)).embeddings
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_nan_feature_values_count_as_missing():
    torch.manual_seed(0)
    schema = mixed_schema()
    model = fc.create_model("mca", schema, **SMALL).eval()
    batch = random_batch(schema, 3, seed=4, p_missing=0.0)
    x = batch.inputs["prot"].clone()
    observed = torch.ones_like(x, dtype=torch.bool)
    observed[:, 2] = False
    x_nan = x.clone()
    x_nan[:, 2] = float("nan")
    pad = dict(batch.padding)
    pad.pop("prot")
    with torch.no_grad():
        masked = model(fc.Batch({**batch.inputs, "prot": x}, batch.present, padding={**pad, "prot": observed}))
        nan = model(fc.Batch({**batch.inputs, "prot": x_nan}, batch.present, padding=pad))
    assert torch.allclose(masked.logits, nan.logits, atol=1e-6)


def test_bad_padding_shape_is_refused():
    schema = mixed_schema()
    model = fc.create_model("mca", schema, **SMALL)
    batch = random_batch(schema, 3, seed=0)
    pad = dict(batch.padding)
    pad["aud"] = torch.ones(3, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="aud"):
        model(fc.Batch(batch.inputs, batch.present, padding=pad))


def test_paper_scale_preset_builds():
    schema = mixed_schema()
    model = fc.create_model("mca", schema, **PAPER_SCALE)
    assert model.layout.n_fusion == 88 and model.fusion_tokens.shape == (88, 512)
    assert len(model.transformer.layers) == 5
    layer = model.transformer.layers[0]
    assert layer.ff.proj_in.weight.shape == (2 * 1365, 512) and layer.norm.bias is None
    assert all(m.bias is None for m in layer.modules() if isinstance(m, torch.nn.Linear))
    assert fc.create_model("zorro", schema, **PAPER_SCALE).layout.n_fusion == 88


def test_eao_needs_two_modalities():
    from fusioncore.config import DataSchema, ModalitySpec

    with pytest.raises(ValueError, match="2 modalities"):
        fc.create_model("eao", DataSchema((ModalitySpec("a", "tabular", (3,)),), ("x", "y")))


def test_image_patches_must_tile_the_image():
    """Images are patch tokens now (tests/models/test_tokenizers.py); a patch size that does not
    divide the image is refused naming the modality."""
    from fusioncore.config import DataSchema, ModalitySpec

    with pytest.raises(ValueError, match="'img'.*image_patch_size 3"):
        fc.create_model("mca", DataSchema((ModalitySpec("img", "image", (3, 8, 8)),), ("x", "y")), image_patch_size=3)


@pytest.mark.parametrize("method", ["mca", "zorro", "eao"])
def test_fit_on_synthetic_sparse_reduces_the_loss(method, tmp_path):
    from fusioncore.training import fit

    data = make_synthetic_sparse(64, sparsity=0.4, seed=0).splits
    torch.manual_seed(0)
    model = fc.create_model(method, data.schema, **SMALL)
    cfg = TrainConfig(epochs=3, lr=3e-3, optimizer="adamw", scheduler="none", batch_size=16, grad_clip=2.0, seed=0)
    res = fit(model, data.train, cfg, preprocessing="none", progress=False)
    losses = [h["loss"] for h in res.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    res.model.save(tmp_path / "ckpt")
    loaded = fc.load(tmp_path / "ckpt")
    batch = to_batch(data.test, loaded.preprocessing)
    with torch.no_grad():
        assert torch.equal(loaded(batch).logits, res.model(batch).logits)


def test_config_defaults_are_small():
    cfg = MCAConfig()
    assert (cfg.dim, cfg.depth) == (64, 2) and cfg.lambda_supervised == 1.0
