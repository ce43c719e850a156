"""The dashboard under attack (issue 15), driven with AppTest: each probe ends in a clear message,
never Streamlit's error page, never a server file's content, never a server path beyond what was typed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))

from app_helpers import app, errors, mca_case, open_tab, tiny_assets, tiny_assets_root, use_omics  # noqa: E402,F401  (fixtures)
from security_helpers import blank_png, small_checkpoint, spy_extractions, with_method, zip_bomb, zip_of  # noqa: E402

import fusioncore.inspect.uploads as uploads  # noqa: E402
from fusioncore.demo import demo_checkpoint  # noqa: E402
from inspect_helpers import write_table_folder  # noqa: E402
from conftest import make_tabular_dataset  # noqa: E402

SECRET = "db.lab.local:5432:*:labuser:hunter2"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """Allowed root tmp/root (a checkpoint, a dataset, a link out), tmp/outside (a credentials file)."""
    root = tmp_path / "root"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / ".pgpass").write_text(SECRET + "\n")
    small_checkpoint(tmp_path / "outside" / "ckpt")
    write_table_folder(make_tabular_dataset(n=24), root / "cohort")
    os.symlink(tmp_path / "outside", root / "shortcut")
    monkeypatch.setenv("FUSIONCORE_ALLOWED_ROOTS", str(root))
    monkeypatch.setenv("FUSIONCORE_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


def page_text(at) -> str:
    """Every text the page shows (to check that nothing leaks)."""
    parts = [e.value for kind in ("error", "info", "caption", "markdown", "warning", "success") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def no_leak(at, lab: Path) -> str:
    assert not at.exception
    text = page_text(at)
    assert SECRET not in text and "hunter2" not in text and "Traceback" not in text
    return text


def choose(at, source_key: str, source: str, input_key: str, value: str):
    at.radio(key=source_key).set_value(source).run()
    at.text_input(key=input_key).input(value).run()
    return at


@pytest.mark.parametrize("target", ["outside/ckpt", "root/shortcut/ckpt", "root/../outside/ckpt"])
def test_a_checkpoint_folder_outside_the_roots_is_refused(app, lab, target):
    typed = str(lab / target)
    at = choose(app().run(), "model_source", "Checkpoint folder", "model_path", typed)
    text = no_leak(at, lab)
    assert f"Cannot load the model: Checkpoint folder {typed!r} is outside the folders this dashboard may read" in text
    assert "mmdynamics" not in errors(at)  # nothing of the checkpoint was read


@pytest.mark.parametrize("spec", ["{lab}/outside", "mogonet:{lab}/root/shortcut", "/", "/root/.ssh"])
def test_a_dataset_folder_outside_the_roots_is_refused(app, lab, spec):
    typed = spec.format(lab=lab)
    at = choose(use_omics(app().run()), "data_source", "Dataset folder", "data_path", typed)
    text = no_leak(at, lab)
    assert "is outside the folders this dashboard may read" in errors(at), text


def test_a_dataset_folder_of_slash_on_a_local_dashboard_is_a_message(app, lab, monkeypatch):
    monkeypatch.delenv("FUSIONCORE_ALLOWED_ROOTS")
    monkeypatch.setenv("FUSIONCORE_CONFIG", str(lab / "none.toml"))
    at = choose(use_omics(app().run()), "data_source", "Dataset folder", "data_path", "/")
    no_leak(at, lab)
    assert "Cannot use this data with the model: /: no modality tables found" in errors(at)


def test_a_manifest_naming_a_credentials_file_is_refused_without_echoing_it(app, lab):
    folder = lab / "root" / "cohort"
    (folder / "fusioncore.json").write_text(json.dumps(
        {"labels": str(lab / "outside" / ".pgpass"), "id_column": "nope", "modalities": {"m0": "m0.csv"}}))
    at = choose(use_omics(app().run()), "data_source", "Dataset folder", "data_path", str(folder))
    no_leak(at, lab)
    assert "fusioncore.json: labels:" in errors(at) and "points outside the dataset folder" in errors(at)


def checkpoint_files() -> dict[str, bytes]:
    folder = demo_checkpoint("mmdynamics_omics")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def upload_checkpoint(at, payload: bytes, name: str = "ckpt.zip"):
    at.radio(key="model_source").set_value("Upload checkpoint (.zip)").run()
    at.file_uploader(key="model_zip").set_value((name, payload, "application/zip")).run()
    return at


def test_a_zip_with_extra_files_loads_only_the_checkpoint(app, lab, monkeypatch):
    written = []
    real = uploads._extract_capped
    monkeypatch.setattr(uploads, "_extract_capped", lambda zf, info, *a: written.append(info.filename) or real(zf, info, *a))
    extras = {"evil.sh": b"#!/bin/sh", "nested/secret.csv": b"a,b", "metrics.json": b"{}"}
    at = upload_checkpoint(app().run(), zip_of(checkpoint_files() | extras | {"x": os.urandom(8)}))
    assert not at.exception and not at.error and at.metric[0].label == "Prediction"
    assert sorted(written) == ["config.json", "model.safetensors"]


def test_a_zip_bomb_is_capped_and_not_extracted_again_on_rerun(app, lab, monkeypatch):
    sizes = spy_extractions(monkeypatch)
    config = json.loads(checkpoint_files()["config.json"])
    config["extra"] = {"nonce": os.urandom(8).hex()}  # a payload this process has not cached yet
    bomb = zip_bomb(json.dumps(config).encode(), 64 * 1024**2)
    at = upload_checkpoint(app().run(), bomb, "bomb.zip")
    no_leak(at, lab)
    assert "Cannot load the model: bomb.zip: model.safetensors would expand to 67.1 MB" in errors(at)
    assert all(written <= cap for _, written, cap in sizes)
    calls = len(sizes)
    at.run()  # reruns: any widget interaction
    at.radio(key="model_source").set_value("Upload checkpoint (.zip)").run()
    assert "bomb.zip" in errors(at) and len(sizes) == calls  # the failure was cached, nothing re-extracted


def edited_zip(edit) -> bytes:
    files = checkpoint_files()
    config = json.loads(files["config.json"])
    edit(config)
    config["extra"] = {"nonce": os.urandom(8).hex()}
    return zip_of(files | {"config.json": json.dumps(config).encode()})


def huge_modality(config):
    config["schema"]["modalities"][0].update(shape=[100_000], features=[])
    config["preprocessing"] = {}


def negative_dim(config):
    config["schema"]["modalities"][1]["shape"] = [-3]


@pytest.mark.parametrize("payload, message", [
    (lambda: edited_zip(huge_modality), "config.json: the model would have 10,0"),
    (lambda: edited_zip(negative_dim), "shape [-3] must be 1 positive integer(s)"),
    (lambda: with_method(zip_of(checkpoint_files()), "model.safetensors", 9), "compressed with Deflate64"),
    (lambda: with_method(zip_of(checkpoint_files()), "config.json", 8, 0x1), "is encrypted (password-protected)"),
])
def test_hostile_checkpoint_zips_get_a_message(app, lab, payload, message):
    at = upload_checkpoint(app().run(), payload())
    no_leak(at, lab)
    assert message in errors(at) and "ckpt.zip" in errors(at)
    if "10,0" in message:
        assert "GB" in errors(at) and "100,000 x 100,000" in errors(at)
    assert str(lab) not in errors(at) and "/tmp" not in errors(at)


def test_an_id_only_labels_csv_upload_is_a_message(app, lab):
    from test_bad_inputs import table_csv, upload_samples

    at = use_omics(app().run())
    upload_samples(at, [("mrna.csv", table_csv("mrna"), "text/csv"), ("labels.csv", b"sample_id\ndemo-0001\n", "text/csv")])
    no_leak(at, lab)
    assert "labels.csv: only a sample-id column ('sample_id')" in errors(at)


def test_a_9000_by_9000_png_on_the_whole_image_path_is_refused(app, lab):
    at = open_tab(app().run(), "Whole image")  # the image + omics demo model
    at.file_uploader(key="whole_image_file").set_value(("region.png", blank_png(9000, 9000), "image/png")).run()
    at.button(key="whole_image_go").click().run()
    no_leak(at, lab)
    assert "region.png: 9000x9000 = 81.0 megapixels exceeds the limit of 40.0 MP" in errors(at)


def test_an_exception_in_a_page_is_a_message_with_its_traceback_in_the_log(app, lab, monkeypatch):
    import fusioncore.inspect as fi

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(fi, "explain_sample", broken)
    at = use_omics(app().run())
    at.toggle(key="toggle_mrna").set_value(False).run()  # a pattern not cached yet
    text = no_leak(at, lab)
    assert "an internal error (RuntimeError) stopped it" in text and "/srv/secret/path" not in text
    reference = text.split("under reference ")[1].split(" ")[0]
    log = (lab / "logs" / "dashboard.log").read_text()
    assert f"reference {reference}" in log and "internal detail /srv/secret/path" in log and "Traceback" in log


def test_shared_mode_offers_no_server_paths(app, lab, monkeypatch):
    from streamlit import config as st_config

    monkeypatch.delenv("FUSIONCORE_ALLOWED_ROOTS")
    monkeypatch.setenv("FUSIONCORE_CONFIG", str(lab / "none.toml"))
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = app().run()
        assert not at.exception
        assert at.radio(key="model_source").options == ["Bundled demo", "Upload checkpoint (.zip)"]
        assert at.radio(key="data_source").options == ["Bundled demo cohort", "Upload samples"]
        assert any("server paths are off, upload files instead" in c.value for c in at.sidebar.caption)
        assert at.metric[0].label == "Prediction"  # the demo still works
    finally:
        st_config.set_option("server.address", old)
