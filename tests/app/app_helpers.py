"""Fixtures and helpers of the dashboard tests (imported by the test files; a conftest.py here would
clash with tests/conftest.py): a tiny bundled-demo folder, an MCA checkpoint, an AppTest factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from conftest import make_tabular_dataset  # noqa: E402
from inspect_helpers import build_tiny_assets, tiny_model, write_table_folder  # noqa: E402

APP = str(TESTS.parent / "app" / "dashboard.py")


@pytest.fixture(scope="session")
def tiny_assets_root(tmp_path_factory) -> Path:
    """A 60-sample demo folder with small checkpoints, built once per session."""
    return build_tiny_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture
def tiny_assets(tiny_assets_root, monkeypatch) -> Path:
    """``FUSIONCORE_ASSETS`` pointing at the tiny demo for one test only (other test files keep
    seeing the real bundled assets)."""
    monkeypatch.setenv("FUSIONCORE_ASSETS", str(tiny_assets_root))
    return tiny_assets_root


@pytest.fixture(scope="session")
def mca_case(tmp_path_factory):
    """An MCA checkpoint folder and a table-layout dataset folder it was trained on."""
    data = make_tabular_dataset(n=32, missing=0.2)
    root = tmp_path_factory.mktemp("mca")
    tiny_model(data, "mca", epochs=2).save(root / "ckpt")
    write_table_folder(data, root / "data")
    return root / "ckpt", root / "data", data


@pytest.fixture
def app(tiny_assets):
    from streamlit.testing.v1 import AppTest

    def make():
        return AppTest.from_file(APP, default_timeout=60)

    return make


def use_omics(at):
    """Switch the sidebar to the (fast) omics demo model."""
    at.selectbox(key="demo_model").set_value("mmdynamics_omics").run()
    assert not at.exception
    return at


def errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def charts(at) -> list[str]:
    """The plotly figure JSON of every chart on the page."""
    return [el.proto.spec for el in at.get("plotly_chart")]


def open_tab(at, label: str, key: str = "sample_tab"):
    """Open a tab of the page's lazy tabs (``widgets.tabs``), as a click on it would."""
    at.session_state[f"_kept::{key}"] = label
    at.run()
    assert not at.exception, at.exception
    return at
