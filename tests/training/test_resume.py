"""Training-state checkpoints: a run killed after k steps and resumed ends with the same weights.

The interrupted run is stopped hard (``os._exit`` in a subprocess: no cleanup, no ``finally``)
or by an exception (in-process, leaving every random stream dirty); either way the resumed run
must reproduce the uninterrupted run's final weights and history exactly -- which needs the
model, optimiser, scheduler, data order, modality-dropout and nn.Dropout RNG states all restored.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fusioncore as fc
from fusioncore.cli import TRAINING_STATE_DIR, main
from fusioncore.training import fit
from fusioncore.training.resume import (
    ResumeError,
    decode_nested,
    encode_nested,
    find_state,
    load_training_state,
)
from safetensors.torch import load_file

from conftest import make_tabular_dataset
from doc_layouts import write_mogonet

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


class Killed(BaseException):
    """Stands in for a kill in the in-process tests (a BaseException, as a kill is no error the
    CLI's exception boundary could turn into a message: it ends the process)."""


def _kill_after(k: int):
    def on_step(step: int, record: dict) -> None:
        if step == k:
            raise Killed(f"killed after step {step}")

    return on_step


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_nested_encoding_round_trip_without_pickle():
    tensors: dict[str, torch.Tensor] = {}
    obj = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.arange(4.0)}, 7: {}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 7], "fused": None, "amsgrad": False}],
        "odd": [float("nan"), float("inf"), "text", True],
        "__reserved": 1,
    }
    encoded = encode_nested(obj, "x", tensors)
    json.dumps(encoded, allow_nan=False)  # strict JSON: no NaN literals, no objects
    back = decode_nested(json.loads(json.dumps(encoded)), tensors, "test")
    assert set(back["state"]) == {0, 7} and back["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(back["state"][0]["exp_avg"], torch.arange(4.0)) and back["state"][0]["step"].dim() == 0
    assert math.isnan(back["odd"][0]) and back["odd"][1] == math.inf and back["__reserved"] == 1
    with pytest.raises(ResumeError, match="cannot store a set"):
        encode_nested({"bad": {1, 2}}, "x", {})


def test_minibatch_resume_after_exception_matches(tmp_path):
    data = make_tabular_dataset(n=44, missing=0.3, seed=1)
    cfg = fc.TrainConfig(epochs=3, lr=1e-2, batch_size=8, scheduler="cosine", warmup_steps=3, grad_clip=0.5,
                         modality_dropout=0.3, seed=2)

    def model():
        torch.manual_seed(0)
        return fc.create_model("early", data.schema, hidden_dim=8, head_dim=8, dropout=0.3)  # dropout on purpose

    reference = model()
    ref = fit(reference, data, cfg, progress=False)
    with pytest.raises(Killed):
        fit(model(), data, cfg, progress=False, state_dir=tmp_path / "s", state_every=3, on_step=_kill_after(8))
    torch.manual_seed(999)  # the resumed process starts from other random states
    resumed = fc.create_model("early", data.schema, hidden_dim=8, head_dim=8, dropout=0.3)
    res = fit(resumed, data, cfg, progress=False, state_dir=tmp_path / "s", state_every=3, resume=True)
    assert res.resumed_from_step == 6 and res.steps == ref.steps == 18
    assert res.history == ref.history
    assert _same_weights(reference, resumed)
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == ["state.json", "state.safetensors"]  # no pickle anywhere
    assert load_training_state(tmp_path / "s").progress["finished"] is True


def test_full_batch_resume_with_step_schedule(tmp_path):
    data = make_tabular_dataset(n=30, seed=3)
    cfg = fc.TrainConfig(epochs=9, lr=1e-2, scheduler="step", step_size=3, gamma=0.5, seed=1)

    def model():
        torch.manual_seed(4)
        return fc.create_model("mmdynamics", data.schema, hidden_dim=8)

    reference = model()
    ref = fit(reference, data, cfg, progress=False)
    with pytest.raises(Killed):
        fit(model(), data, cfg, progress=False, state_dir=tmp_path / "s", state_every=2, on_step=_kill_after(5))
    resumed = model()
    res = fit(resumed, data, cfg, progress=False, state_dir=tmp_path / "s", resume=True)
    assert res.resumed_from_step == 4
    assert res.history == ref.history and _same_weights(reference, resumed)


def test_state_written_before_a_config_field_existed_still_resumes(tmp_path):
    """A state saved by an older version lacks config fields added since (their defaults keep the
    old behaviour); resuming fills them in rather than refusing the run as a different one."""
    data = make_tabular_dataset(n=30, seed=3)
    cfg = fc.TrainConfig(epochs=6, lr=1e-2, seed=1)

    def model():
        torch.manual_seed(4)
        return fc.create_model("mmdynamics", data.schema, hidden_dim=8)

    reference = model()
    fit(reference, data, cfg, progress=False)
    with pytest.raises(Killed):
        fit(model(), data, cfg, progress=False, state_dir=tmp_path / "s", state_every=2, on_step=_kill_after(3))
    path = tmp_path / "s" / "state.json"
    document = json.loads(path.read_text())
    del document["meta"]["model_config"]["image_gate_training"]  # as written before that field existed
    path.write_text(json.dumps(document))
    resumed = model()
    res = fit(resumed, data, cfg, progress=False, state_dir=tmp_path / "s", resume=True)
    assert res.resumed_from_step == 2 and _same_weights(reference, resumed)
    document["meta"]["model_config"]["hidden_dim"] = 16  # a value that differs is still refused
    path.write_text(json.dumps(document))
    with pytest.raises(ResumeError, match="model_config"):
        fit(model(), data, cfg, progress=False, state_dir=tmp_path / "s", resume=True)


_HARD_KILL = """
import os, sys, torch
sys.path[:0] = [{here!r}, {tests!r}]
torch.set_num_threads(1)
import fusioncore as fc
from fusioncore.training import fit
from test_resume import hard_kill_setup
data, cfg, model = hard_kill_setup()
def on_step(step, record):
    if step == {k}:
        os._exit(9)  # like SIGKILL: nothing after this runs
fit(model, data, cfg, progress=False, state_dir={state!r}, state_every=2, on_step=on_step)
"""


def hard_kill_setup():
    data = make_tabular_dataset(n=40, missing=0.2, seed=5)
    cfg = fc.TrainConfig(epochs=2, lr=5e-3, batch_size=6, optimizer="adamw", scheduler="cosine", modality_dropout=0.2, seed=7)
    torch.manual_seed(1)
    return data, cfg, fc.create_model("early", data.schema, hidden_dim=8, head_dim=0, dropout=0.2)


def test_resume_after_a_hard_kill(tmp_path):
    state = tmp_path / "state"
    script = _HARD_KILL.format(here=str(HERE), tests=str(TESTS), k=5, state=str(state))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=REPO)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert load_training_state(state).progress["global_step"] == 4
    data, cfg, reference = hard_kill_setup()
    ref = fit(reference, data, cfg, progress=False)
    data, cfg, resumed = hard_kill_setup()
    res = fit(resumed, data, cfg, progress=False, state_dir=state, state_every=2, resume=True)
    assert res.resumed_from_step == 4 and res.history == ref.history and _same_weights(reference, resumed)


