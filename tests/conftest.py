"""Shared fixtures: tiny seeded datasets and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.dataset import DatasetSplits, MultimodalDataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# The dashboard's background prefetch (app/state.py) off in this process: what an AppTest finds
# cached must depend only on what the tests ran. Servers the browser tests start turn it back on.
os.environ["FUSIONCORE_PREFETCH"] = "0"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip cleanly when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def rosmap_dir(shared_data: Path) -> Path:
    folder = shared_data / "rosmap"
    if not (folder / "1_tr.csv").is_file():
        pytest.skip("ROSMAP files not available")
    return folder


def make_tabular_dataset(
    n: int = 64, dims: tuple[int, ...] = (6, 5, 4), n_classes: int = 2, seed: int = 0, missing: float = 0.0
) -> MultimodalDataset:
    """A small labelled cohort whose first two features of every modality carry the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    specs, features = [], {}
    for j, d in enumerate(dims):
        name = f"m{j}"
        x = rng.normal(size=(n, d)).astype(np.float32)
        x[:, :2] += 2.0 * labels[:, None]
        features[name] = x
        specs.append(ModalitySpec(name=name, kind="tabular", shape=(d,), features=tuple(f"{name}_f{k}" for k in range(d))))
    present = rng.random((n, len(dims))) >= missing
    present[~present.any(axis=1), 0] = True
    for j, spec in enumerate(specs):
        features[spec.name][~present[:, j]] = 0.0
    schema = DataSchema(modalities=tuple(specs), classes=tuple(f"c{k}" for k in range(n_classes)))
    return MultimodalDataset(
        schema=schema, features=features, present=present, labels=labels.astype(np.int64),
        sample_ids=tuple(f"s{i:03d}" for i in range(n)), source="synthetic-test",
    )


@pytest.fixture
def tiny_data() -> MultimodalDataset:
    return make_tabular_dataset()


@pytest.fixture
def tiny_splits() -> DatasetSplits:
    data = make_tabular_dataset(n=96)
    return DatasetSplits(train=data.subset(np.arange(64)), test=data.subset(np.arange(64, 96)))
