"""Dataset folders typed into the dashboard: inside the allowed roots, confined to themselves, cheap to version."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_tabular_dataset
from fusioncore.access import AccessError, AccessPolicy
from fusioncore.data.errors import DataError
from fusioncore.inspect.folders import dataset_version, resolve_dataset
from fusioncore.inspect.sources import load_cohort
from inspect_helpers import write_table_folder

SECRET = "db.lab.local:5432:*:labuser:hunter2"


@pytest.fixture
def lab(tmp_path):
    """root/cohort (a table-layout dataset), root/other, and outside/.pgpass (a credentials file)."""
    root = tmp_path / "root"
    write_table_folder(make_tabular_dataset(n=24), root / "cohort")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / ".pgpass").write_text(SECRET + "\n")
    return tmp_path


def restricted(lab: Path) -> AccessPolicy:
    return AccessPolicy(((lab / "root").resolve(),), "restricted")


def refusal(spec: str, policy: AccessPolicy) -> str:
    with pytest.raises(ValueError) as err:
        load_cohort(spec, policy)
    text = str(err.value)
    assert SECRET not in text and "hunter2" not in text
    return text


def test_a_dataset_inside_the_roots_loads(lab):
    data, tags = load_cohort(str(lab / "root" / "cohort"), restricted(lab))
    assert len(data) == 24 and set(tags) == {"train", "test"}


@pytest.mark.parametrize("entry", ["labels", "modality", "absolute"])
def test_a_manifest_naming_a_file_outside_its_folder_is_refused(lab, entry):
    folder = lab / "root" / "cohort"
    secret = str(lab / "outside" / ".pgpass")
    manifest = {"labels": "labels.csv", "id_column": "nope", "modalities": {"m0": "m0.csv"}}
    if entry == "labels":
        manifest["labels"] = "../../outside/.pgpass"
    elif entry == "modality":
        manifest["modalities"]["m1"] = "../../outside/.pgpass"
    else:
        manifest["labels"] = secret
    (folder / "fusioncore.json").write_text(json.dumps(manifest))
    for policy in (restricted(lab), AccessPolicy((), "local")):  # even a local dashboard keeps a manifest in its folder
        text = refusal(str(folder), policy)
        assert "points outside the dataset folder" in text and "fusioncore.json:" in text


def test_an_image_table_naming_images_outside_the_folder_is_refused(lab):
    folder = lab / "root" / "cohort"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(lab / "outside" / "theirs.png")
    ids = [line.split(",")[0] for line in (folder / "labels.csv").read_text().splitlines()[1:]]
    rows = [f"{s},../../outside/theirs.png" for s in ids]
    (folder / "slide.csv").write_text("sample_id,path\n" + "\n".join(rows) + "\n")
    text = refusal(str(folder), restricted(lab))
    assert "slide.csv, row 2, column 'path': '../../outside/theirs.png' points outside the dataset folder" in text


def test_a_link_inside_the_folder_pointing_out_is_refused(lab):
    folder = lab / "root" / "cohort"
    os.symlink(lab / "outside" / ".pgpass", folder / "m3.csv")
    assert "m3.csv" in refusal(str(folder), restricted(lab))


@pytest.mark.parametrize("spec", ["{lab}/outside", "mogonet:{lab}/outside", "table:{lab}/root/../outside", "/", "/etc"])
def test_folders_outside_the_roots_are_refused_before_anything_is_read(lab, spec):
    text = refusal(spec.format(lab=lab), restricted(lab))
    assert "is outside the folders this dashboard may read" in text


def test_a_link_to_outside_the_roots_is_refused_and_its_target_never_named(lab):
    os.symlink(lab / "outside", lab / "root" / "shortcut")
    text = refusal(str(lab / "root" / "shortcut"), restricted(lab))
    assert "is outside the folders" in text and str(lab / "outside") not in text


def test_a_link_inside_the_roots_is_named_as_typed(lab):
    os.symlink(lab / "root" / "cohort", lab / "root" / "alias")
    (lab / "root" / "cohort" / "labels.csv").write_text("sample_id,label\n")
    text = refusal(str(lab / "root" / "alias"), restricted(lab))
    assert str(lab / "root" / "alias") in text and str(lab / "root" / "cohort") not in text


def test_the_filesystem_root_is_a_clear_message_quickly(lab):
    start = time.perf_counter()
    text = refusal("/", AccessPolicy((), "local"))
    assert "/: no modality tables found" in text
    assert time.perf_counter() - start < 5


def test_the_version_key_walks_no_tree(lab, monkeypatch):
    def no_walk(*args, **kwargs):
        raise AssertionError("a tree walk")

    monkeypatch.setattr(Path, "rglob", no_walk)
    monkeypatch.setattr(os, "walk", no_walk)
    source = resolve_dataset(str(lab / "root" / "cohort"), restricted(lab))
    before = dataset_version(source)
    assert before == dataset_version(source)
    time.sleep(0.01)
    (lab / "root" / "cohort" / "m0.csv").write_text((lab / "root" / "cohort" / "m0.csv").read_text() + "\n")
    assert dataset_version(source) != before
    assert dataset_version(resolve_dataset("/usr", AccessPolicy((), "local")))  # one listing, no walk


def test_a_huge_folder_is_not_listed(lab, monkeypatch):
    import fusioncore.inspect.folders as folders

    monkeypatch.setattr(folders, "MAX_ENTRIES", 3)
    with pytest.raises(DataError, match="more than 3 entries; not a dataset folder"):
        load_cohort(str(lab / "root" / "cohort"), restricted(lab))


def test_an_empty_spec_and_shared_mode(lab):
    with pytest.raises(DataError, match="no dataset given"):
        load_cohort("  ", restricted(lab))
    with pytest.raises(AccessError, match="shared and reads no server paths"):
        load_cohort(str(lab / "root" / "cohort"), AccessPolicy((), "shared"))
