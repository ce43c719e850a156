"""fusioncore explainability dashboard: page setup, the shared sidebar, and navigation.

Run: ``streamlit run app/main.py``. Every number and figure comes from ``fusioncore``; the
pages in ``views/`` only read widgets, call the library and render. The sidebar (model and data)
lives here because Streamlit keeps widget state across pages only for the entry script.
"""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sidebar  # noqa: E402
import widgets  # noqa: E402
from boundary import guard  # noqa: E402
from login import require_login  # noqa: E402

st.set_page_config(page_title="fusioncore explainability", page_icon=":microscope:", layout="wide")
require_login()  # a no-op unless .streamlit/secrets.toml configures a login (docs/deployment.md)
widgets.notice()
st.session_state["context"] = sidebar.sidebar()
pages = [
    st.Page("views/sample.py", title="Sample", icon=":material/person_search:", default=True),
    st.Page("views/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("views/tcp.py", title="TCP error", icon=":material/scatter_plot:"),
    st.Page("views/cohort.py", title="Cohort", icon=":material/table_view:"),
]
page = st.navigation(pages)
title = getattr(page, "title", "")  # a Page outside a Streamlit run (a spawned worker importing this file) has none
with guard(f"The {title} page failed"):  # every exception a message, its traceback in the server log
    page.run()
