"""Hand-edited or corrupt checkpoints are refused at load, naming the file, field or tensor and what was expected."""

from __future__ import annotations

import math

import pytest
import torch

import fusioncore as fc
from fusioncore.checkpoint import CheckpointError
from security_helpers import edited, small_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return small_checkpoint(tmp_path_factory.mktemp("ckpt") / "model")


def first_weight(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 2)


def set_pre(modality: str, field: str, value):
    def edit(cfg):
        cfg["preprocessing"][modality][field] = value(cfg["preprocessing"][modality][field])
    return edit


def rename_pre(cfg):
    cfg["preprocessing"]["rna"] = cfg["preprocessing"].pop("m0")


def swap_min_max(cfg):
    pre = cfg["preprocessing"]["m1"]
    pre["min"][2], pre["max"][2] = pre["max"][2] + 1.0, pre["min"][2]


def set_shape(value):
    def edit(cfg):
        cfg["schema"]["modalities"][0]["shape"] = value
        cfg["schema"]["modalities"][0]["features"] = []
    return edit


def set_model(field, value):
    def edit(cfg):
        cfg["model"][field] = value
    return edit


def nan_weight(state):
    state[first_weight(state)][0, 0] = math.nan


def inf_weight(state):
    state[first_weight(state)][-1, -1] = -math.inf


def rename_weight(state):
    key = first_weight(state)
    state[key.replace("weight", "kernel")] = state.pop(key)


def double_weight(state):
    key = first_weight(state)
    state[key] = state[key].double()


CASES = {
    "statistics of the wrong length": (set_pre("m0", "min", lambda v: v[:-1]), None,
                                       "preprocessing.m0.min: 5 values for a modality of 6 features"),
    "min > max": (swap_min_max, None, "preprocessing.m1: min > max for 1 feature(s), e.g. feature 2"),
    "NaN statistics": (set_pre("m2", "max", lambda v: [None] + v[1:]), None, "preprocessing.m2.max: holds NaN"),
    "renamed preprocessing key": (rename_pre, None, "unknown: ['rna']; missing: ['m0']); was a key renamed?"),
    "negative dimension in the schema": (set_shape([-6]), None, "shape [-6] must be 1 positive integer(s)"),
    "empty dimension in the schema": (set_shape([0]), None, "shape [0] must be 1 positive integer(s)"),
    "image shape of the wrong rank": (set_shape([3, 64]), None, "shape [3, 64] must be 1 positive integer(s)"),
    "negative hidden size": (set_model("hidden_dim", -1), None, "hidden_dim=-1: dimensions and counts must be positive"),
    "empty hidden size": (set_model("hidden_dim", 0), None, "empty weight"),
    "renamed config field": (lambda c: c["model"].update(hidden_dims=c["model"].pop("hidden_dim")), None,
                             "unknown field(s) ['hidden_dims']"),
    "NaN weights": (None, nan_weight, "hold NaN or infinite values"),
    "infinite weights": (None, inf_weight, "hold NaN or infinite values"),
    "renamed weight keys": (None, rename_weight, "weights do not match the model in config.json"),
    "float64 weights": (None, double_weight, "is stored as F64, the model expects F32"),
    "one class": (lambda c: c["schema"].update(classes=["c0"]), None, "at least 2 distinct class names"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_checkpoints_are_refused_naming_what_is_wrong(ckpt, tmp_path, case):
    config, state, message = CASES[case]
    folder = edited(ckpt, tmp_path / "bad", config, state)
    with pytest.raises(CheckpointError) as err:
        fc.load(folder)
    text = str(err.value)
    assert message in text, text
    assert str(folder) in text  # names the file


def test_nan_literal_in_config_json_is_refused(ckpt, tmp_path):
    folder = edited(ckpt, tmp_path / "bad")
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text.replace('"class_weights": null', '"class_weights": [NaN, 1.0]'))
    with pytest.raises(CheckpointError, match="NaN is not allowed"):
        fc.load(folder)


def test_a_valid_checkpoint_still_loads_bit_identically(ckpt):
    model = fc.load(ckpt)
    again = fc.load(ckpt)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_oversized_config_is_refused_unread(ckpt, tmp_path, monkeypatch):
    import fusioncore.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(CheckpointError, match="refused unread") as err:
        fc.load(ckpt)
    assert str(err.value).count("config.json") == 1
