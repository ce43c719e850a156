"""MM-dynamics: the components, the loss terms, the ablations and missing modalities."""

from __future__ import annotations

import numpy as np
import torch

import fusioncore as fc
from fusioncore.data.dataset import to_batch
from fusioncore.training import fit
from fusioncore.training.loop import fit_preprocessing


def _model(data, **overrides):
    torch.manual_seed(0)
    overrides.setdefault("hidden_dim", 16)
    return fc.create_model("mmdynamics", data.schema, **overrides)


def test_gates_in_open_unit_interval_and_shapes(tiny_data):
    model = _model(tiny_data).eval()
    out = model(to_batch(tiny_data))
    assert out.logits.shape == (len(tiny_data), 2)
    for spec in tiny_data.schema.modalities:
        gate = out.gates[spec.name]
        assert gate.shape == (len(tiny_data), spec.dim)
        assert torch.all(gate > 0) and torch.all(gate < 1)
        assert out.confidence[spec.name].shape == (len(tiny_data),)
        assert out.modality_logits[spec.name].shape == (len(tiny_data), 2)


def test_loss_matches_the_official_formula(tiny_data):
    """CE(fused) + sum_m [mean(gate) + MSE(conf, TCP) + CE(unimodal)], TCP not detached."""
    model = _model(tiny_data).eval()
    batch = to_batch(tiny_data)
    out = model(batch)
    loss = model.loss(out, batch)
    ce = torch.nn.functional.cross_entropy
    expected = ce(out.logits, batch.labels)
    for name in tiny_data.modality_names:
        u = out.modality_logits[name]
        tcp = torch.softmax(u, 1).gather(1, batch.labels[:, None]).squeeze(1)
        expected = expected + out.gates[name].mean() + ((out.confidence[name] - tcp) ** 2).mean() + ce(u, batch.labels)
    assert torch.allclose(loss.total, expected, atol=1e-6)
    assert set(loss.terms) == {"ce_fused"} | {f"{t}_{m}" for m in tiny_data.modality_names for t in ("ce", "sparsity", "tcp_mse")}
    # TCP is not detached: the MSE term sends gradient into the unimodal classifier too.
    model.zero_grad()
    mse = ((out.extras["raw_confidence"]["m0"] - torch.softmax(out.modality_logits["m0"], 1)[:, 0]) ** 2).mean()
    mse.backward()
    assert model.tcp_classifiers["m0"].weight.grad.abs().sum() > 0


def test_confidence_weights_the_hidden_vector(tiny_data):
    """Scaling the confidence head scales each modality's contribution to the fused logits."""
    model = _model(tiny_data).eval()
    batch = to_batch(tiny_data)
    base = model(batch).logits - model.fusion.bias
    with torch.no_grad():
        for lin in model.confidences.values():
            lin.weight.mul_(2.0)
            lin.bias.mul_(2.0)
    doubled = model(batch).logits - model.fusion.bias
    assert torch.allclose(doubled, 2 * base, atol=1e-5)


def test_ablations_remove_gates_and_confidence(tiny_data):
    no_fi = _model(tiny_data, feature_informativeness=False).eval()
    out = no_fi(to_batch(tiny_data))
    assert out.gates == {} and not any(k.startswith("sparsity") for k in no_fi.loss(out, to_batch(tiny_data)).terms)
    no_mi = _model(tiny_data, modality_informativeness=False).eval()
    out = no_mi(to_batch(tiny_data))
    assert out.confidence == {} and not any(k.startswith("tcp_mse") for k in no_mi.loss(out, to_batch(tiny_data)).terms)


def test_absent_modality_contributes_nothing_and_says_absent(tiny_data):
    model = _model(tiny_data).eval()
    batch = to_batch(tiny_data)
    present = batch.present.clone()
    present[:, 1] = False
    out = model(batch.with_present(present))
    assert torch.isnan(out.confidence["m1"]).all()
    assert torch.all(out.gates["m1"] == 0)
    # Changing the values held for the absent modality changes nothing.
    noisy = batch.with_present(present)
    noisy.inputs = {**noisy.inputs, "m1": torch.randn_like(noisy.inputs["m1"]) * 100}
    assert torch.equal(model(noisy).logits, out.logits)
    # Only one modality present: prediction still defined.
    only = torch.zeros_like(present)
    only[:, 2] = True
    assert torch.isfinite(model(batch.with_present(only)).logits).all()


def test_absent_rows_add_no_loss(tiny_data):
    model = _model(tiny_data).eval()
    batch = to_batch(tiny_data)
    present = batch.present.clone()
    present[:, 0] = False
    loss = model.loss(model(batch.with_present(present)), batch.with_present(present))
    assert loss.terms["ce_m0"] == 0 and loss.terms["tcp_mse_m0"] == 0 and loss.terms["sparsity_m0"] == 0
    assert torch.isfinite(loss.total)


