"""The command line: train -> checkpoint + metrics.json -> evaluate; import; clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.cli import main
from fusioncore.data.mogonet import load_mogonet
from fusioncore.importers import official_to_fusioncore_keys

from doc_layouts import official_state_dict, write_mogonet


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_train_then_evaluate(tmp_path, capsys):
    data = write_mogonet(tmp_path / "ds", n_tr=30, n_te=10)
    ckpt = tmp_path / "ckpt"
    code, record, err = run(capsys, "train", "--method", "mmdynamics", "--data", f"mogonet:{data}", "--seed", 1,
                            "--out", ckpt, "--epochs", 5, "--param", "hidden_dim=8", "--quiet")
    assert code == 0, err
    assert (ckpt / "config.json").is_file() and (ckpt / "model.safetensors").is_file()
    saved = json.loads((ckpt / "metrics.json").read_text())
    assert saved["test"]["acc"] == record["test"]["acc"] and saved["seed"] == 1
    code, metrics, err = run(capsys, "evaluate", "--checkpoint", ckpt, "--data", f"mogonet:{data}", "--device", "cpu")
    assert code == 0, err
    for key in ("acc", "f1", "f1_macro", "f1_weighted", "auc", "balanced_acc"):
        assert key in metrics
    assert metrics["acc"] == pytest.approx(record["test"]["acc"])
    tcp = metrics["tcp"]["mRNA"]
    for key in ("mse", "rmse", "mae", "r2", "mape", "frac_err_gt_0.1tcp", "frac_err_gt_1.0tcp"):
        assert key in tcp
    code, removed, _ = run(capsys, "evaluate", "--checkpoint", ckpt, "--data", f"mogonet:{data}", "--remove-modality", "mRNA")
    assert code == 0 and removed["removed_modalities"] == ["mRNA"] and removed["tcp"]["mRNA"] == {"n": 0}


def test_bad_inputs_exit_2_with_a_message(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--method", "nope", "--data", "mogonet:x", "--out", tmp_path / "o")
    assert code == 2 and "unknown method 'nope'" in err
    code, _, err = run(capsys, "train", "--method", "mmdynamics", "--data", f"mogonet:{tmp_path}", "--out", tmp_path / "o")
    assert code == 2 and "no MOGONET view files" in err
    data = write_mogonet(tmp_path / "ds")
    code, _, err = run(capsys, "train", "--method", "mmdynamics", "--data", f"mogonet:{data}", "--out", tmp_path / "o",
                       "--param", "hidden=3")
    assert code == 2 and "KEY one of" in err
    code, _, err = run(capsys, "evaluate", "--checkpoint", tmp_path / "missing", "--data", f"mogonet:{data}")
    assert code == 2 and "not a checkpoint folder" in err


def test_list_shows_methods(capsys):
    code, methods, _ = run(capsys, "list")
    assert code == 0 and "mmdynamics" in methods


def _official_forward(state, xs):
    """The official MMDynamic.infer, written out from its state_dict."""
    feats = []
    for i, x in enumerate(xs):
        lin = lambda p, v: v @ state[f"{p}.{i}.clf.0.weight"].T + state[f"{p}.{i}.clf.0.bias"]  # noqa: E731
        h = torch.relu(lin("FeatureEncoder", x * torch.sigmoid(lin("FeatureInforEncoder", x))))
        feats.append(h * lin("TCPConfidenceLayer", h))
    return torch.cat(feats, 1) @ state["MMClasifier.0.clf.0.weight"].T + state["MMClasifier.0.clf.0.bias"]


def test_importofficial_state_dict(tmp_path, capsys):
    data = write_mogonet(tmp_path / "ds", dims=(4, 3, 5))
    state = official_state_dict((4, 3, 5), hidden=7, k=2)
    torch.save(state, tmp_path / "checkpoint.pt")
    code, result, err = run(capsys, "import", "mmdynamics", "--state-dict", tmp_path / "checkpoint.pt",
                            "--data", f"mogonet:{data}", "--out", tmp_path / "imported")
    assert code == 0, err
    model = fc.load(tmp_path / "imported")
    keys = official_to_fusioncore_keys(model.modality_names)
    assert keys["FeatureInforEncoder.2.clf.0.weight"] == "branches.miRNA.gate.weight"
    assert keys["MMClasifier.0.clf.0.bias"] == "fusion.bias"
    splits = load_mogonet(data)
    xs = [torch.from_numpy(model.preprocessing[n].transform(splits.test.features[n])) for n in model.modality_names]
    from fusioncore.data.dataset import to_batch

    ours = model(to_batch(splits.test, model.preprocessing)).logits
    assert torch.allclose(ours, _official_forward(state, xs), atol=1e-4)


def test_import_refuses_wrong_keys_and_pickles(tmp_path, capsys):
    data = write_mogonet(tmp_path / "ds", dims=(4, 3))
    state = official_state_dict((4, 3, 5), hidden=7, k=2)
    torch.save(state, tmp_path / "three_views.pt")
    code, _, err = run(capsys, "import", "mmdynamics", "--state-dict", tmp_path / "three_views.pt",
                       "--data", f"mogonet:{data}", "--out", tmp_path / "x")
    assert code == 2 and "unexpected" in err
    torch.save({"model": np.arange(3)}, tmp_path / "pickled.pt")
    code, _, err = run(capsys, "import", "mmdynamics", "--state-dict", tmp_path / "pickled.pt",
                       "--data", f"mogonet:{data}", "--out", tmp_path / "y")
    assert code == 2 and "weights_only=True" in err
