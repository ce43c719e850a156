"""fusioncore explainability dashboard: page setup, the shared sidebar, and navigation.

Run: ``streamlit run app/main.py`` (``main.py`` serves this script plus the slide tile route).
Every number and figure comes from ``fusioncore``; the
pages in ``views/`` only read widgets, call the library and render. The sidebar (model and data)
lives here because Streamlit keeps widget state across pages only for the entry script.
"""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gc_freeze  # noqa: E402
import sidebar  # noqa: E402
import timing  # noqa: E402
import widgets  # noqa: E402
from boundary import guard  # noqa: E402
from login import require_login  # noqa: E402

timing.mark("script start")
st.set_page_config(page_title="fusioncore explainability", page_icon=":microscope:", layout="wide")
require_login()  # a no-op unless .streamlit/secrets.toml configures a login (docs/deployment.md)
# A 1280 x 720 laptop: less padding above the page, smaller headings and metric values, so the
# prediction, the switches and the first explanation share the first screen.
st.html("""<style>
.block-container, [data-testid="stMainBlockContainer"] {padding-top: 2.2rem; padding-bottom: 1rem;}
[data-testid="stMain"] h1 {font-size: 1.7rem; padding: 0.2rem 0 0.4rem 0;}
[data-testid="stMain"] h2, [data-testid="stMain"] h3 {font-size: 1.15rem; padding: 0.4rem 0 0.2rem 0;}
[data-testid="stMetricValue"] {font-size: 1.35rem;}
</style>""")
widgets.notice()
st.session_state.pop(widgets.LOAD_ERROR, None)  # the sidebar records this run's loading error, if any
st.session_state["context"] = sidebar.sidebar()
timing.mark("sidebar done")
pages = [
    st.Page("views/sample.py", title="Sample", icon=":material/person_search:", default=True),
    st.Page("views/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("views/tcp.py", title="TCP error", icon=":material/scatter_plot:"),
    st.Page("views/cohort.py", title="Cohort", icon=":material/table_view:"),
    st.Page("views/slides.py", title="Slides", icon=":material/biotech:"),
    st.Page("views/glossary.py", title="Glossary", icon=":material/menu_book:"),
]
page = st.navigation(pages)
title = getattr(page, "title", "")  # a Page outside a Streamlit run (a spawned worker importing this file) has none
with guard(f"The {title} page failed"):  # every exception a message, its traceback in the server log
    try:
        page.run()
    finally:  # also after st.stop(): the page is drawn, the next click's work can start
        widgets.start_prefetch()
        gc_freeze.freeze_long_lived()  # once: without a warm start, the first run's imports and model
        timing.mark("script end")
