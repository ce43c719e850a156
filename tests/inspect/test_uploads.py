"""Uploaded checkpoints and samples: every bad input is a ValueError that says what is wrong."""

import io

import numpy as np
import pandas as pd
import pytest

import fusioncore as fc
from conftest import make_tabular_dataset
from inspect_helpers import tiny_model
from upload_bytes import huge_png_header, png_bytes, zip_bytes

from fusioncore.checkpoint import CheckpointError
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.errors import DataError
from fusioncore.inspect import explain_sample, extract_checkpoint_zip, read_uploaded_samples
from fusioncore.inspect.uploads import load_checkpoint_zip


@pytest.fixture(scope="module")
def data():
    return make_tabular_dataset(n=24, n_classes=2)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    tiny_model(data, epochs=5).save(folder)
    return folder


def test_zip_round_trip_root_and_nested(ckpt, tmp_path, data):
    files = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    folder = extract_checkpoint_zip(zip_bytes(files), tmp_path / "a")
    assert (folder / "config.json").is_file()
    nested = zip_bytes({f"model/{k}": v for k, v in files.items()} | {"__MACOSX/._x": b"junk"})
    model = load_checkpoint_zip(nested, tmp_path / "b", archive_name="m.zip")
    want = fc.load(ckpt)
    from fusioncore.training import predict

    np.testing.assert_array_equal(predict(model, data).probabilities, predict(want, data).probabilities)


@pytest.mark.parametrize("files, message", [
    ({"../evil/config.json": b"{}", "model.safetensors": b""}, "outside the archive"),
    ({"/abs/config.json": b"{}"}, "outside the archive"),
    ({"model.safetensors": b"x"}, "no config.json"),
    ({"config.json": b"{}"}, "no model.safetensors"),
])
def test_zip_refusals(tmp_path, files, message):
    with pytest.raises(CheckpointError, match=message):
        extract_checkpoint_zip(zip_bytes(files), tmp_path / "x", archive_name="up.zip")
    assert not (tmp_path.parent / "evil").exists()


def test_not_a_zip_and_corrupt_members(ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="not a zip archive"):
        extract_checkpoint_zip(b"this is text", tmp_path / "x", archive_name="up.zip")
    files = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        load_checkpoint_zip(zip_bytes(files | {"model.safetensors": b"garbage" * 10}), tmp_path / "y", archive_name="up.zip")
    with pytest.raises(CheckpointError, match="config.json: not valid JSON"):
        load_checkpoint_zip(zip_bytes(files | {"config.json": b"{not json"}), tmp_path / "z", archive_name="up.zip")


def csv_of(data, name: str, rows=None, columns=None) -> bytes:
    spec = data.schema.modality(name)
    rows = range(len(data)) if rows is None else rows
    frame = pd.DataFrame(data.features[name][list(rows)], columns=list(spec.features))
    if columns is not None:
        frame = frame[columns]
    frame.insert(0, "sample_id", [data.sample_ids[i] for i in rows])
    return frame.to_csv(index=False, float_format="%.9g").encode()


def test_uploaded_samples_score_identically(data, ckpt):
    model = fc.load(ckpt)
    cols = list(data.schema.modality("m0").features)[::-1] + []  # reordered: matched by name
    files = [("m0.csv", csv_of(data, "m0", [3, 5], cols)), ("m1.csv", csv_of(data, "m1", [3, 5])),
             ("m2.csv", csv_of(data, "m2", [3]))]
    up = read_uploaded_samples(model.schema, files)
    assert up.sample_ids == (data.sample_ids[3], data.sample_ids[5])
    assert up.present[1].tolist() == [True, True, False]  # sample 5 has no m2 row: absent
    a = explain_sample(model, up, 0)
    b = explain_sample(model, data, 3)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    np.testing.assert_array_equal(a.gates["m0"], b.gates["m0"])


def test_uploaded_table_errors(data):
    schema = data.schema
    cols = list(schema.modality("m0").features)
    with pytest.raises(DataError, match="lacks 2 of the model's 6 feature columns") as err:
        read_uploaded_samples(schema, [("m0.csv", csv_of(data, "m0", [0], cols[2:]))])
    assert "missing column 'm0_f0'" in str(err.value)
    extra = pd.read_csv(io.BytesIO(csv_of(data, "m0", [0]))).assign(surplus=1.0).to_csv(index=False).encode()
    up = read_uploaded_samples(schema, [("m0.csv", extra)])
    assert any("extra column" in n and "surplus" in n for n in up.notes)
    bad = csv_of(data, "m0", [0, 1]).decode().splitlines()
    bad[2] = bad[2].split(",", 2)[0] + ",abc," + bad[2].split(",", 2)[2]
    with pytest.raises(DataError, match=r"row 3, column 'm0_f0': 'abc' is not a number"):
        read_uploaded_samples(schema, [("m0.csv", "\n".join(bad).encode())])
    with pytest.raises(DataError, match="'rna' is not a tabular modality of the model"):
        read_uploaded_samples(schema, [("rna.csv", b"sample_id,a\ns1,1\n")])
    with pytest.raises(DataError, match="no files uploaded"):
        read_uploaded_samples(schema, [])


def image_schema() -> DataSchema:
    return DataSchema((ModalitySpec("slide", "image", (3, 8, 8)), ModalitySpec("t", "tabular", (2,), ("a", "b"))), ("x", "y"))


def test_uploaded_images():
    schema = image_schema()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    up = read_uploaded_samples(schema, [("t.csv", b"sample_id,a,b\nS1,1,2\n"), ("whatever.png", png_bytes(img))])
    assert up.present.tolist() == [[True, True]]  # one sample, one image: matched
    np.testing.assert_array_equal(up.features["slide"][0], img.transpose(2, 0, 1) / np.float32(255))
    two = read_uploaded_samples(schema, [("S1.png", png_bytes(img)), ("S2.png", png_bytes(img))])
    assert two.sample_ids == ("S1", "S2") and not two.present[:, 1].any()
    with pytest.raises(ValueError, match="not an image file"):
        read_uploaded_samples(schema, [("S1.png", b"hello, not a png")])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_uploaded_samples(schema, [("S1.png", png_bytes(img)[:60])])
    with pytest.raises(ValueError, match="S1.png: 8000x8000 = 64.0 megapixels exceeds the limit of 40.0 MP"):
        read_uploaded_samples(schema, [("S1.png", huge_png_header(8000, 8000))])
    with pytest.raises(ValueError, match="S1.png: refused as a possible decompression bomb"):
        read_uploaded_samples(schema, [("S1.png", huge_png_header())])
    with pytest.raises(ValueError, match="none of"):
        read_uploaded_samples(schema, [("t.csv", b"sample_id,a,b\nS1,1,2\nS2,3,4\n"), ("zz.png", png_bytes(img))])
    with pytest.raises(DataError, match="no image modality"):
        read_uploaded_samples(DataSchema((ModalitySpec("t", "tabular", (2,), ("a", "b")),), ("x", "y")),
                              [("S1.png", png_bytes(img))])