def test_resume_refuses_another_run_and_survives_a_kill_mid_write(tmp_path):
    data = make_tabular_dataset(n=20, seed=6)
    cfg = fc.TrainConfig(epochs=2, lr=1e-2, batch_size=5, seed=0)
    fit(fc.create_model("early", data.schema, hidden_dim=4, head_dim=0), data, cfg, progress=False,
        state_dir=tmp_path / "s", state_every=3)
    other = fc.TrainConfig(epochs=2, lr=2e-2, batch_size=5, seed=0)
    with pytest.raises(ValueError, match="different run.*train_config"):
        fit(fc.create_model("early", data.schema, hidden_dim=4, head_dim=0), data, other, progress=False,
            state_dir=tmp_path / "s", resume=True)
    # a kill between the two renames of a state swap leaves only "<dir>.old": it is used
    (tmp_path / "s").rename(tmp_path / "s.old")
    assert find_state(tmp_path / "s") == tmp_path / "s.old"
    res = fit(fc.create_model("early", data.schema, hidden_dim=4, head_dim=0), data, cfg, progress=False,
              state_dir=tmp_path / "s", resume=True)
    assert res.resumed_from_step == 8 and len(res.history) == 2  # finished run: nothing left to do
    (tmp_path / "s.old" / "state.json").write_text("{not json")
    with pytest.raises(ResumeError, match="state.json: not valid JSON"):
        load_training_state(tmp_path / "s")
    with pytest.raises(ValueError, match="need a state_dir"):
        fit(fc.create_model("early", data.schema, hidden_dim=4), data, cfg, progress=False, resume=True)


def test_cli_resume_matches_uninterrupted(tmp_path, capsys, monkeypatch):
    data = write_mogonet(tmp_path / "ds", n_tr=30, n_te=8, dims=(5, 4))
    argv = ["train", "--method", "mmdynamics", "--data", f"mogonet:{data}", "--epochs", "4", "--batch-size", "8",
            "--lr", "0.01", "--device", "cpu", "--quiet", "--param", "hidden_dim=8", "--state-every", "3"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["resumed_from_step"] is None and full["world_size"] == 1

    import fusioncore.training.recipes as training  # `train` trains through train_by_recipe

    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **kw: real_fit(*a, **kw, on_step=_kill_after(7)))
    with pytest.raises(Killed):
        main([*argv, "--out", str(tmp_path / "cut")])
    monkeypatch.setattr(training, "fit", real_fit)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["resumed_from_step"] == 6 and resumed["final_loss"] == full["final_loss"]
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "cut" / TRAINING_STATE_DIR / "state.json").is_file()
