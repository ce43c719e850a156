"""Uploaded checkpoint archives: only the two checkpoint files are written, capped, privately, then removed."""

from __future__ import annotations

import json
import re
import stat
import zipfile

import pytest

import fusioncore.inspect.uploads as uploads  # noqa: F401  (HEADER_SLACK_BYTES is patched)
from fusioncore.checkpoint import CheckpointError
from fusioncore.data.errors import DataError
from fusioncore.inspect.uploads import extract_checkpoint_zip, load_checkpoint_zip, read_uploaded_samples
from security_helpers import small_checkpoint, spy_extractions, with_method, zip_bomb, zip_of


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return small_checkpoint(tmp_path_factory.mktemp("ckpt") / "model")


@pytest.fixture(scope="module")
def files(ckpt):
    return {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file()}


@pytest.fixture
def writes(monkeypatch):
    """(member, bytes on disk when extraction stopped, cap) of every member extracted."""
    return spy_extractions(monkeypatch)


def test_only_config_and_weights_are_extracted(files, tmp_path):
    extras = {"run.sh": b"rm -rf /", "data/cohort.csv": b"a,b", "metrics.json": b"{}", ".hidden": b"?"}
    out = extract_checkpoint_zip(zip_of(files | extras), tmp_path / "x", archive_name="ckpt.zip")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert not any(p.is_dir() for p in out.iterdir())
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_the_extraction_folder_is_private_and_removed_after_loading(files, tmp_path):
    model = load_checkpoint_zip(zip_of(files), tmp_path / "session", archive_name="ckpt.zip")
    assert model.checkpoint_path is None
    assert list((tmp_path / "session").iterdir()) == []
    assert stat.S_IMODE((tmp_path / "session").stat().st_mode) == 0o700
    bad = dict(files, **{"model.safetensors": b"\0garbage" * 10})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint_zip(zip_of(bad), tmp_path / "session", archive_name="ckpt.zip")
    assert list((tmp_path / "session").iterdir()) == []  # removed when loading fails too
    assert str(tmp_path) not in str(err.value) and "ckpt.zip: model.safetensors" in str(err.value)


def test_a_zip_bomb_stops_at_the_cap(files, tmp_path, writes):
    bomb = zip_bomb(files["config.json"], 64 * 1024**2)  # 64 MB of zeros in ~64 kB
    assert len(bomb) < 200_000
    with pytest.raises(CheckpointError, match="would expand to 67.1 MB, more than the 16.8 MB this checkpoint can need"):
        load_checkpoint_zip(bomb, tmp_path / "s", archive_name="bomb.zip")
    (_, _, _), (name, written, cap) = writes
    assert name == "model.safetensors" and written == 0 and cap < 17 * 1024**2


def test_a_zip_bomb_that_lies_about_its_size_is_cut_at_the_cap(files, tmp_path, writes, monkeypatch):
    """Sizes in the zip directory are the archive's claim; the stream itself is counted."""
    bomb = zip_bomb(files["config.json"], 64 * 1024**2)
    real = zipfile.ZipFile.infolist

    def lying(self):
        infos = real(self)
        for info in infos:
            if info.filename == "model.safetensors":
                info.file_size = 1000  # claims 1 kB
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying)
    monkeypatch.setattr(uploads, "HEADER_SLACK_BYTES", 1024**2)
    with pytest.raises(CheckpointError):
        load_checkpoint_zip(bomb, tmp_path / "s", archive_name="bomb.zip")
    name, written, cap = writes[-1]
    assert name == "model.safetensors" and written <= cap <= 2 * 1024**2


@pytest.mark.parametrize("method, flags, message", [
    (9, 0, "compressed with Deflate64, which cannot be read here; zip it again with standard Deflate"),
    (98, 0, "compressed with PPMd"),
    (zipfile.ZIP_DEFLATED, 0x1, "is encrypted (password-protected); zip the checkpoint folder without a password"),
])
def test_encrypted_and_deflate64_archives_get_a_clear_message(files, tmp_path, method, flags, message):
    payload = with_method(zip_of(files), "model.safetensors", method, flags)
    with pytest.raises(CheckpointError, match=re.escape(message)) as err:
        load_checkpoint_zip(payload, tmp_path / "s", archive_name="win.zip")
    assert str(err.value).startswith("win.zip: model.safetensors")


def test_config_errors_name_the_archive_not_the_server_folder(files, tmp_path):
    config = json.loads(files["config.json"])
    config["schema"]["modalities"][1]["shape"] = [-5]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint_zip(zip_of(files | {"config.json": json.dumps(config).encode()}), tmp_path / "s",
                            archive_name="edited.zip")
    text = str(err.value)
    assert text.startswith("edited.zip: config.json: schema.modalities[1] ('m1'): shape [-5] must be 1 positive")
    assert str(tmp_path) not in text and "fc-checkpoint" not in text


def test_an_id_only_labels_table_is_a_clear_message(ckpt):
    import fusioncore as fc

    schema = fc.load(ckpt).schema
    table = "sample_id," + ",".join(schema.modality("m0").features) + "\ns1," + ",".join(["1"] * 6) + "\n"
    with pytest.raises(DataError, match=r"labels.csv: only a sample-id column \('sample_id'\); a labels table needs "
                                        "two columns"):
        read_uploaded_samples(schema, [("m0.csv", table.encode()), ("labels.csv", b"sample_id\ns1\n")])


def test_uploaded_samples_are_read_from_memory_and_messages_name_only_the_upload(ckpt, monkeypatch):
    """No temporary file is written (the readers take the bytes), so no message can name a server folder."""
    import tempfile
    from pathlib import Path

    import fusioncore as fc

    schema = fc.load(ckpt).schema

    def refuse(*args, **kwargs):
        raise AssertionError("reading uploaded samples wrote a file")

    for target, name in ((Path, "write_bytes"), (Path, "write_text"), (tempfile, "mkdtemp"),
                         (tempfile, "TemporaryDirectory"), (tempfile, "NamedTemporaryFile")):
        monkeypatch.setattr(target, name, refuse)
    good = "sample_id," + ",".join(schema.modality("m0").features) + "\ns1," + ",".join(["1"] * 6) + "\n"
    assert read_uploaded_samples(schema, [("m0.csv", good.encode())]).sample_ids == ("s1",)
    bad = "sample_id," + ",".join(schema.modality("m0").features) + "\ns1,abc," + ",".join(["1"] * 5) + "\n"
    with pytest.raises(DataError) as err:
        read_uploaded_samples(schema, [("m0.csv", bad.encode())])
    assert str(err.value).startswith("m0.csv: 1 cell(s) are not finite numbers")
    assert tempfile.gettempdir() not in str(err.value) and "fc-upload" not in str(err.value)
