"""Modality Shapley values: efficiency for every method, exactness on an additive toy model,
absent modalities not attributed, leave-one-out deltas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from fusioncore.config import ModelConfig
from fusioncore.data.dataset import to_batch
from fusioncore.explain.shapley import modality_shapley, modality_shapley_batch
from fusioncore.models.base import FusionModel
from fusioncore.types import FusionOutput

try:
    from .explain_helpers import methods_for, random_data, tabular_schema, tiny_model
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from explain_helpers import methods_for, random_data, tabular_schema, tiny_model

SCHEMA = tabular_schema()


@pytest.mark.parametrize("name", methods_for(SCHEMA))
def test_efficiency_and_absent(name):
    model = tiny_model(name, SCHEMA)
    data = random_data(SCHEMA, n=5, absent={1: 0, 3: 2})
    res = modality_shapley(model, data, batch_size=3)
    assert np.isfinite(res.full).all() and np.isfinite(res.empty).all()
    # float32 forwards of differently composed batches agree to ~1e-8, not bit for bit
    np.testing.assert_allclose(np.nansum(res.shapley, axis=1), res.full - res.empty, atol=1e-6)
    assert np.isnan(res.shapley[1, 0]) and np.isnan(res.loo[3, 2])
    assert np.isfinite(res.shapley[~np.isnan(res.shapley)]).all()
    assert (np.isfinite(res.shapley) == data.present).all()
    with torch.no_grad():
        probs = torch.softmax(model(to_batch(data)).logits, -1).numpy()
    np.testing.assert_allclose(res.full, probs[np.arange(5), res.target], atol=1e-6)


@dataclass(frozen=True)
class _AdditiveConfig(ModelConfig):
    pass


class _Additive(FusionModel):
    """logit_k = sum over present modalities of sum(x_m) * (k + 1): contributions are additive."""

    def forward(self, batch, *, return_attention=False):
        k = torch.arange(1, self.schema.n_classes + 1, dtype=torch.float32)
        parts = [batch.inputs[n].sum(1, keepdim=True) * batch.present[:, j:j + 1] for j, n in enumerate(self.modality_names)]
        return FusionOutput(logits=sum(parts) * k, present=batch.present)


def test_exact_on_additive_model():
    model = _Additive(_AdditiveConfig(), SCHEMA)
    model.dummy = torch.nn.Parameter(torch.zeros(1))  # so .device works
    data = random_data(SCHEMA, n=4, absent={2: 1})
    res = modality_shapley_batch(model, to_batch(data), target=1, output="logit")
    expected = np.stack([data.features[n].sum(1) * 2 for n in SCHEMA.modality_names], 1)
    expected[~data.present] = np.nan
    np.testing.assert_allclose(res.shapley, expected, rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(res.loo, expected, rtol=1e-5, equal_nan=True)  # additive: LOO = Shapley
    frame = res.to_frame()
    assert len(frame) == 12 and set(frame.columns) >= {"sample_id", "modality", "shapley", "loo_delta"}


def test_too_many_modalities_refused():
    schema = tabular_schema(dims=(2,) * 7)
    model = tiny_model("early", schema)
    with pytest.raises(ValueError, match="6 modalities"):
        modality_shapley(model, random_data(schema, n=2))
