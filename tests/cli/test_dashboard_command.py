"""``fusioncore dashboard`` without starting a server: its options, its refusals, and which app it serves.

The served dashboard itself is started by tests/test_wheel.py (installed copy) and tests/test_readme.py
(checkout, docs/dashboard.md's block); here: what runs before Streamlit does.
"""

from __future__ import annotations

import pytest

from conftest import REPO
from fusioncore.cli import main
from fusioncore.inspect import launch


def test_help_names_port_and_address(capsys):
    with pytest.raises(SystemExit) as end:
        main(["dashboard", "--help"])
    assert end.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--address" in out


@pytest.mark.parametrize("port, message", [("0", "between 1 and 65535"), ("70000", "between 1 and 65535")])
def test_a_port_out_of_range_is_refused_before_streamlit_starts(capsys, monkeypatch, port, message):
    monkeypatch.setattr(launch.subprocess, "Popen", lambda *a, **k: pytest.fail("streamlit was started"))
    assert main(["dashboard", "--port", port]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}" in err and message in err and "Traceback" not in err


def test_a_port_that_is_not_a_number_is_refused(capsys):
    with pytest.raises(SystemExit) as end:
        main(["dashboard", "--port", "eighty"])
    assert end.value.code == 2 and "invalid int value: 'eighty'" in capsys.readouterr().err


def test_the_checkout_serves_its_own_app_with_the_flags_given():
    cmd = launch.dashboard_command(8765, "0.0.0.0")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(REPO / "app" / "main.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765" and cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"


def test_an_installed_app_is_used_only_beside_this_library(tmp_path, monkeypatch):
    """A ``fusioncore_app`` installed elsewhere (another copy's) is not served with this checkout's library."""
    other = tmp_path / "site-packages" / launch.APP_PACKAGE
    other.mkdir(parents=True)
    (other / launch.APP_ENTRY).write_text("")
    files = launch.resources.files
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(launch.resources, "files", lambda name: other if name == launch.APP_PACKAGE else files(name))
    assert launch.app_dir() == REPO / "app"
    # the same package beside the library (a wheel install): that one is served
    monkeypatch.setattr(launch.resources, "files", lambda name: other if name == launch.APP_PACKAGE else
                        tmp_path / "site-packages" / "fusioncore")
    assert launch.app_dir() == other


def test_a_failed_server_is_an_error_and_a_terminated_one_is_not(capsys, monkeypatch):
    monkeypatch.setattr(launch, "run_dashboard", lambda port, address: 1)
    assert main(["dashboard", "--port", "8765"]) == 2
    assert "streamlit exited with status 1" in capsys.readouterr().err
    monkeypatch.setattr(launch, "run_dashboard", lambda port, address: -15)
    assert main(["dashboard"]) == 0
    assert "stopped (signal 15)" in capsys.readouterr().err


def _flat(table: dict, prefix: str = "") -> dict[str, str]:
    """``{"client": {"toolbarMode": "minimal"}}`` -> ``{"client.toolbarMode": "minimal"}``, values as flags."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def test_an_installed_copy_gets_the_checkouts_settings_unless_the_caller_has_a_config(tmp_path, monkeypatch):
    """A wheel has no .streamlit/config.toml: without a config of the caller's, the server gets the
    checkout's settings as flags (no tracebacks in the browser); with one, the caller's applies."""
    import tomllib

    shipped = _flat(tomllib.loads((REPO / ".streamlit" / "config.toml").read_text()))
    flagged = set(shipped) - {"browser.gatherUsageStats", "server.address", "server.headless"}  # always given
    assert launch.INSTALLED_SETTINGS == {k: shipped[k] for k in flagged}

    installed = tmp_path / "site-packages" / launch.APP_PACKAGE
    installed.mkdir(parents=True)
    monkeypatch.setattr(launch, "app_dir", lambda: installed)
    caller = tmp_path / "work"
    caller.mkdir()
    monkeypatch.chdir(caller)
    monkeypatch.setattr(launch.Path, "home", classmethod(lambda cls: tmp_path / "home"))
    cwd, settings = launch.served_from()
    assert cwd is None and settings == launch.INSTALLED_SETTINGS
    cmd = launch.dashboard_command(settings=settings)
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "false"
    (caller / ".streamlit").mkdir()
    (caller / ".streamlit" / "config.toml").write_text("[client]\nshowErrorDetails = \"full\"\n")
    assert launch.served_from() == (None, {})


def test_a_checkout_runs_in_its_root_with_its_own_config():
    assert launch.served_from() == (REPO, {})
