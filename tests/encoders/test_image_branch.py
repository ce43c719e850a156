"""Image MM-dynamics: the image branch's shapes, patch constancy, variants and loss terms."""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.encoders import ImageBranch, PaperUNet, SmallCNN, patch_average
from fusioncore.models.mmdynamics import MMDynamicsConfig
from fusioncore.types import Batch


def _schema(size: int = 64) -> DataSchema:
    return DataSchema(
        (ModalitySpec("img", "image", (3, size, size)), ModalitySpec("rna", "tabular", (6,), tuple("abcdef"))),
        ("x", "y", "z"),
    )


def _batch(n: int = 3, size: int = 64) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(
        inputs={"img": torch.rand(n, 3, size, size, generator=g), "rna": torch.rand(n, 6, generator=g)},
        present=torch.ones(n, 2, dtype=torch.bool),
        labels=torch.tensor([0, 1, 2][:n]),
    )


def test_paper_unet_shapes_match_the_spec():
    net = PaperUNet()
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 1, 8, 8)
    # the published layer widths: enc1 3->16, enc2 16->32, middle 32->16, decoder 32->8->8->2->1
    assert net.enc1[0].weight.shape == (16, 3, 3, 3)
    assert net.enc2[2].weight.shape == (32, 32, 3, 3)
    assert net.down.weight.shape == (8, 32, 2, 2)
    assert net.head[-1].weight.shape == (1, 2, 1, 1)
    with pytest.raises(ValueError, match="divisible by 16"):
        net(torch.rand(1, 3, 40, 40))


def test_smallcnn_flattens_8192_on_64px():
    cnn = SmallCNN(3, (64, 64), latent_dim=500)
    assert cnn.fc1.in_features == 8192
    assert cnn(torch.rand(2, 3, 64, 64)).shape == (2, 500)


@pytest.mark.parametrize("gate", ["smp", "paper"])
@pytest.mark.parametrize("patch", [4, 8, 16])
def test_map_is_in_unit_interval_and_piecewise_constant(gate, patch):
    torch.manual_seed(0)
    cfg = MMDynamicsConfig(image_gate=gate, image_patch_size=patch, image_hidden_dim=8)
    branch = ImageBranch(ModalitySpec("img", "image", (3, 64, 64)), cfg).eval()
    m = branch.informativeness(torch.rand(2, 3, 64, 64))
    assert m.shape == (2, 1, 64, 64)
    assert bool((m > 0).all() and (m < 1).all())
    blocks = m.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, 1, H/p, W/p, p, p)
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))
    # and not constant across patches (it is a map, not a scalar)
    assert blocks[..., 0, 0].std() > 0
    assert branch.encode(torch.rand(2, 3, 64, 64)).shape == (2, 8)
    assert branch.hidden_dim == 8


def test_patch_average_exact():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = patch_average(x, 2)
    assert torch.equal(out[0, 0, :2, :2], torch.full((2, 2), 2.5))
    assert torch.equal(out[0, 0, 2:, 2:], torch.full((2, 2), 12.5))


def test_smp_gate_uses_a_pruned_light_encoder():
    cfg = MMDynamicsConfig(image_gate="smp", image_gate_encoder="resnet18", image_hidden_dim=8)
    branch = ImageBranch(ModalitySpec("img", "image", (3, 64, 64)), cfg)
    enc = branch.gate.encoder
    assert not hasattr(enc, "layer3") and not hasattr(enc, "layer4")  # depth 3 for 8-px patches
    assert sum(p.numel() for p in branch.gate.parameters()) < 1_500_000


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("image_patch_size", 7, "must divide"),
        ("image_gate", "vit", "image_gate must be"),
        ("image_encoder", "no-such-encoder", "image encoder"),
        ("image_gate_encoder", "no-such-encoder", "smp U-Net"),
    ],
)
def test_bad_image_configs_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        fc.create_model("mmdynamics", _schema(), **{field: value, "image_hidden_dim": 8, "hidden_dim": 8})


