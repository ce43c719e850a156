"""A model too large to build is refused before a single weight is allocated, with the figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fusioncore as fc
from fusioncore.budget import Budget, ModelTooLarge, check_model_size, meta_model, model_size
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.registry import get_method, list_models
from security_helpers import small_checkpoint, zip_of

REPO = Path(__file__).resolve().parents[2]


def schema_of(*dims: int, image: bool = False) -> DataSchema:
    mods = tuple(ModalitySpec(f"m{i}", "tabular", (d,)) for i, d in enumerate(dims))
    if image:
        mods += (ModalitySpec("slide", "image", (3, 32, 32)),)
    return DataSchema(mods, ("a", "b"))


@pytest.mark.parametrize("method", list_models())
def test_the_meta_twin_has_the_real_models_shapes(method):
    entry = get_method(method)
    schema = schema_of(7, 5, image="image" in entry.supports)
    meta = meta_model(entry.model_cls, entry.config_cls(), schema)
    real = entry.model_cls(entry.config_cls(), schema)
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert model_size(meta).parameters == sum(p.numel() for p in real.parameters())
    assert all(t.is_meta for t in meta.state_dict().values())


def test_a_feature_gate_too_large_to_build_is_refused_with_its_memory():
    with pytest.raises(ModelTooLarge) as err:
        fc.create_model("mmdynamics", schema_of(50_000, 10))
    text = str(err.value)
    # MM-dynamics gates a modality with a d x d layer: 50,000^2 weights + biases, ~10 GB as float32
    assert "2,550," in text and "GB" in text and "50,000 x 50,000" in text
    assert "FUSIONCORE_MAX_PARAMETERS" in text and "fewer features" in text


def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FUSIONCORE_MAX_PARAMETERS", "1000")
    with pytest.raises(ModelTooLarge, match="at most 1,000 parameters"):
        fc.create_model("early", schema_of(30, 30))
    monkeypatch.setenv("FUSIONCORE_MAX_PARAMETERS", "lots")
    with pytest.raises(ValueError, match="expected numbers"):
        Budget.from_env()
    entry = get_method("early")
    check_model_size(entry.model_cls, entry.config_cls(), schema_of(30, 30), budget=Budget(10**9, 10**12))


def test_negative_hyper_parameters_are_named_not_a_torch_error():
    with pytest.raises(ValueError, match=r"hidden_dim=-1: dimensions and counts must be positive integers"):
        fc.create_model("mmdynamics", schema_of(5, 5), hidden_dim=-1)


PROBE = """
import sys
from pathlib import Path


def peak_kb():  # VmHWM: this process's own peak (ru_maxrss may carry the forking parent's over exec)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))


from fusioncore.inspect.uploads import load_checkpoint_zip
from fusioncore.budget import meta_model
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.registry import get_method
entry = get_method("mmdynamics")  # warm-up: the imports a first model build makes (~650 MB with torch)
meta_model(entry.model_cls, entry.config_cls(), DataSchema((ModalitySpec("a", "tabular", (3,)),), ("x", "y")))
print("BASE_KB", peak_kb())
try:
    load_checkpoint_zip(Path(sys.argv[1]).read_bytes(), sys.argv[2], archive_name="tiny.zip")
except ValueError as err:
    print("REFUSED", err)
print("PEAK_KB", peak_kb())
"""


def test_a_tiny_upload_declaring_a_100000_feature_modality_stays_under_1_gb(tmp_path):
    """The issue's probe: a sub-kilobyte zip whose config asks for a 40 GB model."""
    ckpt = small_checkpoint(tmp_path / "ckpt")
    config = json.loads((ckpt / "config.json").read_text())
    config["schema"]["modalities"][0].update(shape=[100_000], features=[])
    config["preprocessing"] = {}
    payload = zip_of({"config.json": json.dumps(config).encode(), "model.safetensors": b"\0" * 64})
    assert len(payload) < 2000
    (tmp_path / "tiny.zip").write_bytes(payload)
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "tiny.zip"), str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=300, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "REFUSED tiny.zip: config.json: the model would have 10,00" in out.stdout
    assert "40.0" in out.stdout and "100,000 x 100,000" in out.stdout
    base_kb, peak_kb = int(out.stdout.split("BASE_KB")[1].split()[0]), int(out.stdout.split("PEAK_KB")[1])
    assert peak_kb < 1_000_000, f"peak RSS {peak_kb / 1e6:.2f} GB (imports {base_kb / 1e6:.2f} GB)"
    assert peak_kb - base_kb < 50_000, f"the refused load itself took {(peak_kb - base_kb) / 1e3:.0f} MB"
    assert not any((tmp_path / "work").iterdir())  # nothing left behind
