"""``train --out`` / ``import --out``: nothing is overwritten, nothing is lost, checked before training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from fusioncore.cli import main
from fusioncore.output_folder import OutputError, claim_output, lock_path

from doc_layouts import write_mogonet


def _train(tmp_path, out, *extra):
    data = tmp_path / "ds"
    if not data.is_dir():
        write_mogonet(data, n_tr=20, n_te=8)
    return main(["train", "--method", "early", "--data", f"mogonet:{data}", "--out", str(out), "--epochs", "1",
                 "--param", "hidden_dim=4", "--quiet", *extra])


def test_existing_paths_are_refused_naming_them(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert _train(tmp_path, tmp_path / "afile") == 2
    assert "afile: exists and is not a folder" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("years of work")
    assert _train(tmp_path, tmp_path / "mine") == 2
    err = capsys.readouterr().err
    assert "mine: exists and is not a checkpoint folder (it holds thesis.docx)" in err
    assert (tmp_path / "mine" / "thesis.docx").read_text() == "years of work"
    assert _train(tmp_path, tmp_path / "afile" / "sub") == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err


def test_a_checkpoint_is_replaced_only_with_force(tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert _train(tmp_path, out) == 0
    first = (out / "model.safetensors").read_bytes()
    (out / "notes.txt").write_text("kept")
    capsys.readouterr()
    assert _train(tmp_path, out, "--seed", "3") == 2
    assert "holds a checkpoint already; pass --force" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == first
    assert _train(tmp_path, out, "--seed", "3", "--force") == 0
    assert (out / "model.safetensors").read_bytes() != first and (out / "notes.txt").read_text() == "kept"
    assert not lock_path(out).exists()  # released
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _train(tmp_path, empty) == 0  # an empty folder is fine


def test_import_refuses_to_replace_without_force(tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert _train(tmp_path, out) == 0
    capsys.readouterr()
    code = main(["import", "mmdynamics", "--state-dict", str(tmp_path / "none.pt"), "--data",
                 f"mogonet:{tmp_path / 'ds'}", "--out", str(out)])
    assert code == 2 and "holds a checkpoint already" in capsys.readouterr().err


def test_a_second_training_into_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "user": "ana",
                                              "started": "2026-01-01 10:00:00 UTC", "command": "fusioncore train"}))
        assert _train(tmp_path, out) == 2
        err = capsys.readouterr().err
        assert f"another training is writing into this folder (pid {holder.pid}" in err and "user ana" in err
        assert str(lock_path(out)) in err and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale, taken over with a note, and released at the end
    assert _train(tmp_path, out) == 0
    assert "taking over the stale lock" in capsys.readouterr().err
    assert (out / "config.json").is_file() and not lock_path(out).exists()


def test_the_lock_is_held_while_the_block_runs(tmp_path):
    out = tmp_path / "run"
    with claim_output(out):
        record = json.loads(lock_path(out).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with pytest.raises(OutputError, match="another training is writing"):
            with claim_output(out):
                pass
    assert not lock_path(out).exists()


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write in: mode 0555, or immutable for root (skipped if neither works)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make an unwritable folder")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)


def test_an_unwritable_parent_is_refused_before_training(tmp_path, capsys, monkeypatch, unwritable):
    import fusioncore.training as training

    def never(*args, **kwargs):  # the refusal must come before any epoch
        raise AssertionError("training started")

    monkeypatch.setattr(training, "fit", never)
    assert _train(tmp_path, unwritable / "out") == 2
    err = capsys.readouterr().err
    assert "--out" in err and str(unwritable) in err and ("ermission denied" in err or "not permitted" in err)
