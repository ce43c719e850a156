"""The CLI's exception boundary: every failure a message on stderr (exit 2), its traceback in the log."""

from __future__ import annotations

import importlib

import pytest

cli_main = importlib.import_module("fusioncore.cli.main")  # the module (the package exports the function)


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONCORE_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path / "logs"


def failing(exc: BaseException):
    def command(args):
        raise exc
    return command


def run_list_raising(monkeypatch, capsys, exc):
    """``fusioncore list`` with its handler replaced by one raising ``exc``."""
    real = cli_main.build_parser

    def build():
        parser = real()
        parser._subparsers._group_actions[0].choices["list"].set_defaults(func=failing(exc))
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    code = cli_main.main(["list"])
    return code, capsys.readouterr().err


def test_an_unexpected_exception_names_what_failed_and_where_the_traceback_is(monkeypatch, capsys, log_dir):
    code, err = run_list_raising(monkeypatch, capsys, RuntimeError("CUDA error: device-side assert\nmore lines"))
    assert code == 2
    assert "Traceback" not in err and "more lines" not in err
    assert "fusioncore list: internal error (RuntimeError: CUDA error: device-side assert)" in err
    log = log_dir / "cli.log"
    assert f"the traceback is in {log}" in err
    reference = err.split("(reference ")[1].split(")")[0]
    text = log.read_text()
    assert f"reference {reference} fusioncore list" in text and "Traceback (most recent call last)" in text
    assert (log.stat().st_mode & 0o777) == 0o600 and (log_dir.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("exc, code, message", [
    (ValueError("--epochs 0: must be positive"), 2, "fusioncore list: error: --epochs 0: must be positive"),
    (PermissionError(13, "Permission denied", "/data/x.csv"), 2, "fusioncore list: error: /data/x.csv: permission denied"),
    (MemoryError(), 2, "fusioncore list: error: out of memory"),
    (KeyboardInterrupt(), 130, "fusioncore list: interrupted"),
])
def test_known_failures_get_their_own_message(monkeypatch, capsys, log_dir, exc, code, message):
    got, err = run_list_raising(monkeypatch, capsys, exc)
    assert got == code and message in err and "Traceback" not in err


def test_an_unwritable_log_still_gives_the_message(monkeypatch, capsys, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("FUSIONCORE_LOG_DIR", str(tmp_path / "file" / "logs"))
    code, err = run_list_raising(monkeypatch, capsys, KeyError("x"))
    assert code == 2 and "the traceback could not be logged" in err


def test_help_says_where_the_log_goes(capsys, log_dir):
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    assert str(log_dir / "cli.log") in " ".join(capsys.readouterr().out.split())
