"""Captum attributions through the model contract: completeness of Integrated Gradients,
absent modalities never attributed, batching invariance, image patches, the CLI entry point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.dataset import to_batch
from fusioncore.explain.attributions import METHODS, CaptumForward, attribute_batch, attribute_dataset
from fusioncore.reports.attributions import run_attributions

try:
    from .explain_helpers import methods_for, random_data, tabular_schema, tiny_model
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from explain_helpers import methods_for, random_data, tabular_schema, tiny_model

SCHEMA = tabular_schema()
ABSENT = {1: 0, 3: 2}  # row 1 lacks m0, row 3 lacks m2


@pytest.mark.parametrize("name", methods_for(SCHEMA))
def test_integrated_gradients_completeness(name):
    model = tiny_model(name, SCHEMA)
    data = random_data(SCHEMA, n=4, absent=ABSENT)
    attrs = attribute_dataset(model, data, "ig", batch_size=4, n_steps=32)
    total = np.nansum(attrs.modality_totals(), axis=1)
    np.testing.assert_allclose(total, attrs.output - attrs.baseline_output, atol=2e-3)
    np.testing.assert_allclose(np.abs(attrs.delta), 0, atol=2e-3)
    # absent modalities are not attributed at all
    assert np.isnan(attrs.values["m0"][1]).all() and np.isnan(attrs.values["m2"][3]).all()
    assert np.isfinite(attrs.values["m1"]).all()
    assert np.isnan(attrs.modality_totals()[1, 0]) and np.isfinite(attrs.modality_totals()[0, 0])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_skips_absent_modalities(method):
    model = tiny_model("mmdynamics", SCHEMA)
    data = random_data(SCHEMA, n=5, absent=ABSENT)
    attrs = attribute_dataset(model, data, method, batch_size=3, n_steps=8, n_samples=4)
    for j, name in enumerate(SCHEMA.modality_names):
        v = attrs.values[name].reshape(5, -1)
        assert np.isnan(v[~data.present[:, j]]).all()
        assert np.isfinite(v[data.present[:, j]]).all()
    frame = attrs.to_frame()
    assert not ((frame["sample_id"] == "s1") & (frame["modality"] == "m0")).any()
    assert set(frame.columns) == {"method", "sample_id", "modality", "unit", "attribution"}


def test_ablation_is_exact_output_change_per_feature():
    """Feature Ablation of a feature = f(x) - f(x with that feature at the baseline)."""
    model = tiny_model("mmdynamics", SCHEMA)
    data = random_data(SCHEMA, n=3)
    batch = to_batch(data)
    attrs = attribute_batch(model, batch, "ablation", target=0)
    base = batch.inputs["m1"][data.present[:, 1]].mean(0)
    x = dict(batch.inputs)
    x["m1"] = x["m1"].clone()
    x["m1"][:, 2] = base[2]
    with torch.no_grad():
        p0 = torch.softmax(model(batch).logits, -1)[:, 0]
        p1 = torch.softmax(model(type(batch)(inputs=x, present=batch.present)).logits, -1)[:, 0]
    np.testing.assert_allclose(attrs.values["m1"][:, 2], (p0 - p1).numpy(), atol=1e-6)


def test_batching_does_not_change_attributions():
    model = tiny_model("mmdynamics", SCHEMA)
    data = random_data(SCHEMA, n=6, absent=ABSENT)
    a = attribute_dataset(model, data, "ig", batch_size=6, n_steps=16)
    seen = []
    b = attribute_dataset(model, data, "ig", batch_size=4, n_steps=16, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 6), (6, 6)]
    for name in SCHEMA.modality_names:
        np.testing.assert_allclose(a.values[name], b.values[name], atol=1e-6, equal_nan=True)


def test_image_patches_and_logit_output():
    schema = DataSchema((ModalitySpec("img", "image", (3, 16, 16)), ModalitySpec("t", "tabular", (4,))), ("a", "b"))
    model = tiny_model("mmdynamics", schema)
    data = random_data(schema, n=3, absent={2: 0})
    attrs = attribute_dataset(model, data, "ablation", patch_size=8, output="logit")
    v = attrs.values["img"][0]
    assert np.allclose(v[:, :8, :8], v[0, 0, 0])  # one value per 8x8 patch, all channels
    assert attrs.patch_scores("img", 8).shape == (3, 2, 2)
    assert np.isnan(attrs.values["img"][2]).all()
    ig = attribute_dataset(model, data, "ig", n_steps=32, output="logit")
    np.testing.assert_allclose(np.nansum(ig.modality_totals(), 1), ig.output - ig.baseline_output, rtol=1e-2, atol=1e-3)
    occl = attribute_dataset(model, data, "occlusion", patch_size=8)
    assert occl.scores("img").shape == (3, 16, 16)


def test_bad_arguments():
    model = tiny_model("mmdynamics", SCHEMA)
    data = random_data(SCHEMA, n=3)
    with pytest.raises(ValueError, match="method"):
        attribute_dataset(model, data, "lime")
    with pytest.raises(ValueError, match="target"):
        attribute_dataset(model, data, "ig", target=7)
    with pytest.raises(ValueError, match="output"):
        CaptumForward(model, ["m0"], [], output="score")


def test_run_attributions_writes_table_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONCORE_STATIC_RENDERER", "matplotlib")
    model = tiny_model("mmdynamics", SCHEMA)
    ckpt = model.save(tmp_path / "ckpt")
    data = random_data(SCHEMA, n=4, absent=ABSENT)
    table = run_attributions(ckpt, data, "ig", tmp_path / "out", batch_size=2, device="cpu",
                             n_steps=8, figure_formats=("png", "csv", "json"))
    import json

    import pandas as pd

    frame = pd.read_csv(table)
    assert table.name == "attributions_ig.csv" and set(frame["modality"]) == {"m0", "m1", "m2"}
    assert len(frame) == 4 * 12 - 5 - 3  # absent rows left out
    assert (tmp_path / "out" / "modality_totals_ig.csv").is_file()
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert "attr-ig-m0__mmdynamics.png" in pngs and "attr-ig-modalities__mmdynamics.png" in pngs
    prov = json.loads((tmp_path / "out" / "attr-ig-m0__mmdynamics.json").read_text())
    assert prov["checkpoint_sha256"] and prov["extra"]["attribution_method"] == "ig"


@pytest.mark.filterwarnings("ignore:Input Tensor")  # Saliency sets requires_grad itself
def test_a_new_attribution_method_is_one_table_entry(monkeypatch):
    """One entry in CAPTUM_METHODS is all a method needs: attribute_batch dispatches through the table,
    and the CLI offers exactly the table's methods."""
    from captum.attr import Saliency

    from fusioncore.cli.main import build_parser
    from fusioncore.explain import attributions as A

    def run(group, settings):
        return Saliency(group.forward).attribute(group.inputs, target=group.target,
                                                 additional_forward_args=group.extra, abs=False), None

    monkeypatch.setitem(A.CAPTUM_METHODS, "saliency", A.CaptumMethod("saliency", "Saliency", run))
    model = tiny_model("mmdynamics", SCHEMA)
    data = random_data(SCHEMA, n=5, absent=ABSENT)
    attrs = attribute_dataset(model, data, "saliency", batch_size=5)
    assert attrs.method == "saliency"
    assert np.isnan(attrs.values["m0"][1]).all() and np.isfinite(attrs.values["m1"]).all()
    with pytest.raises(ValueError, match="expected one of ig, gradshap, ablation, occlusion"):
        attribute_dataset(model, data, "lime")
    explain = _subparser(build_parser(), "explain")
    for command in ("attributions", "fidelity"):
        method = next(a for a in _subparser(explain, command)._actions if a.dest == "method")
        assert list(method.choices) == list(METHODS) == ["ig", "gradshap", "ablation", "occlusion"]


def _subparser(parser, name):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]
