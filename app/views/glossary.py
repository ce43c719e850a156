"""Glossary: every number, explanation and control of the dashboard in plain words (the same
text as the tooltips beside them, from ``fusioncore.inspect.glossary``)."""

import streamlit as st

from fusioncore.inspect.glossary import GROUPS, terms_in

st.title("Glossary")
st.caption("The tooltips (?) beside each control and figure give the first sentence; here is the whole entry.")
for column, group in zip(st.columns(2) * len(GROUPS), GROUPS):
    with column:
        st.subheader(group)
        for term in terms_in(group):
            st.markdown(f"**{term.name}** — {term.short} {term.long}")
