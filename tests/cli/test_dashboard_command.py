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
