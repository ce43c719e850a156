"""MOGONET and table loaders: layouts, and errors that name file, row and column."""

from __future__ import annotations

import json

import numpy as np
import pytest

from doc_layouts import write_mogonet

from fusioncore.data.align import align_to_schema
from fusioncore.data.errors import DataError
from fusioncore.data.mogonet import load_mogonet
from fusioncore.data.loaders import load_data
from fusioncore.data.tables import load_tables


def test_mogonet_layout(tmp_path):
    splits = load_mogonet(write_mogonet(tmp_path / "ds"))
    assert splits.schema.modality_names == ["mRNA", "methylation"]
    assert splits.schema.modality("mRNA").features == ("g1_0", "g1_1", "g1_2", "g1_3")
    assert len(splits.train) == 12 and len(splits.test) == 6 and splits.train.present.all()
    assert splits.train.features["methylation"].shape == (12, 3)


def test_mogonet_errors_name_the_cell(tmp_path):
    folder = write_mogonet(tmp_path / "ds")
    lines = (folder / "1_tr.csv").read_text().splitlines()
    cells = lines[2].split(",")
    cells[1] = "abc"
    lines[2] = ",".join(cells)
    (folder / "1_tr.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"1_tr.csv, row 3, column 2: 'abc' is not a number"):
        load_mogonet(folder)


def test_mogonet_nan_ragged_and_empty(tmp_path):
    folder = write_mogonet(tmp_path / "a")
    text = (folder / "2_te.csv").read_text().splitlines()
    text[0] = "nan," + ",".join(text[0].split(",")[1:])
    (folder / "2_te.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"2_te.csv, row 1, column 1: value is nan"):
        load_mogonet(folder)
    folder = write_mogonet(tmp_path / "b")
    with open(folder / "1_te.csv", "a") as fh:
        fh.write("1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"1_te.csv: rows have different numbers of columns"):
        load_mogonet(folder)
    folder = write_mogonet(tmp_path / "c")
    (folder / "labels_te.csv").write_text("")
    with pytest.raises(DataError, match=r"labels_te.csv: the file is empty"):
        load_mogonet(folder)


def test_mogonet_unknown_labels_and_row_mismatch(tmp_path):
    folder = write_mogonet(tmp_path / "a")
    (folder / "labels_te.csv").write_text("0\n1\n7\n0\n1\n0\n")
    with pytest.raises(DataError, match=r"labels_te.csv, row 3: label 7 does not occur"):
        load_mogonet(folder)
    folder = write_mogonet(tmp_path / "b")
    (folder / "labels_tr.csv").write_text("0\n1\n")
    with pytest.raises(DataError, match="12 rows, but labels_tr.csv has 2"):
        load_mogonet(folder)
    folder = write_mogonet(tmp_path / "c")
    (folder / "labels_tr.csv").write_text("0\n0.5\n" + "1\n" * 10)
    with pytest.raises(DataError, match="row 2: label 0.5 is not a non-negative whole number"):
        load_mogonet(folder)


def write_tables(folder, split=True):
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"p{i}" for i in range(10)]
    labels = ["AD" if i % 2 else "NC" for i in range(10)]
    rows = ["sample_id,label" + (",split" if split else "")]
    for i, (s, y) in enumerate(zip(ids, labels)):
        rows.append(f"{s},{y}" + ("," + ("test" if i >= 7 else "train") if split else ""))
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    (folder / "rna.csv").write_text("sample_id,A,B,C\n" + "".join(f"{s},{i},{i * 2},{i % 3}\n" for i, s in enumerate(ids)))
    # protein measured for only half of the samples: the rest are absent for it
    (folder / "protein.csv").write_text("sample_id,P1,P2\n" + "".join(f"{s},{i}.5,{-i}\n" for i, s in enumerate(ids[::2])))
    return folder


def test_tables_layout_and_absent_samples(tmp_path):
    splits = load_tables(write_tables(tmp_path / "t"))
    assert splits.schema.classes == ("AD", "NC")
    assert sorted(splits.schema.modality_names) == ["protein", "rna"]
    train = splits.train
    assert len(train) == 7 and len(splits.test) == 3
    j = train.schema.index("protein")
    assert train.present[:, j].tolist() == [i % 2 == 0 for i in range(7)]
    assert train.features["rna"][3].tolist() == [3.0, 6.0, 0.0]
    assert load_data(f"table:{tmp_path / 't'}").train.sample_ids == train.sample_ids


def test_tables_stratified_split_without_split_column(tmp_path):
    a = load_tables(write_tables(tmp_path / "t", split=False))
    b = load_tables(tmp_path / "t")
    assert a.train.sample_ids == b.train.sample_ids
    assert len(a.test) == 4 and set(a.test.labels.tolist()) == {0, 1}


def test_tables_errors(tmp_path):
    folder = write_tables(tmp_path / "t")
    (folder / "rna.csv").write_text("sample_id,A,B,C\np0,1,2,3\np0,4,5,6\np1,x,,2\n")
    with pytest.raises(DataError, match=r"rna.csv, row 3: sample id 'p0' repeats row 2"):
        load_tables(folder)
    (folder / "rna.csv").write_text("sample_id,A,B,C\np0,1,2,3\np1,x,,2\n")
    with pytest.raises(DataError) as info:
        load_tables(folder)
    assert "rna.csv, row 3, column 'A': 'x' is not a number" in str(info.value)
    assert "rna.csv, row 3, column 'B': empty cell" in str(info.value)
    (folder / "rna.csv").write_text("sample_id,A\np0,1\n")
    (folder / "labels.csv").write_text("sample_id,label\np0,AD\np1,\n")
    with pytest.raises(DataError, match=r"labels.csv: every sample has the label 'AD'; a classifier needs"):
        load_tables(folder)  # p1's empty label is dropped, which leaves one class


def test_manifest_and_unknown_class(tmp_path):
    folder = write_tables(tmp_path / "t")
    (folder / "fusioncore.json").write_text(json.dumps({"labels": "labels.csv", "modalities": {"expr": "rna.csv"}, "classes": ["NC", "MCI"]}))
    with pytest.raises(DataError, match=r"label 'AD' is not one of \['NC', 'MCI'\]"):
        load_tables(folder)
    (folder / "fusioncore.json").write_text(json.dumps({"labels": "labels.csv", "modalities": {"expr": "rna.csv"}}))
    assert load_tables(folder).schema.modality_names == ["expr"]


def test_align_reorders_columns_and_lists_missing(tmp_path):
    splits = load_tables(write_tables(tmp_path / "t"))
    schema = splits.schema
    folder = tmp_path / "u"
    write_tables(folder)
    (folder / "rna.csv").write_text("sample_id,C,A,B,EXTRA\n" + "".join(f"p{i},{i % 3},{i},{i * 2},9\n" for i in range(10)))
    aligned = align_to_schema(load_tables(folder).train, schema)
    assert np.array_equal(aligned.features["rna"], splits.train.features["rna"])
    assert any("EXTRA" in n for n in aligned.notes)
    (folder / "rna.csv").write_text("sample_id,A,C\n" + "".join(f"p{i},{i},{i % 3}\n" for i in range(10)))
    with pytest.raises(DataError, match="lacks 1 of the model's 3 feature columns") as info:
        align_to_schema(load_tables(folder).train, schema)
    assert "missing column 'B'" in str(info.value)


def test_unknown_data_kind():
    with pytest.raises(DataError, match="unknown kind 'foo'"):
        load_data("foo:bar")


def test_padding_travels_from_dataset_to_batch(tiny_data):
    from dataclasses import replace

    from fusioncore.data.dataset import to_batch

    real = np.zeros((len(tiny_data), 6), dtype=bool)
    real[:, :3] = True
    data = replace(tiny_data, padding={"m0": real})
    part = data.subset([5, 2])
    batch = to_batch(part)
    assert batch.padding["m0"].shape == (2, 6) and batch.padding["m0"][:, :3].all() and not batch.padding["m0"][:, 3:].any()
    assert to_batch(tiny_data).padding is None


def test_minmax_ignores_missing_cells():
    from fusioncore.data.preprocessing import MinMaxScaler

    x = np.array([[1.0, np.nan, np.nan], [3.0, 2.0, np.nan], [2.0, 4.0, np.nan]])
    scaler = MinMaxScaler.fit(x)
    assert scaler.minimum.tolist() == [1.0, 2.0, 0.0] and scaler.maximum.tolist() == [3.0, 4.0, 1.0]
    out = scaler.transform(x)
    assert np.isnan(out[0, 1]) and out[2, 1] == pytest.approx(1.0)


def test_labelled_samples_in_no_table_are_listed(tmp_path):
    folder = write_tables(tmp_path / "t")
    (folder / "labels.csv").write_text((folder / "labels.csv").read_text().replace("p3,", "P3,"))
    with pytest.raises(DataError, match="1 labelled sample\\(s\\) appear in no modality table") as info:
        load_tables(folder)
    assert "sample id 'P3'" in str(info.value)


def test_index_labels_map_onto_the_model_classes(tmp_path):
    import shutil

    from fusioncore.data.mogonet import load_mogonet

    model_schema = load_mogonet(write_mogonet(tmp_path / "rosmap")).schema
    assert model_schema.classes == ("NC", "AD")
    shutil.copytree(tmp_path / "rosmap", tmp_path / "copy")
    data = load_mogonet(tmp_path / "copy").test
    aligned = align_to_schema(data, model_schema)
    assert aligned.labels.tolist() == data.labels.tolist() and any("class indices" in n for n in aligned.notes)
