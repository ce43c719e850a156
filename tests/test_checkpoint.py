"""Checkpoint folders: bit-identical round trips and clear errors for broken folders."""

from __future__ import annotations

import json

import pytest
import torch

import fusioncore as fc
from fusioncore.checkpoint import CheckpointError, checkpoint_hash
from fusioncore.config import from_jsonable, to_jsonable
from fusioncore.data.dataset import to_batch
from fusioncore.models.mmdynamics import MMDynamicsConfig
from fusioncore.training import fit


@pytest.fixture
def trained(tiny_data, tmp_path):
    model = fc.create_model("mmdynamics", tiny_data.schema, hidden_dim=8)
    fit(model, tiny_data, fc.TrainConfig(epochs=3, seed=0), progress=False)
    folder = model.save(tmp_path / "ckpt", metrics={"acc": 1.0})
    return model, folder


def test_round_trip_is_bit_identical(trained, tiny_data):
    model, folder = trained
    loaded = fc.load(folder)
    batch = to_batch(tiny_data, model.preprocessing)
    assert torch.equal(model.eval()(batch).logits, loaded(to_batch(tiny_data, loaded.preprocessing)).logits)
    assert loaded.config == model.config and loaded.schema == model.schema
    assert loaded.train_config == model.train_config
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["method"] == "mmdynamics" and config["preprocessing"]["m0"]["kind"] == "minmax"
    assert len(config["schema"]["modalities"][0]["features"]) == 6


def test_config_json_round_trip():
    cfg = MMDynamicsConfig(hidden_dim=12, feature_informativeness=False)
    assert from_jsonable(MMDynamicsConfig, json.loads(json.dumps(to_jsonable(cfg)))) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        from_jsonable(MMDynamicsConfig, {"hidden": 3})


def test_missing_and_corrupt_files_are_named(trained, tmp_path):
    _, folder = trained
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        fc.load(tmp_path / "nowhere")
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        fc.load(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        fc.load(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: not valid JSON"):
        fc.load(folder)


def test_weights_that_do_not_fit_the_config_are_refused(trained, tiny_data, tmp_path):
    _, folder = trained
    other = fc.create_model("mmdynamics", tiny_data.schema, hidden_dim=9)
    other.save(tmp_path / "other")
    (folder / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="has shape"):
        fc.load(folder)


def test_unknown_method_and_version(trained):
    _, folder = trained
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "method": "nope"}))
    with pytest.raises(CheckpointError, match="unknown method 'nope'"):
        fc.load(folder)
    (folder / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        fc.load(folder)


def test_hash_changes_with_weights(trained):
    model, folder = trained
    before = checkpoint_hash(folder)
    with torch.no_grad():
        model.fusion.bias.add_(1.0)
    model.save(folder)
    assert checkpoint_hash(folder) != before


def test_device_selection():
    assert fc.select_device("cpu").type == "cpu"
    assert fc.select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fc.select_device("cuda")


def test_saving_twice_gives_the_same_bytes(tiny_data, tmp_path):
    """Safetensors writes its metadata map in hash order; checkpoints must still be byte-stable."""
    model = fc.create_model("mmdynamics", tiny_data.schema, hidden_dim=4)
    blobs = {(model.save(tmp_path / f"c{i}") / "model.safetensors").read_bytes() for i in range(4)}
    assert len(blobs) == 1


def test_hash_of_a_folder_without_weights_is_a_checkpoint_error(trained):
    _, folder = trained
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        checkpoint_hash(folder)


def test_saving_without_metrics_removes_stale_metrics(trained):
    model, folder = trained
    assert (folder / "metrics.json").is_file()
    model.save(folder)
    assert not (folder / "metrics.json").exists()
