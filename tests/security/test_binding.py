"""Where the dashboard listens, and what a shared one offers, checked on a real ``streamlit run``
and in Chromium (the sidebar in shared mode and the per-session upload folder are out of
AppTest's reach: it has no server address and no sessions that end)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).is_file():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def start(port: int, *extra: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port), *extra],
        cwd=REPO, env=env or dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_config_binds_to_loopback_with_xsrf_on():
    from fusioncore.access import tomllib

    server = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert server.get("enableAgentApi", False) is False


def test_streamlit_run_listens_on_loopback_only():
    port = free_port()
    proc = start(port, "--server.headless", "true")  # no --server.address: the config's default
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        stop(proc)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.browser
def test_a_shared_dashboard_offers_uploads_only_and_removes_the_session_folder(tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    port, temp = free_port(), tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FUSIONCORE_ALLOWED_ROOTS", "FUSIONCORE_SHARED")}
    env.update(TMPDIR=str(temp), FUSIONCORE_CONFIG=str(tmp_path / "none.toml"), FUSIONCORE_LOG_DIR=str(tmp_path / "logs"))
    proc = start(port, "--server.headless", "true", "--server.address", "0.0.0.0", env=env)
    (tmp_path / "S1.png").write_bytes(png())
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}")
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text("server paths are off, upload files instead").first.wait_for()
            models = sidebar.locator('[data-testid="stRadio"]').first
            sync_api.expect(models).to_contain_text("Upload checkpoint (.zip)")
            sync_api.expect(models).not_to_contain_text("Checkpoint folder")
            sync_api.expect(sidebar).not_to_contain_text("Dataset folder")
            page.locator('[data-testid="stMetric"]', has_text="Prediction").first.wait_for()  # the demo works
            sidebar.get_by_text("Upload samples").click()
            sidebar.locator('input[type="file"]').set_input_files(str(tmp_path / "S1.png"))
            sidebar.get_by_text("uploaded samples: 1 samples").wait_for()
            page.wait_for_timeout(500)
            shots = Path(os.environ.get("FUSIONCORE_SCREENSHOTS", tmp_path))
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "shared_sidebar.png"))
            folders = list(temp.glob("fusioncore-session-*"))
            assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700
            page.close()  # the session disconnects: its folder goes
            deadline = time.time() + 20
            while folders[0].exists() and time.time() < deadline:
                time.sleep(0.5)
            assert not folders[0].exists()
            browser.close()
    finally:
        stop(proc)
