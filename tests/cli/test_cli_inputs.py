"""Issue 14, item 4 ("no tracebacks"): each bad input through the CLI -> exit 2 and a message naming
the file / option / field and what is expected (or, for European CSVs, read and said)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fusioncore.data.tables import load_tables
from own_data_helpers import cli, train, write_cohort

REPO = Path(__file__).resolve().parents[2]


def test_semicolon_latin1_decimal_comma_csv_is_read_and_said(tmp_path, capsys):
    plain = write_cohort(tmp_path / "plain")
    excel = write_cohort(tmp_path / "excel")
    text = (excel / "rna.csv").read_text().replace(",", ";").replace(".", ",").replace("rna_g0", "rna_\u00e9")
    (excel / "rna.csv").write_bytes(text.encode("cp1252"))
    (plain / "rna.csv").write_text((plain / "rna.csv").read_text().replace("rna_g0", "rna_\u00e9"))
    assert np.array_equal(load_tables(excel).train.features["rna"], load_tables(plain).train.features["rna"])
    code, _, err = train(capsys, f"table:{excel}", tmp_path / "m")
    assert code == 0
    assert "note: rna.csv: read with the semicolon separator ';' (detected from the header line)" in err
    assert "note: rna.csv: not UTF-8 text; decoded as Windows-1252 (latin-1)" in err
    assert "note: rna.csv: decimal commas read as decimal points" in err


def test_decimal_comma_with_comma_separator_names_the_cell(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    (folder / "prot.csv").write_text('sample_id,prot_g0\n' + "".join(f'S{i:04d},"0,{i}"\n' for i in range(30)))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "prot.csv, row 2, column 'prot_g0': '0,0' is not a number (a decimal comma?" in err


def test_labels_or_image_table_with_only_an_id_column(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    (folder / "labels.csv").write_text("sample_id\n" + "".join(f"S{i:04d}\n" for i in range(30)))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "labels.csv: only the sample-id column 'sample_id'; expected a label column too" in err
    folder = write_cohort(tmp_path / "d")
    (folder / "images.csv").write_text("sample_id\n" + "".join(f"S{i:04d}\n" for i in range(30)))
    (folder / "fusioncore.json").write_text(json.dumps({"labels": "labels.csv", "modalities": {
        "rna": "rna.csv", "slide": {"file": "images.csv", "kind": "image"}}}))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "images.csv: only the sample-id column 'sample_id'; expected a column of image paths" in err


@pytest.mark.parametrize("param, message", [
    ("hidden_dim=-1", "hidden_dim=-1: dimensions and counts must be positive integers"),
    ("hidden_dim=0", "a dimension of the schema or the hyper-parameters is 0"),
    ("hidden_dim=", "--param 'hidden_dim=': expected a whole number, got '' (the value is empty)"),
])
def test_negative_or_empty_dimensions(tmp_path, capsys, param, message):
    code, _, err = train(capsys, f"table:{write_cohort(tmp_path / 'c')}", tmp_path / "m", "--param", param)
    assert code == 2 and message in err and "Traceback" not in err


def test_import_state_dict_that_is_not_a_checkpoint_names_the_file(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    text = tmp_path / "notes.pt"
    text.write_text("hello, this is not a checkpoint")
    code, _, err = cli(capsys, "import", "mmdynamics", "--state-dict", text, "--data", f"table:{folder}", "--out", tmp_path / "o")
    assert code == 2 and f"--state-dict {text}: not a PyTorch checkpoint" in err and "torch.save" in err
    code, _, err = cli(capsys, "import", "mmdynamics", "--state-dict", tmp_path, "--data", f"table:{folder}", "--out", tmp_path / "o")
    assert code == 2 and f"--state-dict {tmp_path}: is a folder, expected a file" in err
    torch.save([1, 2], tmp_path / "list.pt")
    code, _, err = cli(capsys, "import", "mmdynamics", "--state-dict", tmp_path / "list.pt", "--data", f"table:{folder}",
                       "--out", tmp_path / "o")
    assert code == 2 and "list.pt: expected a mapping of parameter names to tensors" in err


def test_a_feature_gate_over_the_budget_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    """The 50,000-feature case at a small scale: the budget (an environment variable) is lowered
    instead of writing a 50,000-column table; the model is measured on the meta device."""
    monkeypatch.setenv("FUSIONCORE_MAX_PARAMETERS", "1000000")
    folder = write_cohort(tmp_path / "c", dims={"rna": 2000, "prot": 3})
    allocated = []
    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", lambda self: allocated.append(self.weight.device.type))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2
    assert "the largest tensor, 'branches.rna.gate.weight' (2,000 x 2,000), alone needs 0.02 GB" in err and "Use fewer features" in err
    assert allocated and set(allocated) == {"meta"}  # measured on the meta device, nothing built for real


def test_ctrl_c_during_training_exits_cleanly_and_keeps_the_last_state(tmp_path):
    folder = write_cohort(tmp_path / "c", n=60)
    out = tmp_path / "m"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FUSIONCORE_LOG_DIR": str(tmp_path / "logs")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusioncore", "train", "--method", "mmdynamics", "--data", f"table:{folder}",
         "--out", str(out), "--epochs", "100000", "--batch-size", "8", "--state-every", "5", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    state = out / "training_state" / "state.json"
    deadline = time.time() + 120
    while not state.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert state.is_file(), proc.stderr.read() if proc.poll() is not None else "no training state written in 120 s"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "fusioncore train: interrupted" in err and "Traceback" not in err
    from fusioncore.training.resume import load_training_state

    step = load_training_state(out / "training_state").progress["global_step"]
    assert step >= 5
    # the state of the step Ctrl-C stopped at, and the command that continues from it
    assert f"the training state after optimiser step {step} of " in err and "Continue with: fusioncore train " in err
    assert err.rstrip().endswith("--batch-size 8 --quiet --state-every 5 --resume"), err


REAL_ACCESS = os.access


def _deny(monkeypatch, denied: Path):
    """``os.access`` says no for ``denied`` (only: an earlier denial is replaced)."""
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == denied else REAL_ACCESS(p, mode, *a, **k))


def test_permission_denied_is_said_for_a_file_a_folder_and_an_image(tmp_path, capsys, monkeypatch):
    """Tests run as root, which reads anything: ``os.access`` is made to deny the path instead."""
    folder = write_cohort(tmp_path / "c")
    _deny(monkeypatch, folder / "labels.csv")
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "labels.csv: permission denied (this user may not read this file)" in err
    _deny(monkeypatch, folder)
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and f"{folder}: permission denied (this user may not read this folder)" in err
    from PIL import Image

    (folder / "img").mkdir()
    for i in range(30):
        Image.new("RGB", (8, 8)).save(folder / "img" / f"{i}.png")
    (folder / "images.csv").write_text("sample_id,path\n" + "".join(f"S{i:04d},img/{i}.png\n" for i in range(30)))
    _deny(monkeypatch, folder / "img" / "3.png")
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "row 4 (sample 'S0003', path 'img/3.png'): permission denied" in err


def test_permission_denied_for_a_folder_on_the_path_is_not_no_such_file(tmp_path, capsys, monkeypatch):
    folder = write_cohort(tmp_path / "c")
    real = os.stat

    def stat(path, *args, **kwargs):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "permission denied" in err and "not found" not in err and "No such file" not in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_on_a_real_unreadable_file(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    (folder / "rna.csv").chmod(0)
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "rna.csv: permission denied" in err
