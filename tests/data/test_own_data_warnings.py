"""Issue 14, item 3 ("nothing silently wrong"): each suspect input -> the warning the CLI prints on
stderr (the dashboard shows the same list, ``fusioncore.data.checks``), or a refusal (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fusioncore.data.checks import data_warnings
from fusioncore.data.preprocessing import CLIP_MARGIN, MinMaxScaler
from fusioncore.data.tables import load_tables
from own_data_helpers import cli, train, write_cohort, write_mogonet


def _with_column(folder, name, train_value, test_value):
    """Give modality table ``rna.csv`` a column ``name`` (train / test by a split column)."""
    labels = (folder / "labels.csv").read_text().splitlines()
    split = ["train" if i % 3 else "test" for i in range(len(labels) - 1)]
    (folder / "labels.csv").write_text("\n".join([labels[0] + ",split"] + [f"{r},{s}" for r, s in zip(labels[1:], split)]) + "\n")
    rows = (folder / "rna.csv").read_text().splitlines()
    values = [train_value if s == "train" else test_value for s in split]
    (folder / "rna.csv").write_text("\n".join([rows[0] + f",{name}"] + [f"{r},{v}" for r, v in zip(rows[1:], values)]) + "\n")


def test_feature_constant_in_training_warns_at_train_and_evaluate_and_stays_bounded(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    _with_column(folder, "GENE_X", 0.5, 0.6)
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0
    assert "warning:" in err and "constant in training" in err and "'GENE_X' (0.5 in training, e.g. 0.6" in err
    code, out, err = cli(capsys, "evaluate", "--checkpoint", tmp_path / "m", "--data", f"table:{folder}")
    assert code == 0 and "fusioncore evaluate: warning:" in err and "GENE_X" in err
    assert any("GENE_X" in w for w in json.loads(out)["warnings"])
    scaler = MinMaxScaler.fit(np.array([[0.5, 0.0], [0.5, 1.0]]))
    scaled = scaler.transform(np.array([[0.6, 1e12], [0.5, -1e12]]))
    assert scaled[:, 0].tolist() == [0.0, 0.0]  # was 1e9 with the 1e-10 epsilon
    assert scaled[:, 1].tolist() == [1.0 + CLIP_MARGIN, -CLIP_MARGIN]


def test_ids_that_match_in_part_name_the_modality_and_the_share(tmp_path, capsys):
    ids = [f"S{i:04d}" if i % 2 else f"S{i}" for i in range(30)]  # half the prot ids written S7, not S0007
    folder = write_cohort(tmp_path / "c", ids={"prot": ids})
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0
    assert "modality 'prot': 50% of the labelled samples (15 of 30) have no row in prot.csv" in err
    assert "do the ids match the labels' spelling?" in err


def test_missing_labels_are_dropped_and_counted(tmp_path, capsys):
    labels = ["AD" if i % 2 else "NC" for i in range(30)]
    labels[3] = labels[8] = labels[20] = ""
    folder = write_cohort(tmp_path / "c", labels=labels)
    code, out, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0
    assert "labels.csv: 3 of 30 sample(s) have no label and were dropped (row(s) 5, 10, 22)" in err
    assert "rna.csv: 3 sample id(s) have no label and were dropped" in err


def test_a_label_typo_names_the_one_sample_class(tmp_path, capsys):
    labels = ["AD" if i % 2 else "NC" for i in range(30)]
    labels[5] = "Ad"
    code, _, err = train(capsys, f"table:{write_cohort(tmp_path / 'c', labels=labels)}", tmp_path / "m")
    assert code == 0
    assert "class 'Ad': 1 sample (row 7); a typo of 'AD'?" in err


def test_numeric_labels_written_two_ways_are_one_class(tmp_path, capsys):
    labels = [("1" if i % 4 == 1 else "1.0") if i % 2 else "0" for i in range(30)]
    folder = write_cohort(tmp_path / "c", labels=labels)
    assert load_tables(folder).schema.classes == ("0", "1")
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0 and "labels '1', '1.0' read as one class '1'" in err


def test_single_class_training_data_is_refused(tmp_path, capsys):
    code, _, err = train(capsys, f"table:{write_cohort(tmp_path / 'c', labels=['AD'] * 30)}", tmp_path / "m")
    assert code == 2 and "labels.csv: every sample has the label 'AD'; a classifier needs" in err
    folder = write_cohort(tmp_path / "d", labels=["AD"] * 30)
    (folder / "fusioncore.json").write_text(json.dumps({"labels": "labels.csv", "modalities": {"rna": "rna.csv"},
                                                         "classes": ["NC", "AD"]}))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m2")  # declared classes: loads, training refused
    assert code == 2 and "every training sample has the label 'AD'" in err
    assert not (tmp_path / "m2").exists()


def test_duplicate_column_headers_are_refused_naming_column_and_file(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    text = (folder / "rna.csv").read_text().replace("rna_g2", "rna_g0", 1)
    (folder / "rna.csv").write_text(text)
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2
    assert "rna.csv: the header names a column more than once" in err and "column 'rna_g0' appears 2 times (columns 2, 4)" in err


def test_values_beyond_float32_are_refused_naming_file_row_column(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    lines = (folder / "prot.csv").read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ",1e39"
    (folder / "prot.csv").write_text("\n".join(lines) + "\n")
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 2 and "prot.csv, row 5, column 'prot_g2': 1e+39 is beyond the float32 range" in err


def test_a_mogonet_folder_of_one_class_is_refused(tmp_path, capsys):
    folder = write_mogonet(tmp_path / "mog", labels_tr=[0] * 20)
    code, _, err = train(capsys, f"mogonet:{folder}", tmp_path / "m")
    assert code == 2 and "labels_tr.csv: every training sample has the label 0" in err


def test_remove_modality_works_for_every_modality_and_refuses_all(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c", dims={"rna": 4, "prot": 3, "mirna": 2})
    assert train(capsys, f"table:{folder}", tmp_path / "m")[0] == 0
    for name in ("rna", "prot", "mirna"):
        code, out, err = cli(capsys, "evaluate", "--checkpoint", tmp_path / "m", "--data", f"table:{folder}",
                             "--remove-modality", name)
        assert code == 0, err
        assert json.loads(out)["removed_modalities"] == [name]
    code, _, err = cli(capsys, "evaluate", "--checkpoint", tmp_path / "m", "--data", f"table:{folder}",
                       "--remove-modality", "rna,prot", "--remove-modality", "mirna")
    assert code == 2 and "--remove-modality: removing every modality (mirna, prot, rna) leaves the model nothing" in err
    code, _, err = cli(capsys, "evaluate", "--checkpoint", tmp_path / "m", "--data", f"table:{folder}",
                       "--remove-modality", "RNA")
    assert code == 2 and "--remove-modality 'RNA': not a modality of the model" in err


def _image_cohort(folder, n=12):
    folder = write_cohort(folder, n=n)
    (folder / "img").mkdir()
    rows = []
    for i in range(n):
        Image.new("RGB", (16, 16), (200, 60, 60)).save(folder / "img" / f"{i}.png")
        rows.append(f"S{i:04d},img/{i}.png")
    (folder / "images.csv").write_text("sample_id,path\n" + "\n".join(rows) + "\n")
    return folder


def test_exif_orientation_is_honoured(tmp_path, capsys):
    folder = _image_cohort(tmp_path / "c")
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = 255  # left half white as stored; orientation 6 turns it by 90 degrees
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(folder / "img" / "0.jpg", exif=exif, quality=95)
    (folder / "images.csv").write_text((folder / "images.csv").read_text().replace("img/0.png", "img/0.jpg"))
    from fusioncore.data.images import read_image

    loaded = read_image(folder / "img" / "0.jpg")
    assert loaded.pixels.shape == (20, 10, 3) and "EXIF orientation (6)" in loaded.conversion
    assert loaded.pixels[:10].mean() > 200 and loaded.pixels[10:].mean() < 50  # white half now on top
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0 and "images.csv: 1 image(s) turned upright as their EXIF orientation says: row 1" in err


def test_only_the_first_frame_of_a_multipage_tiff_or_apng_is_used_and_said(tmp_path, capsys):
    folder = _image_cohort(tmp_path / "c")
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(folder / "img" / "1.tif", save_all=True, append_images=frames[1:])
    frames[0].save(folder / "img" / "2.png", save_all=True, append_images=frames[1:2])  # APNG
    (folder / "images.csv").write_text((folder / "images.csv").read_text().replace("img/1.png", "img/1.tif"))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0
    assert ("warning: images.csv: 2 image(s) have several frames (multi-page TIFF or animated PNG); only the first frame "
            "of each was used: row 2 (3 frames), row 3 (2 frames)") in err


def test_train_prints_the_data_notes(tmp_path, capsys):
    folder = write_cohort(tmp_path / "c")
    (folder / "rna.csv").write_text((folder / "rna.csv").read_text().replace(",", ";"))
    code, _, err = train(capsys, f"table:{folder}", tmp_path / "m")
    assert code == 0 and "fusioncore train: note: rna.csv: read with the semicolon separator ';'" in err


def test_the_dashboard_gets_the_same_warnings(tmp_path):
    """``app/sidebar.py`` shows ``data_warnings(data, model.preprocessing)`` with ``st.warning``."""
    labels = ["AD" if i % 2 else "NC" for i in range(30)]
    labels[5] = "Ad"
    splits = load_tables(write_cohort(tmp_path / "c", labels=labels))
    scaler = {"rna": MinMaxScaler(np.zeros(4), np.array([1.0, 1.0, 0.0, 1.0]))}
    found = data_warnings(splits.test, scaler)
    assert any("class 'Ad': 1 sample" in w for w in found)
    assert any("'rna_g2' (0 in training" in w for w in found)
