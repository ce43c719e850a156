"""The dashboard's entry point: ``streamlit run app/main.py`` (Streamlit's own server, one port).

``streamlit run`` finds the ``st.App`` below and serves the Streamlit script ``dashboard.py`` (the
pages) plus the slide viewer's Deep Zoom tile route (``tiles.py``) on the same origin, so the viewer
works behind the same reverse proxy as the rest of the dashboard. Why two files: an ``st.App`` names
the script it runs, so it cannot be that script. ``streamlit run app/dashboard.py`` (or
``AppTest.from_file``) runs the pages without the tile route; the slide page then says how to get
its viewer.
"""

import sys
from pathlib import Path

import streamlit as st
from streamlit import config

sys.path.insert(0, str(Path(__file__).resolve().parent))

import timing  # noqa: E402  -- first: its clock starts here

timing.mark("main.py imported streamlit")
import gc_freeze  # noqa: E402
import preload  # noqa: E402

gc_freeze.enable()

preload.start()  # imports torch and loads the default model while the server starts and the browser loads the page
import tiles  # noqa: E402

timing.mark("main.py imported tiles")
app = st.App("dashboard.py", routes=tiles.routes(config.get_option("server.baseUrlPath") or ""))
