"""The dashboard as an ASGI app: ``streamlit run app/server.py`` (Streamlit's own server, one port).

It runs ``main.py`` exactly as ``streamlit run app/main.py`` does, plus the slide viewer's Deep
Zoom tile route (``tiles.py``) on the same origin, so the viewer works behind the same reverse
proxy as the rest of the dashboard. Started the other way the dashboard works, and the slide page
says how to get its viewer.
"""

import sys
from pathlib import Path

import streamlit as st
from streamlit import config

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiles  # noqa: E402

app = st.App("main.py", routes=tiles.routes(config.get_option("server.baseUrlPath") or ""))