@pytest.mark.parametrize("gate, encoder", [("paper", "smallcnn"), ("smp", "smallcnn"), ("paper", "tu-resnet10t")])
def test_mmdynamics_with_an_image_trains_one_step(gate, encoder):
    torch.manual_seed(0)
    model = fc.create_model(
        "mmdynamics", _schema(), image_gate=gate, image_encoder=encoder, hidden_dim=8, image_hidden_dim=8
    )
    batch = _batch()
    out = model(batch)
    assert out.gates["img"].shape == (3, 1, 64, 64)
    loss = model.loss(out, batch)
    # sparsity term = mean of the map
    assert torch.allclose(loss.terms["sparsity_img"], out.gates["img"].mean())
    loss.total.backward()
    gate_grads = [p.grad for p in model.branches["img"].gate.parameters() if p.grad is not None]
    assert gate_grads and any(g.abs().sum() > 0 for g in gate_grads)


def test_absent_image_gets_zero_map_and_nan_confidence():
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", _schema(), image_gate="paper", hidden_dim=8, image_hidden_dim=8).eval()
    batch = _batch()
    batch = batch.with_present(torch.tensor([[True, True], [False, True], [True, True]]))
    out = model(batch)
    assert torch.equal(out.gates["img"][1], torch.zeros(1, 64, 64))
    assert torch.isnan(out.confidence["img"][1]) and not torch.isnan(out.confidence["img"][0])


def test_image_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", _schema(), image_gate="smp", hidden_dim=8, image_hidden_dim=8).eval()
    batch = _batch()
    before = model(batch)
    loaded = fc.load(model.save(tmp_path / "ckpt"))
    after = loaded(batch)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.gates["img"], after.gates["img"])


def test_smp_image_encoder_depth_sets_stages_and_size():
    import pytest

    from fusioncore.encoders.image_branch import SmpImageEncoder

    torch.manual_seed(0)
    shallow = SmpImageEncoder("resnet18", 3, (64, 64), 16, depth=3)
    deep = SmpImageEncoder("resnet18", 3, (64, 64), 16)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(shallow) < 1_000_000 < 10_000_000 < n(deep)  # layer3/layer4 pruned
    assert shallow(torch.rand(2, 3, 64, 64)).shape == (2, 16)
    with pytest.raises(ValueError, match="image_encoder_depth"):
        SmpImageEncoder("resnet18", 3, (48, 48), 16, depth=5)  # 32 does not divide 48


def test_bad_gate_training_is_refused():
    with pytest.raises(ValueError, match="image_gate_training must be"):
        MMDynamicsConfig(image_gate_training="alternating")


def test_random_mask_is_binary_per_patch_with_varied_keep_rates():
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", _schema(), image_gate="paper", hidden_dim=8, image_hidden_dim=8)
    branch = model.branches["img"]
    mask = branch.random_mask(torch.zeros(64, 3, 64, 64))
    assert mask.shape == (64, 1, 64, 64)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(patch_average(mask, 8), mask)  # one value per 8 x 8 patch
    kept = mask.mean(dim=(1, 2, 3))
    assert kept.min() < 0.2 and kept.max() > 0.8  # per-sample keep rates span the range


@pytest.mark.parametrize("fill, closed", [("black", 0.0), ("white", 1.0)])
def test_fill_turns_closed_pixels_black_or_white(fill, closed):
    model = fc.create_model("mmdynamics", _schema(), image_gate="paper", image_gate_fill=fill,
                            hidden_dim=8, image_hidden_dim=8)
    x = torch.full((1, 3, 64, 64), 0.4)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :8, :8] = 1.0
    out = model.branches["img"].fill(x, mask)
    assert torch.all(out[..., :8, :8] == 0.4)
    assert torch.all(out[..., 8:, :] == closed) and torch.all(out[..., :8, 8:] == closed)


