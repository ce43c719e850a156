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

st.set_page_config(page_title="fusioncore explainability", page_icon=":microscope:", layout="wide")
widgets.notice()
st.session_state["context"] = sidebar.sidebar()
pages = [
    st.Page("views/sample.py", title="Sample", icon=":material/person_search:", default=True),
    st.Page("views/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("views/tcp.py", title="TCP error", icon=":material/scatter_plot:"),
    st.Page("views/cohort.py", title="Cohort", icon=":material/table_view:"),
    st.Page("views/slides.py", title="Slides", icon=":material/biotech:"),
]
st.navigation(pages).run()
