"""Figure export: every format is written and valid; the browser-free fallback is taken (and
recorded) when no browser is found, kaleido fails, or kaleido hangs past the timeout."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import fusioncore.viz as V
from fusioncore.viz import export as export_mod

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _figure_and_data():
    probs, classes = [0.2, 0.7, 0.1], ["a", "b", "c"]
    return V.class_probabilities_figure(probs, classes), V.class_probabilities_data(probs, classes)


def _check_static(files: dict[str, bytes]) -> None:
    assert files["png"].startswith(PNG_SIGNATURE)
    assert ET.fromstring(files["svg"]).tag.endswith("svg")
    assert files["pdf"].startswith(b"%PDF")


def test_stem_is_sanitised():
    assert V.make_export_stem("gates", "mmdynamics", "TCGA/01 A") == "gates__mmdynamics__TCGA-01-A"
    assert V.make_export_stem("probs", None, None) == "probs"


def test_provenance_record(tmp_path):
    import fusioncore as fc
    from fusioncore.config import DataSchema, ModalitySpec

    schema = DataSchema((ModalitySpec("a", "tabular", (3,)),), ("x", "y"))
    model = fc.create_model("mmdynamics", schema, hidden_dim=4)
    ckpt = model.save(tmp_path / "ckpt")
    from fusioncore.checkpoint import checkpoint_hash

    rec = V.provenance(view="gates", method="mmdynamics", checkpoint=ckpt, config=model.config, seed=3,
                       sample_id="s1", active_modalities=["a"])
    assert rec["checkpoint_sha256"] == checkpoint_hash(ckpt)
    assert rec["config"]["hidden_dim"] == 4 and rec["seed"] == 3 and rec["active_modalities"] == ["a"]
    for pkg in ("fusioncore", "torch", "plotly", "kaleido", "captum", "numpy", "python"):
        assert pkg in rec["versions"]
    json.dumps(rec)
    with pytest.raises(ValueError, match="checkpoint"):
        V.provenance(view="x", checkpoint=tmp_path / "missing")


def test_export_every_format_with_fallback_when_no_browser(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "find_browser", lambda: None)
    fig, data = _figure_and_data()
    stem = V.make_export_stem("probabilities", "mmdynamics", "s1")
    res = V.export_figure(fig, data, {"view": "probabilities"}, tmp_path, stem, html_plotlyjs="cdn")
    assert set(res.paths) == {"png", "svg", "pdf", "html", "csv", "json"}
    assert res.renderer == "matplotlib" and "no Chrome" in res.fallback_reason
    files = {fmt: p.read_bytes() for fmt, p in res.paths.items()}
    _check_static(files)
    assert b"plotly" in files["html"].lower()
    assert files["csv"].decode().splitlines()[0].startswith("class,probability")
    record = json.loads(files["json"])
    assert record["static_renderer"] == "matplotlib" and record["files"]["png"] == f"{stem}.png"
    assert all(p.name.startswith(stem) for p in res.paths.values())


def test_fallback_when_kaleido_fails(monkeypatch):
    monkeypatch.setattr(export_mod, "find_browser", lambda: "/usr/bin/true")
    monkeypatch.setattr(export_mod, "_worker_command", lambda: [sys.executable, "-c", "import sys; sys.exit(3)"])
    fig, data = _figure_and_data()
    out = V.figure_bytes(fig, data, {}, "probs", formats=("png", "svg", "pdf", "json"))
    assert out.renderer == "matplotlib" and "exit 3" in out.fallback_reason
    _check_static(out.files)
    assert json.loads(out.files["json"])["static_fallback_reason"] == out.fallback_reason
    with pytest.raises(V.StaticExportError):
        V.render_static(fig, ["png"], renderer="kaleido")


def test_timeout_returns_fallback(monkeypatch):
    monkeypatch.setattr(export_mod, "find_browser", lambda: "/usr/bin/true")
    monkeypatch.setattr(export_mod, "_worker_command", lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    fig, data = _figure_and_data()
    import time

    start = time.monotonic()
    out = V.figure_bytes(fig, data, {}, "probs", formats=("png",), timeout_s=1)
    assert time.monotonic() - start < 20
    assert out.renderer == "matplotlib" and "within 1 s" in out.fallback_reason
    assert out.files["png"].startswith(PNG_SIGNATURE)


def test_fallback_renders_every_trace_type():
    rng = np.random.default_rng(0)
    figs = [
        V.image_heatmap_figure(rng.random((3, 16, 16)), rng.random((4, 4)), top_k=2),
        V.tcp_relative_error_histogram({"a": rng.random(10)}, {"a": rng.random(10) + 0.1}),
        V.tcp_fraction_table_figure({"a": rng.random(10)}, {"a": rng.random(10) + 0.1}),
        V.missing_rate_figure([dict(method="m", missing_rate=r, value=v) for r in (0, 0.5) for v in (0.1, 0.2)]),
        V.robustness_figure({("a",): 0.5, ("a", "b"): 0.7, ("b",): 0.4}, ["a", "b"]),
    ]
    for fig in figs:
        files, used, _ = V.render_static(fig, ["png", "svg"], renderer="matplotlib")
        assert used == "matplotlib" and files["png"].startswith(PNG_SIGNATURE)


def test_bad_inputs_are_refused(tmp_path):
    fig, data = _figure_and_data()
    with pytest.raises(ValueError, match="unknown"):
        V.export_figure(fig, data, {}, tmp_path, "x", formats=("gif",))
    with pytest.raises(ValueError, match="csv"):
        V.export_figure(fig, None, {}, tmp_path, "x", formats=("csv",))
    with pytest.raises(ValueError, match="renderer"):
        V.render_static(fig, ["png"], renderer="browser")


@pytest.mark.skipif(V.find_browser() is None, reason="no Chrome/Chromium for kaleido on this machine")
def test_real_kaleido_export():
    fig, data = _figure_and_data()
    out = V.figure_bytes(fig, data, {}, "probs", formats=("png", "svg", "pdf"), timeout_s=120, renderer="kaleido")
    assert out.renderer == "kaleido" and out.fallback_reason is None
    _check_static(out.files)
