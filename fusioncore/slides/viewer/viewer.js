/* fusioncore slide viewer: OpenSeadragon over Deep Zoom tiles cut on demand by the dashboard's tile
 * route, as a Streamlit component (the v1 postMessage protocol, written out here: no build step).
 *
 * Tiles come from <base>/fusioncore/tiles/<token>/..., where <base> is this page's own path before
 * "/component/": the same origin and the same prefix a reverse proxy gives Streamlit, so nothing
 * else needs to be reachable. Layers: the slide (index 0), the heatmap (colour map chosen on the
 * server), the tissue mask (one image). Opacity, colour map and mask come as component arguments
 * and are applied without reloading the slide. A click on the slide or on a listed region sends
 * {kind, x, y, rank, nonce} (level-0 px) back to Python.
 */
(function () {
  "use strict";
  const state = { viewer: null, token: null, args: null, heat: null, heatKey: null, mask: null, overlays: [], tilesLoaded: 0 };

  function post(type, extra) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, extra || {}), "*");
  }
  function setValue(value) { post("streamlit:setComponentValue", { value: value, dataType: "json" }); }
  function setHeight() { post("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight + 4 }); }
  function base() {
    const p = window.location.pathname, i = p.indexOf("/component/");
    return i >= 0 ? p.slice(0, i) : "";
  }
  function url(path) { return base() + "/fusioncore/tiles/" + state.token + "/" + path; }
  function status(text) { document.getElementById("status").textContent = text; }
  function slideItem() { return state.viewer && state.viewer.world.getItemAt(0); }

  function toViewport(x, y, w, h) {
    return slideItem().imageToViewportRectangle(x, y, w, h);
  }

  function markSelected(x, y, w, h) {
    const old = document.getElementById("fc-selected");
    if (old) { state.viewer.removeOverlay(old); }
    const el = document.createElement("div");
    el.id = "fc-selected";
    el.className = "fc-selected";
    state.viewer.addOverlay({ element: el, location: toViewport(x, y, w, h) });
  }

  function flyTo(region) {
    const r = toViewport(region.x, region.y, region.width, region.height);
    const pad = Math.max(r.width, r.height) * 2.5;
    state.viewer.viewport.fitBoundsWithConstraints(
      new OpenSeadragon.Rect(r.x - pad, r.y - pad, r.width + 2 * pad, r.height + 2 * pad));
    markSelected(region.x, region.y, region.width, region.height);
  }

  function drawRegions(regions) {
    const list = document.getElementById("region-list");
    list.innerHTML = "";
    state.overlays.forEach(function (el) { state.viewer.removeOverlay(el); });
    state.overlays = [];
    regions.forEach(function (region) {
      const el = document.createElement("div");
      el.className = "fc-region";
      const label = document.createElement("span");
      label.textContent = String(region.rank);
      el.appendChild(label);
      state.viewer.addOverlay({ element: el, location: toViewport(region.x, region.y, region.width, region.height) });
      state.overlays.push(el);
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.rank = String(region.rank);
      button.textContent = "#" + region.rank + "  " + region.predicted + "  map " + region.score.toFixed(3);
      button.title = "Fly to (" + region.x + ", " + region.y + ") and inspect this tile";
      button.addEventListener("click", function () {
        document.querySelectorAll("#region-list button").forEach(function (b) { b.classList.remove("active"); });
        button.classList.add("active");
        flyTo(region);
        setValue({ kind: "region", rank: region.rank, x: region.x + region.width / 2, y: region.y + region.height / 2,
                   nonce: Date.now() });
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    document.getElementById("regions").style.display = regions.length ? "" : "none";
  }

  function setHeatmap(args) {
    if (!args.heat_width) { return; }
    const key = args.colormap;
    if (state.heatKey === key) {  // requested already: loaded (set its opacity) or on its way (success does)
      if (state.heat) { state.heat.setOpacity(args.opacity); }
      return;
    }
    const old = state.heat;
    state.heatKey = key;
    state.viewer.addTiledImage({
      tileSource: url("heatmap-" + encodeURIComponent(key) + ".dzi"), x: 0, y: 0, width: args.heat_width,
      opacity: args.opacity, index: 1,
      success: function (event) {
        state.heat = event.item;
        state.heat.setOpacity(state.args.opacity);
        if (old) { state.viewer.world.removeItem(old); }
      },
    });
  }

  function setMask(args) {
    if (state.maskRequested) {
      if (state.mask) { state.mask.setOpacity(args.show_mask ? 1 : 0); }
      return;
    }
    state.maskRequested = true;
    state.viewer.addSimpleImage({
      url: url("mask.png"), x: 0, y: 0, width: 1, opacity: args.show_mask ? 1 : 0,
      success: function (event) { state.mask = event.item; state.mask.setOpacity(state.args.show_mask ? 1 : 0); },
    });
  }

  function open(args) {
    if (state.viewer) { state.viewer.destroy(); }
    Object.assign(state, { token: args.token, heat: null, heatKey: null, mask: null, maskRequested: false, overlays: [],
                           tilesLoaded: 0 });
    const viewer = OpenSeadragon({
      element: document.getElementById("viewer"),
      prefixUrl: "openseadragon/images/",
      tileSources: url("slide.dzi"),
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      maxZoomPixelRatio: 4,
      animationTime: 0.6,
      gestureSettingsMouse: { clickToZoom: false },
    });
    state.viewer = viewer;
    window.fusioncore = { viewer: viewer, state: state };
    viewer.addHandler("tile-loaded", function () { state.tilesLoaded += 1; document.body.dataset.tilesLoaded = String(state.tilesLoaded); });
    viewer.addHandler("open-failed", function (e) { status("The slide could not be opened: " + (e.message || "tile route unavailable")); });
    viewer.addHandler("canvas-click", function (event) {
      if (!event.quick) { return; }
      const point = slideItem().viewportToImageCoordinates(viewer.viewport.pointFromPixel(event.position));
      setValue({ kind: "click", x: point.x, y: point.y, nonce: Date.now() });
    });
    viewer.addOnceHandler("open", function () {
      apply(state.args);
      drawRegions(state.args.regions || []);
      document.body.dataset.open = "1";
    });
  }

  function apply(args) {
    if (!slideItem()) { return; }
    setHeatmap(args);
    setMask(args);
    const selected = args.selected;
    if (selected) { markSelected(selected.x, selected.y, selected.width, selected.height); }
    status(args.caption || "");
  }

  window.addEventListener("message", function (event) {
    const data = event.data || {};
    if (data.type !== "streamlit:render") { return; }
    const args = data.args || {};
    state.args = args;
    if (args.token !== state.token) { open(args); } else { apply(args); }
    setHeight();
  });
  post("streamlit:componentReady", { apiVersion: 1 });
  setHeight();
})();
