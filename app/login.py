"""Who may open a shared dashboard: Streamlit's OIDC login, when the server configures one.

With an ``[auth]`` section in ``.streamlit/secrets.toml`` (``docs/deployment.md``) nothing of
the dashboard renders before the visitor has logged in with the lab's identity provider
(``st.login``), and, when ``FUSIONCORE_ALLOWED_USERS`` / ``[server] allowed_users`` is set, only
for those e-mail addresses or domains (an account whose provider says its e-mail is not
verified is refused). Without an ``[auth]`` section this does nothing: a local dashboard, or
one behind an authenticating reverse proxy.
"""

from __future__ import annotations

import streamlit as st

from fusioncore.access import allowed_users, user_allowed


def login_configured() -> bool:
    """True when the server has an ``[auth]`` section (Streamlit then defines ``st.user.is_logged_in``)."""
    return "is_logged_in" in st.user


def require_login() -> None:
    """Stop the run with a login (or refusal) screen unless the visitor may use the dashboard."""
    if not login_configured():
        return
    if not st.user.is_logged_in:
        st.title("fusioncore explainability")
        st.write("This dashboard is shared by a lab: log in with your lab account to use it.")
        if st.button("Log in", type="primary", key="login"):
            st.login()
        st.stop()
    email = st.user.get("email")
    verified = st.user.get("email_verified", True) is not False
    if not (verified and user_allowed(email, allowed_users())):
        st.error(f"{email or 'This account'} may not use this dashboard; ask the lab's admin to add it.")
        if st.button("Log out", key="logout"):
            st.logout()
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as {email or st.user.get('name') or 'a lab member'}")
        if st.button("Log out", key="logout"):
            st.logout()
