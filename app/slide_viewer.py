"""The slide viewer component: OpenSeadragon (vendored in ``fusioncore/slides/viewer``, BSD-3) in a
Streamlit component iframe; tiles come from the tile route in ``tiles.py``."""

from __future__ import annotations

from importlib.resources import files

import streamlit.components.v1 as components

_viewer = components.declare_component("fusioncore_slide_viewer", path=str(files("fusioncore.slides") / "viewer"))


def viewer(*, token: str, regions: list[dict], heat_width: float | None, opacity: float, colormap: str,
           show_mask: bool, selected: dict | None, caption: str, key: str) -> dict | None:
    """Render the viewer; returns the last click or region choice ``{kind, x, y, rank?, nonce}`` (level-0 px)."""
    return _viewer(token=token, regions=regions, heat_width=heat_width, opacity=opacity, colormap=colormap,
                   show_mask=show_mask, selected=selected, caption=caption, key=key, default=None)
