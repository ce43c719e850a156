"""Readers take a path, bytes or a binary file-like object and give the same table, image and
messages (the name given stands for the file), so an upload needs no temporary file."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fusioncore.data.errors import DataError
from fusioncore.data.images import ImageLoadError, read_image
from fusioncore.data.readers import read_table
from fusioncore.data.tables import ModalityFile, read_modality_table

EUROPEAN = "sample_id;a;b\nS1;0,5;1\nS2;2;3,25\n".encode("cp1252")


def test_a_table_from_bytes_or_a_file_object_equals_the_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(EUROPEAN)
    on_disk = read_table(path)
    for source in (EUROPEAN, io.BytesIO(EUROPEAN)):
        got = read_table(source, name="m.csv")
        pd.testing.assert_frame_equal(got, on_disk)
        assert got.attrs["notes"] == on_disk.attrs["notes"]


def test_a_parquet_table_from_bytes(tmp_path):
    frame = pd.DataFrame({"sample_id": ["S1", "S2"], "a": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "m.parquet")
    got = read_table((tmp_path / "m.parquet").read_bytes(), name="m.parquet")
    pd.testing.assert_frame_equal(got, read_table(tmp_path / "m.parquet"))


def test_messages_name_the_given_name(tmp_path):
    with pytest.raises(DataError, match=r"^up\.csv: the file is empty"):
        read_table(b"", name="up.csv")
    bad = ModalityFile("m", tmp_path / "up.csv", "tabular", data=b"sample_id,a\nS1,x\n")
    with pytest.raises(DataError) as err:
        read_modality_table(bad, None)
    assert f"{tmp_path / 'up.csv'}, row 2, column 'a': 'x' is not a number" in str(err.value)
    assert not (tmp_path / "up.csv").exists(), "nothing is written"


def test_an_image_from_bytes_equals_the_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "s.png")
    payload = (tmp_path / "s.png").read_bytes()
    assert np.array_equal(read_image(payload, name="s.png").pixels, read_image(tmp_path / "s.png").pixels)
    assert np.array_equal(read_image(io.BytesIO(payload), name="s.png").pixels, pixels)
    with pytest.raises(ImageLoadError, match=r"^s\.png: not an image file"):
        read_image(b"hello", name="s.png")
