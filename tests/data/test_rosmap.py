"""Real data: ROSMAP in MOGONET format (skips when ../shared/data is absent)."""

from __future__ import annotations

import numpy as np
import pytest

import fusioncore as fc
from fusioncore.data.mogonet import load_mogonet
from fusioncore.training import evaluate_model, fit
from fusioncore.training.loop import fit_preprocessing


@pytest.fixture(scope="module")
def rosmap(rosmap_dir):
    return load_mogonet(rosmap_dir)


def test_rosmap_layout(rosmap):
    assert rosmap.schema.modality_names == ["mRNA", "methylation", "miRNA"]
    assert rosmap.schema.classes == ("NC", "AD")
    assert len(rosmap.train) == 245 and len(rosmap.test) == 106
    assert np.bincount(rosmap.train.labels).tolist() == [118, 127]
    assert np.bincount(rosmap.test.labels).tolist() == [51, 55]
    assert rosmap.schema.modality("mRNA").features[0].startswith("ENSG")
    assert all(m.shape == (200,) for m in rosmap.schema.modalities)


def test_train_statistics_scaling_matches_the_data_readme(rosmap):
    """Test values scaled with train min/max span about -0.97 .. 1.52 (shared/data/README.md)."""
    pre = fit_preprocessing(rosmap.train)
    scaled = np.concatenate([pre[n].transform(rosmap.test.features[n]) for n in rosmap.schema.modality_names], axis=1)
    assert scaled.min() == pytest.approx(-0.97, abs=0.01)
    assert scaled.max() == pytest.approx(1.52, abs=0.01)
    outside = int(((scaled < 0) | (scaled > 1)).sum())
    assert 100 <= outside <= 1000


def test_short_recipe_learns_rosmap(rosmap):
    """300 of the paper's 1000 epochs already separate AD from NC well above chance."""
    model = fc.create_model("mmdynamics", rosmap.schema)
    cfg = fc.config.override(fc.get_method("mmdynamics").train_defaults, epochs=300, seed=0)
    fit(model, rosmap.train, cfg, progress=False)
    metrics = evaluate_model(model, rosmap.test)
    assert metrics["acc"] >= 0.70 and metrics["auc"] >= 0.80
    assert set(metrics["tcp"]) == {"mRNA", "methylation", "miRNA"}
