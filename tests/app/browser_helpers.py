"""Helpers of the browser tests: ``streamlit run app/main.py`` on a free port, a headless
Chromium page, and reading what the page *draws* (switch positions, the "Without ..." line).

Skips cleanly when Chromium or Playwright is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(assets: Path, env: dict | None = None):
    """The dashboard served from this checkout on a free port; yields its URL."""
    port = free_port()
    env = dict(os.environ, FUSIONCORE_ASSETS=str(assets), FUSIONCORE_PREFETCH="1", **(env or {}))  # as users run it
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url, proc, 60):
        stop_server(proc)
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
    try:
        yield url
    finally:
        stop_server(proc)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    """Whether the Streamlit server at ``url`` answers its health check within ``timeout`` s
    (False at once if its process ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().decode().strip() == "ok":
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not end within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def chromium_page(width: int = 1280, height: int = 720, **context):
    """A Playwright page in headless Chromium (skips the test when either is missing)."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height}, **context)
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def settle(page, quiet_ms: int = 700, timeout_s: float = 60) -> None:
    """Wait until the app is idle: no script running (status widget gone) for ``quiet_ms``."""
    status = page.locator('[data-testid="stStatusWidget"]')
    deadline = time.time() + timeout_s
    quiet_since = None
    while time.time() < deadline:
        busy = status.count() > 0 and status.first.is_visible()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif (time.time() - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)
    raise AssertionError("the app did not become idle")


def drawn_switches(page) -> dict[str, bool]:
    """Modality -> the position its switch is *drawn* in (the input's checked state)."""
    out = {}
    for box in page.locator('[data-testid="stMain"] [class*="st-key-toggle_"]').all():
        name = re.search(r"st-key-toggle_(\S+)", box.get_attribute("class")).group(1)
        out[name] = box.locator("input").is_checked()
    return out


def used_off(page) -> set[str]:
    """The modalities the prediction was computed without, as the page says ("Without a, b: ...")."""
    texts = page.locator('[data-testid="stMain"] [data-testid="stAlert"]').all_inner_texts()
    for text in texts:
        found = re.search(r"Without (.+?): predicted", text)
        if found:
            return set(found.group(1).split(", "))
    return set()


def assert_drawn_is_used(page, timeout_s: float = 15) -> dict[str, bool]:
    """The switches drawn off are exactly the modalities the prediction left out.

    Polled until the page agrees with itself (a rerun may still be streaming in): a page that
    lies keeps lying — its server holds the value the browser forgot — so it fails here."""
    deadline = time.time() + timeout_s
    while True:
        settle(page)
        drawn = drawn_switches(page)
        off, used = {m for m, on in drawn.items() if not on}, used_off(page)
        if drawn and off == used:
            return drawn
        if time.time() > deadline:
            raise AssertionError(f"switches drawn {drawn}, but the prediction was computed without {used or 'nothing'}")
        page.wait_for_timeout(250)
