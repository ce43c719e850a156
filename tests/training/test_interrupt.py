"""Ctrl-C during training (issue 14, item 4): training stops when the step ends, the state of that
step is kept, and the message names the state folder and the exact command that continues the
run; continuing with it ends with the weights of a run never interrupted.

SIGINT is raised in this process (``signal.raise_signal``) from the step callback, so it lands
where a user's Ctrl-C would: in the middle of training, in the main thread.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fusioncore as fc
from fusioncore.cli import main
from fusioncore.cli.train import add_parser, interrupted_message, resume_command
from fusioncore.training import fit
from fusioncore.training.interrupt import TrainingInterrupted
from fusioncore.training.resume import find_state, load_training_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_tabular_dataset  # noqa: E402
from doc_layouts import write_mogonet  # noqa: E402


def _ctrl_c_at(step: int, times: int = 1):
    def on_step(global_step: int, record: dict) -> None:
        if global_step == step:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)

    return on_step


def _setup():
    data = make_tabular_dataset(n=30, missing=0.2, seed=4)
    cfg = fc.TrainConfig(epochs=3, lr=1e-2, batch_size=8, scheduler="cosine", modality_dropout=0.2, seed=2)
    torch.manual_seed(1)
    return data, cfg, fc.create_model("early", data.schema, hidden_dim=8, head_dim=8, dropout=0.2)


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("step", [2, 4])  # mid-epoch and an epoch's last step (4 steps per epoch)
def test_ctrl_c_keeps_the_state_of_the_step_and_resuming_matches(tmp_path, step):
    data, cfg, reference = _setup()
    ref = fit(reference, data, cfg, progress=False)
    data, cfg, model = _setup()
    with pytest.raises(TrainingInterrupted) as caught:
        fit(model, data, cfg, progress=False, state_dir=tmp_path / "s", on_step=_ctrl_c_at(step))
    assert caught.value.global_step == step and caught.value.total_steps == 12
    assert str(caught.value) == f"stopped after optimiser step {step} of 12; the training state is kept in {tmp_path / 's'}"
    assert load_training_state(tmp_path / "s").progress["global_step"] == step
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's handler is back
    data, cfg, resumed = _setup()
    res = fit(resumed, data, cfg, progress=False, state_dir=tmp_path / "s", resume=True)
    assert res.resumed_from_step == step and res.history == ref.history and _same_weights(reference, resumed)


def test_a_second_ctrl_c_stops_at_once_and_without_a_state_folder_the_first_does(tmp_path):
    data, cfg, model = _setup()
    with pytest.raises(KeyboardInterrupt) as caught:
        fit(model, data, cfg, progress=False, state_dir=tmp_path / "s", on_step=_ctrl_c_at(3, times=2))
    assert type(caught.value) is KeyboardInterrupt and find_state(tmp_path / "s") is None
    steps = []
    data, cfg, model = _setup()
    with pytest.raises(KeyboardInterrupt) as caught:
        fit(model, data, cfg, progress=False, on_step=lambda s, r: (steps.append(s), _ctrl_c_at(3)(s, r)))
    assert type(caught.value) is KeyboardInterrupt and steps == [1, 2, 3]  # raised inside step 3's callback
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _train_args(tmp_path: Path, *extra: str) -> list[str]:
    data = write_mogonet(tmp_path / "ds", n_tr=30, n_te=8, dims=(5, 4))
    return ["train", "--method", "mmdynamics", "--data", f"mogonet:{data}", "--epochs", "4", "--batch-size", "8",
            "--lr", "0.01", "--device", "cpu", "--quiet", "--param", "hidden_dim=8", *extra]


def test_cli_ctrl_c_names_the_state_and_the_command_that_continues(tmp_path, capsys, monkeypatch):
    argv = _train_args(tmp_path)
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    capsys.readouterr()

    import fusioncore.training.recipes as training  # `train` trains through train_by_recipe

    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **kw: real_fit(*a, **kw, on_step=_ctrl_c_at(7)))
    out = tmp_path / "cut here"  # a space: the command must quote it
    assert main([*argv, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    state = out / "training_state"
    assert "fusioncore train: interrupted; the training state after optimiser step 7 of " in err
    assert f"is kept in {state}. Continue with: fusioncore train " in err and "Traceback" not in err
    command = err.split("Continue with: ", 1)[1].strip()
    words = shlex.split(command)
    assert words[:2] == ["fusioncore", "train"] and words[-1] == "--resume" and str(out) in words
    monkeypatch.setattr(training, "fit", real_fit)
    assert main(words[1:]) == 0  # the command as printed continues the run
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["resumed_from_step"] == 7
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fusioncore")
    add_parser(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def _options(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func"}  # func: a new wrapper per parser


def test_resume_command_gives_the_options_set_again_with_resume():
    args = _parse("--method", "early", "--data", "table:my cohort", "--out", "runs/a b", "--epochs", "50",
                  "--param", "hidden_dim=8", "--param", "dropout=0.1", "--refit", "--lr", "0.003", "--quiet")
    assert resume_command(args) == (
        "fusioncore train --method early --data 'table:my cohort' --out 'runs/a b' --epochs 50 "
        "--lr 0.003 --refit --param hidden_dim=8 --param dropout=0.1 --quiet --resume"
    )
    again = _parse(*shlex.split(resume_command(args))[2:])
    assert _options(again) == {**_options(args), "resume": True}


def test_interrupted_message_without_a_step_count_reads_the_state_folder(tmp_path):
    """A plain KeyboardInterrupt (a second Ctrl-C, or a sharded run) carries no step: the message
    reads it from the state the run left, or says there is none."""
    args = _parse("--method", "early", "--data", "demo", "--out", str(tmp_path / "m"))
    assert interrupted_message(args, KeyboardInterrupt()).startswith(
        "no training state had been written yet, so there is nothing to resume; run the same command again")
    data, cfg, model = _setup()
    fit(model, data, cfg, progress=False, state_dir=tmp_path / "m" / "training_state", state_every=5)
    assert interrupted_message(args, KeyboardInterrupt()) == (
        f"the training state after optimiser step 12 of 12 is kept in {tmp_path / 'm' / 'training_state'} (training "
        "had finished; resuming evaluates the model and writes the checkpoint). Continue with: "
        f"fusioncore train --method early --data demo --out {tmp_path / 'm'} --resume")