def _grads(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def _decoupled_model(**extra):
    torch.manual_seed(0)
    kwargs = dict(image_gate="paper", image_encoder="resnet18", image_encoder_depth=2, image_gate_fill="white",
                  image_gate_training="decoupled", hidden_dim=8, image_hidden_dim=8, dropout=0.0)
    return fc.create_model("mmdynamics", _schema(), **{**kwargs, **extra})


def _partial_batch():
    batch = _batch(n=3)
    return batch.with_present(torch.tensor([[True, True], [False, True], [True, True]]))  # row 1: no image


def test_decoupled_gate_training_separates_gate_and_evaluator_gradients():
    """The gate learns from the frozen evaluator's cross-entropy on the gated image and its sparsity
    term, nothing else; the evaluator (encoder + unimodal classifier) learns only from randomly
    masked images; fusion and confidence cannot move the gate. A batch-norm encoder and a sample
    without its image included."""
    model = _decoupled_model()
    branch, batch = model.branches["img"], _partial_batch()
    out = model(batch)
    assert set(out.extras["evaluator_logits"]) == {"img"}  # the tabular branch trains as published
    loss = model.loss(out, batch)
    here = batch.present[:, 0].float()

    def grads(term):
        model.zero_grad(set_to_none=True)
        term.backward(retain_graph=True)
        return {name: [None if p.grad is None else p.grad.clone() for p in module.parameters()]
                for name, module in (("gate", branch.gate), ("encoder", branch.encoder),
                                     ("classifier", model.tcp_classifiers["img"]), ("fusion", model.fusion))}

    def norm(gs):
        return sum(0.0 if g is None else float(g.abs().sum()) for g in gs)

    ce_gate = model.cross_entropy(out.modality_logits["img"], batch.labels, rows=here)
    ce_eval = model.cross_entropy(out.extras["evaluator_logits"]["img"], batch.labels, rows=here)
    g = grads(ce_gate)
    assert norm(g["gate"]) > 0 and norm(g["encoder"]) == 0 and norm(g["classifier"]) == 0
    g = grads(ce_eval)
    assert norm(g["gate"]) == 0 and norm(g["encoder"]) > 0 and norm(g["classifier"]) > 0
    g = grads(model.cross_entropy(out.logits, batch.labels))
    assert norm(g["gate"]) == 0 and norm(g["encoder"]) == 0 and norm(g["fusion"]) > 0
    # The whole loss: the gate gets exactly its two terms (so neither the TCP-MSE nor the fused
    # loss reaches it), the encoder exactly the evaluator's cross-entropy.
    here_img = batch.present[:, 0].float()
    sparsity = (out.gates["img"].flatten(1).mean(1) * here_img).sum() / here_img.sum()
    total = grads(loss.total)
    own = grads(ce_gate + model.config.sparsity_weight(None) * sparsity)
    evaluator = grads(ce_eval)
    assert norm(total["gate"]) > 0 and norm(total["encoder"]) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(total["gate"], own["gate"]) if a is not None)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(total["encoder"], evaluator["encoder"]) if a is not None)


def test_decoupled_batch_norm_statistics_see_both_passes():
    """A deliberate choice (see ``_frozen``): in training the frozen pass normalises with batch
    statistics and updates the running ones, so inference normalises gated images with statistics
    that include gated images; the parameters themselves stay untouched by that pass."""
    model = _decoupled_model()
    bns = [m for m in model.branches["img"].encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    model(_partial_batch())
    assert all(int(m.num_batches_tracked) == 2 for m in bns)  # the random-mask pass and the frozen pass
    model.eval()
    model(_partial_batch())
    assert all(int(m.num_batches_tracked) == 2 for m in bns)  # inference updates nothing


def test_decoupled_evaluator_trains_even_without_unimodal_weight():
    model = _decoupled_model(lambda_unimodal=0.0)
    batch = _partial_batch()
    model.loss(model(batch), batch).total.backward()
    assert sum(float(p.grad.abs().sum()) for p in model.branches["img"].encoder.parameters() if p.grad is not None) > 0


def test_decoupled_without_gates_is_refused():
    with pytest.raises(ValueError, match="feature_informativeness=False"):
        MMDynamicsConfig(image_gate_training="decoupled", feature_informativeness=False)


def test_decoupled_and_joint_models_infer_identically():
    torch.manual_seed(0)
    joint = fc.create_model("mmdynamics", _schema(), image_gate="paper", hidden_dim=8, image_hidden_dim=8).eval()
    decoupled = fc.create_model("mmdynamics", _schema(), image_gate="paper", hidden_dim=8, image_hidden_dim=8,
                                image_gate_training="decoupled").eval()
    decoupled.load_state_dict(joint.state_dict())
    batch = _batch()
    a, b = joint(batch), decoupled(batch)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.gates["img"], b.gates["img"])
    assert b.extras["evaluator_logits"] == {}
