"""Streamlit's OIDC login in front of the dashboard, end to end in Chromium against a local
OpenID Connect provider (``fake_oidc.py``): nothing shows before logging in, an allowed account
gets the dashboard (in shared mode), another account is refused."""

from __future__ import annotations

import os
import secrets
import shutil

import pytest

from test_binding import CHROMIUM, free_port, start, stop

pytestmark = pytest.mark.browser


@pytest.fixture
def login_server(tmp_path):
    pytest.importorskip("authlib", minversion="1.3.2")
    pytest.importorskip("httpx")
    pytest.importorskip("joserfc")
    from fake_oidc import FakeProvider

    app_port, idp_port = free_port(), free_port()
    provider = FakeProvider(idp_port, "fusioncore-test", "s3cret", {"email": "alice@lab.org", "name": "Alice",
                                                                     "email_verified": True})
    (tmp_path / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "fusioncore-test"\nclient_secret = "s3cret"\n'
        f'server_metadata_url = "{provider.base}/.well-known/openid-configuration"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("FUSIONCORE_ALLOWED_ROOTS", "FUSIONCORE_SHARED")}
    env.update(FUSIONCORE_ALLOWED_USERS="@lab.org", FUSIONCORE_CONFIG=str(tmp_path / "none.toml"),
               FUSIONCORE_LOG_DIR=str(tmp_path / "logs"), NO_PROXY="127.0.0.1,localhost")
    with provider:
        proc = start(app_port, "--server.headless", "true", "--secrets.files", str(tmp_path / "secrets.toml"), env=env)
        try:
            yield f"http://127.0.0.1:{app_port}", provider
        finally:
            stop(proc)


def test_login_gates_the_dashboard_and_refuses_other_accounts(login_server, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, provider = login_server
    shots = tmp_path if not os.environ.get("FUSIONCORE_SCREENSHOTS") else os.environ["FUSIONCORE_SCREENSHOTS"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_text("log in with your lab account").wait_for()
        sync_api.expect(page.locator("body")).not_to_contain_text("Sample view")
        assert page.locator('[data-testid="stSidebar"]').count() == 0
        page.get_by_role("button", name="Log in").click()
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Signed in as alice@lab.org").wait_for()
        page.get_by_role("heading", name="Sample view").wait_for()
        sidebar.get_by_text("server paths are off").first.wait_for()  # several users: shared mode
        page.screenshot(path=f"{shots}/login_signed_in.png")

        provider.user = {"email": "mallory@example.com", "name": "Mallory", "email_verified": True}
        other = browser.new_context().new_page()  # another browser: no identity cookie
        other.set_default_timeout(60_000)
        other.goto(url)
        other.get_by_role("button", name="Log in").click()
        other.get_by_text("mallory@example.com may not use this dashboard").wait_for()
        sync_api.expect(other.locator("body")).not_to_contain_text("Sample view")
        browser.close()