def test_training_is_deterministic_per_seed(tiny_data):
    cfg = fc.TrainConfig(epochs=15, seed=3)
    a = fit(_model(tiny_data), tiny_data, cfg, progress=False).model
    b = fit(_model(tiny_data), tiny_data, cfg, progress=False).model
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = fit(_model(tiny_data), tiny_data, fc.TrainConfig(epochs=15, seed=4), progress=False).model
    assert not torch.equal(a.fusion.weight, c.fusion.weight)


def test_training_learns_the_planted_signal(tiny_splits):
    from fusioncore.training import evaluate_model

    model = _model(tiny_splits.train, hidden_dim=64)
    fit(model, tiny_splits.train, fc.TrainConfig(epochs=200, lr=5e-3, seed=0), progress=False)
    assert evaluate_model(model, tiny_splits.test)["acc"] >= 0.9


def test_minmax_uses_train_statistics(tiny_splits):
    pre = fit_preprocessing(tiny_splits.train)
    x = tiny_splits.train.features["m0"]
    scaled = pre["m0"].transform(x)
    assert np.allclose(scaled.min(axis=0), 0, atol=1e-6) and np.allclose(scaled.max(axis=0), 1, atol=1e-6)
    test_scaled = pre["m0"].transform(tiny_splits.test.features["m0"])
    expected = (tiny_splits.test.features["m0"] - x.min(0)) / (x.max(0) - x.min(0) + 1e-10)
    assert np.allclose(test_scaled, expected, atol=1e-6)


def test_nan_values_are_refused_with_the_modality_named(tiny_data):
    import pytest

    model = _model(tiny_data).eval()
    batch = to_batch(tiny_data)
    batch.inputs["m2"][3, 1] = float("nan")
    with pytest.raises(ValueError, match="modality 'm2' has missing \\(NaN\\)"):
        model(batch)


def test_white_fill_turns_closed_image_gates_into_white_pixels():
    from fusioncore.config import DataSchema, ModalitySpec
    from fusioncore.types import Batch

    torch.manual_seed(0)
    schema = DataSchema((ModalitySpec("slide", "image", (3, 64, 64)),), ("a", "b"))
    model = fc.create_model("mmdynamics", schema, image_gate="paper", image_hidden_dim=8, image_gate_fill="white").eval()
    x = torch.rand(2, 3, 64, 64)
    present = torch.ones(2, 1, dtype=torch.bool)
    branch = model.branches["slide"]
    branch.informativeness = lambda t: torch.zeros_like(t[:, :1])
    closed = model(Batch({"slide": x}, present)).logits
    branch.informativeness = lambda t: torch.ones_like(t[:, :1])
    white = model(Batch({"slide": torch.ones_like(x)}, present)).logits
    assert torch.allclose(closed, white, atol=1e-6)
    black = fc.create_model("mmdynamics", schema, image_gate="paper", image_hidden_dim=8).eval()
    black.load_state_dict(model.state_dict())
    black.branches["slide"].informativeness = lambda t: torch.zeros_like(t[:, :1])
    black_closed = black(Batch({"slide": x}, present)).logits
    black.branches["slide"].informativeness = lambda t: torch.ones_like(t[:, :1])
    assert torch.allclose(black_closed, black(Batch({"slide": torch.zeros_like(x)}, present)).logits, atol=1e-6)


def test_sparsity_schedule_warms_up_then_ramps_to_lambda():
    import pytest

    from fusioncore.models.mmdynamics import MMDynamicsConfig

    cfg = MMDynamicsConfig(lambda_sparsity=0.5, sparsity_warmup_epochs=2, sparsity_ramp_epochs=4)
    assert [cfg.sparsity_weight(e) for e in (0, 1.9, 2, 4, 6, 9)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]
    assert cfg.sparsity_weight(None) == 0.5  # outside training: the loss as published
    assert MMDynamicsConfig(lambda_sparsity=0.7).sparsity_weight(0.0) == 0.7  # default: no schedule
    assert MMDynamicsConfig(sparsity_warmup_epochs=3).sparsity_weight(3.0) == 1.0  # warm-up only: a step
    with pytest.raises(ValueError, match="sparsity_warmup_epochs"):
        MMDynamicsConfig(sparsity_ramp_epochs=-1)
    with pytest.raises(ValueError, match="image_gate_fill"):
        MMDynamicsConfig(image_gate_fill="grey")


def test_trainer_drives_the_sparsity_schedule(tiny_data):
    """During the warm-up the gates get no sparsity gradient; the trainer clears the epoch after."""
    seen = []
    model = _model(tiny_data, sparsity_warmup_epochs=2, sparsity_ramp_epochs=2)
    fit(model, tiny_data, fc.TrainConfig(epochs=5, seed=0), progress=False,
        on_step=lambda step, record: seen.append((model.training_epoch, record["sparsity_m0"])))
    assert [e for e, _ in seen] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert model.training_epoch is None
    batch = to_batch(tiny_data)
    model.training_epoch = 0.5
    terms_warm = model.loss(model(batch), batch)
    model.training_epoch = None
    terms_full = model.loss(model(batch), batch)
    assert torch.allclose(terms_full.total - terms_warm.total,
                          sum(terms_full.terms[f"sparsity_{m}"] for m in tiny_data.modality_names), atol=1e-6)
