"""The sample view's numbers: one presence pattern of one sample, as the library defines them."""

import numpy as np
import pytest

from conftest import make_tabular_dataset
from inspect_helpers import tiny_model

from fusioncore.inspect import explain_sample, model_summary, sample_attributions
from fusioncore.training import predict


@pytest.fixture(scope="module")
def data():
    return make_tabular_dataset(n=48, missing=0.2, n_classes=3)


@pytest.fixture(scope="module")
def model(data):
    return tiny_model(data)


def test_prediction_matches_batched_predict_for_every_pattern(model, data):
    i = int(np.flatnonzero(data.present.all(axis=1))[0])
    for pattern in ([True, True, True], [True, False, True], [False, False, True]):
        exp = explain_sample(model, data, i, pattern)
        want = predict(model, data.subset([i]).with_present(np.array([pattern]))).probabilities[0]
        np.testing.assert_allclose(exp.probabilities, want, rtol=1e-5, atol=1e-6)
        ref = predict(model, data.subset([i])).probabilities[0]
        np.testing.assert_allclose(exp.reference, ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(exp.change, exp.probabilities - exp.reference)


def test_toggled_off_modality_has_no_explanation(model, data):
    i = int(np.flatnonzero(data.present.all(axis=1))[0])
    full = explain_sample(model, data, i)
    off = explain_sample(model, data, i, {"m1": False})
    assert not off.present[1] and off.available[1]
    assert np.isnan(off.confidence["m1"]) and np.isnan(off.true_tcp["m1"]) and np.isnan(off.tcp_error["m1"])
    assert "m1" not in off.gates and set(off.gates) == {"m0", "m2"}
    assert off.active_modalities == ["m0", "m2"]
    assert not np.allclose(off.probabilities, full.probabilities)
    assert off.gates["m0"].shape == (6,)
    # true TCP is the unimodal head's probability of the true class
    assert 0.0 < full.true_tcp["m0"] < 1.0 and full.true_class == int(data.labels[i])


def test_a_modality_missing_from_the_data_stays_absent(model, data):
    i = int(np.flatnonzero(~data.present[:, 2])[0])
    exp = explain_sample(model, data, i, [True, True, True])
    assert not exp.present[2] and not exp.available[2]
    with pytest.raises(ValueError, match="no modality left"):
        explain_sample(model, data, i, [False, False, True])
    with pytest.raises(ValueError, match="out of range"):
        explain_sample(model, data, len(data))
    with pytest.raises(ValueError, match="unknown modalities"):
        explain_sample(model, data, 0, {"nope": False})


def test_model_summary(model):
    s = model_summary(model)
    assert s.method == "mmdynamics" and s.modalities == ("m0", "m1", "m2") and s.classes == ("c0", "c1", "c2")
    assert s.n_parameters == sum(p.numel() for p in model.parameters()) and s.device == "cpu"
    assert not s.has_attention and dict(s.rows())["parameters"] == f"{s.n_parameters:,}"


def test_attention_of_a_transformer_is_sliced_and_masks_toggled_modalities(data):
    model = tiny_model(data, "mca", epochs=2)
    i = int(np.flatnonzero(data.present.all(axis=1))[0])
    exp = explain_sample(model, data, i, [True, False, True])
    att = exp.attention
    assert att is not None and att.layers and all(layer.shape[0] == 1 for layer in att.layers)
    assert model_summary(model).has_attention
    tokens_m1 = (att.token_modality == 1).numpy()
    other = ~tokens_m1
    # nothing attends to the switched-off modality's tokens
    assert float(att.layers[0][0][:, other][:, :, tokens_m1].abs().sum()) == 0.0


def test_attributions_only_for_present_modalities(model, data):
    i = int(np.flatnonzero(data.present.all(axis=1))[0])
    attr = sample_attributions(model, data, i, [True, False, True], n_steps=8)
    assert np.isfinite(attr.values["m0"]).all() and np.isnan(attr.values["m1"]).all()
    assert np.abs(attr.values["m0"]).sum() > 0  # cohort-mean baseline, not the sample itself


def test_known_reference_gives_the_same_explanation(model, data):
    i = int(np.flatnonzero(data.present.all(axis=1))[0])
    full = explain_sample(model, data, i)
    a = explain_sample(model, data, i, [True, False, True])
    b = explain_sample(model, data, i, [True, False, True], reference=full.probabilities)
    np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.reference, b.reference, rtol=1e-6, atol=1e-7)  # batch of 1 vs 2: float noise only
    assert a.confidence.keys() == b.confidence.keys()
    with pytest.raises(ValueError, match="reference"):
        explain_sample(model, data, i, reference=np.ones(7))


def test_hybrid_attention_reaches_the_dashboard():
    import fusioncore as fc
    from conftest import make_tabular_dataset
    from fusioncore.inspect.session import explain_sample, model_summary
    from fusioncore.training import fit_preprocessing

    data = make_tabular_dataset(n=8)
    model = fc.create_model("hybrid", data.schema).eval()
    model.preprocessing = fit_preprocessing(data)
    assert model_summary(model).has_attention
    exp = explain_sample(model, data, 0, [True, False, True])
    assert exp.attention is not None and exp.attention.layers


def test_confidence_table_says_why_a_modality_has_no_numbers(model, data):
    from fusioncore.inspect.figures import sample_confidence_table

    i = int(np.flatnonzero(data.present[:, :2].all(axis=1) & ~data.present[:, 2])[0])
    exp = explain_sample(model, data, i, {"m1": False})
    table = sample_confidence_table(exp).set_index("modality")
    assert list(table.index) == ["m0", "m1", "m2"]
    assert list(table["status"]) == ["used", "switched off", "missing in the data"]
    assert (table.loc[["m1", "m2"], ["confidence", "true TCP", "error"]] == "—").all().all()
    assert table.loc["m0", "confidence"] == f"{exp.confidence['m0']:.3f}"
    assert table.loc["m0", "error"] == f"{exp.tcp_error['m0']:.3f}"
    assert "None" not in table.to_string() and "nan" not in table.to_string()


def test_heatmap_outlines_whole_top_patches():
    """The top-k outlines are the k highest *patches* of the model's patch grid (a piece-wise
    constant map ranked per pixel would outline k pixels of the best patch)."""
    import torch

    import fusioncore as fc
    from fusioncore.data.synthetic_cohort import make_synthetic_cohort
    from fusioncore.inspect import figures

    cohort = make_synthetic_cohort(n=6, seed=0).select(["histology", "mrna"])
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", cohort.data.schema, image_gate="paper", hidden_dim=8,
                            image_hidden_dim=8, image_patch_size=8).eval()
    exp = explain_sample(model, cohort.data, 0)
    assert exp.patch_size == 8
    bundle = figures.heatmap(exp, "histology", top_k=3)
    boxes = [(s.x0 + 0.5, s.y0 + 0.5, s.x1 - s.x0, s.y1 - s.y0) for s in bundle.figure.layout.shapes]
    assert len(boxes) == 3 and all(w == 8 and h == 8 and x % 8 == 0 and y % 8 == 0 for x, y, w, h in boxes)
    per_patch = exp.gates["histology"].reshape(8, 8, 8, 8).mean(axis=(1, 3))
    best = {(int(i) // 8, int(i) % 8) for i in np.argsort(-per_patch.reshape(-1), kind="stable")[:3]}
    assert {(int(y) // 8, int(x) // 8) for x, y, _, _ in boxes} == best
