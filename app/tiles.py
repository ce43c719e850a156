"""The slide viewer's tile route: Deep Zoom tiles cut on demand, on the dashboard's own origin and port.

Why a route on Streamlit's own server (``st.App(..., routes=...)``, see ``main.py``) and not a
second tile server or Streamlit's static folder: the viewer needs tiles cut *on demand* from a slide
the user opened (static serving only serves files that already exist in ``app/static``); a second
port would have to be opened to the world and proxied separately; and component messages would
cost a rerun per tile. A route under the same origin is reached through the same reverse proxy,
cookies and login as the dashboard itself (docs/slides.md).

What it serves: only slides the page has *registered* — an upload in the session's temporary
folder or a server path the page has checked against the allowed roots — each under an unguessable
token (128 random bits) that only that session's viewer knows. Nothing else on the server can be
addressed; a bad token, layer or tile address is a 404.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:  # imported where used: main.py imports this module before the server starts, without torch
    from fusioncore.slides.deepzoom import SlideLayers

PREFIX = "/fusioncore/tiles"
CACHE = {"Cache-Control": "private, max-age=3600"}
_mounted = threading.Event()


@dataclass
class Entry:
    layers: SlideLayers
    mask_png: bytes | None


class TileRegistry:
    """Registered slides by token (least recently used closed past ``max_open``)."""

    def __init__(self, max_open: int = 16) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.max_open = max_open

    def register(self, layers: SlideLayers, mask_png: bytes | None) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._entries[token] = Entry(layers, mask_png)
            while len(self._entries) > self.max_open:
                _, old = self._entries.popitem(last=False)
                old.layers.close()
        return token

    def get(self, token: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is not None:
                self._entries.move_to_end(token)
            return entry


REGISTRY = TileRegistry()


def _not_found(what: str) -> Response:
    return Response(f"not found: {what}", status_code=404, media_type="text/plain")


def _layer(name: str) -> tuple[str, str] | None:
    """``slide`` or ``heatmap-<colour map>`` -> (layer, colour map)."""
    from fusioncore.slides.deepzoom import COLORMAPS

    if name == "slide":
        return "slide", "viridis"
    layer, _, cmap = name.partition("-")
    if layer == "heatmap" and cmap in COLORMAPS:
        return "heatmap", cmap
    return None


async def dzi(request: Request) -> Response:
    entry, layer = REGISTRY.get(request.path_params["token"]), _layer(request.path_params["name"])
    if entry is None or layer is None:
        return _not_found("slide layer")
    try:
        xml = await run_in_threadpool(entry.layers.dzi, layer[0])
    except ValueError:
        return _not_found("slide layer")
    return Response(xml, media_type="application/xml", headers=CACHE)


async def tile(request: Request) -> Response:
    p = request.path_params
    entry, layer = REGISTRY.get(p["token"]), _layer(p["name"])
    if entry is None or layer is None:
        return _not_found("tile")
    try:
        data, media = await run_in_threadpool(entry.layers.tile, layer[0], p["level"], p["col"], p["row"], layer[1])
    except ValueError:
        return _not_found("tile")
    return Response(data, media_type=media, headers=CACHE)


async def mask(request: Request) -> Response:
    entry = REGISTRY.get(request.path_params["token"])
    if entry is None or entry.mask_png is None:
        return _not_found("mask")
    return Response(entry.mask_png, media_type="image/png", headers=CACHE)


def routes(base_url_path: str = "") -> list[Route]:
    """The tile routes under Streamlit's ``server.baseUrlPath`` (the viewer finds them relative to itself)."""
    root = ("/" + base_url_path.strip("/")) if base_url_path.strip("/") else ""
    _mounted.set()
    return [
        Route(f"{root}{PREFIX}/{{token}}/{{name}}.dzi", dzi),
        Route(f"{root}{PREFIX}/{{token}}/{{name}}_files/{{level:int}}/{{col:int}}_{{row:int}}.{{fmt}}", tile),
        Route(f"{root}{PREFIX}/{{token}}/mask.png", mask),
    ]


def mounted() -> bool:
    """Whether this process serves the tile routes (started through ``app/main.py``)."""
    return _mounted.is_set()
