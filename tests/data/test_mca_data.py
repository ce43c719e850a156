"""Predrop, the stored presence matrix, the synthetic sparse dataset and the TCGA / CMU-MOSEI loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.data.errors import DataError
from fusioncore.data.predrop import apply_predrop, predrop, read_presence, write_presence
from fusioncore.data.synthetic_sparse import MODALITIES, make_synthetic_sparse
from fusioncore.data.tcga import load_tcga_tables

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


# -- predrop ----------------------------------------------------------------------------------------
def test_predrop_is_reproducible_and_has_the_right_rate():
    full = np.ones((4000, 4), dtype=bool)
    a, b, c = predrop(full, 0.4, seed=43), predrop(full, 0.4, seed=43), predrop(full, 0.4, seed=44)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs((~a).mean() - 0.4) < 0.02
    per = predrop(full, [0.0, 0.2, 0.8, 1.0], seed=0)
    assert per[:, 0].all() and not per[:, 3].any() and abs((~per[:, 2]).mean() - 0.8) < 0.03
    assert np.array_equal(predrop(full, 0.0, seed=1), full)


def test_predrop_never_adds_modalities_and_refuses_bad_p():
    present = np.array([[True, False], [False, False]])
    assert not (predrop(present, 0.3, seed=0) & ~present).any()
    with pytest.raises(ValueError, match="probabilities"):
        predrop(present, 1.5, seed=0)


def test_synthetic_sparsity_is_fixed_before_the_split():
    one = make_synthetic_sparse(200, sparsity=0.4, seed=3)
    two = make_synthetic_sparse(200, sparsity=0.4, seed=3)
    assert np.array_equal(one.splits.train.present, two.splits.train.present)
    assert np.array_equal(one.splits.test.present, two.splits.test.present)
    missing_train, missing_test = 1 - one.splits.train.present.mean(), 1 - one.splits.test.present.mean()
    assert 0.3 < missing_train < 0.5 and 0.25 < missing_test < 0.55  # the test set is as sparse
    for j, name in enumerate(MODALITIES):
        absent = ~one.splits.train.present[:, j]
        assert not one.splits.train.features[name][absent].any(), "absent rows hold zeros"


def test_presence_round_trip_with_the_data_and_the_checkpoint(tmp_path):
    data = apply_predrop(make_synthetic_sparse(40, seed=0).splits.train, 0.5, seed=7)
    write_presence(tmp_path / "presence.csv", data)
    fresh = make_synthetic_sparse(40, seed=0).splits.train
    assert np.array_equal(read_presence(tmp_path / "presence.csv", fresh).present, data.present)
    model = fc.create_model("mca", data.schema, dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1)
    folder = model.save(tmp_path / "ckpt", extra={"predrop": {"p": 0.5, "seed": 7}})
    write_presence(folder, data)
    assert np.array_equal(read_presence(folder, fresh).present, data.present)
    assert fc.load(folder).method == "mca"  # the extra file does not disturb loading


def test_read_presence_errors(tmp_path):
    data = make_synthetic_sparse(20, seed=0).splits.train
    path = tmp_path / "p.csv"
    path.write_text("sample_id,a,b\nx,1,0\n")
    with pytest.raises(ValueError, match="header"):
        read_presence(path, data)
    path.write_text("sample_id," + ",".join(data.modality_names) + f"\n{data.sample_ids[0]},1,1,1,2\n")
    with pytest.raises(ValueError, match="row 2"):
        read_presence(path, data)
    path.write_text("sample_id," + ",".join(data.modality_names) + f"\n{data.sample_ids[0]},1,1,1,1\n")
    with pytest.raises(ValueError, match="not listed"):
        read_presence(path, data)


def test_synthetic_dataset_shapes_and_signal():
    syn = make_synthetic_sparse(120, seed=1)
    train = syn.splits.train
    assert len(train) == 90 and len(syn.splits.test) == 30
    assert train.features["seq_a"].shape == (90, 12, 8) and train.features["tab_d"].shape == (90, 12)
    assert set(np.unique(train.labels)) == {0, 1}
    assert syn.latent_train.shape == (90, 4)
    # every modality carries the shared latent signal
    for name in MODALITIES:
        x = train.features[name].reshape(90, -1)
        corr = np.abs(np.corrcoef(np.c_[x, syn.latent_train[:, 0]].T)[-1, :-1]).max()
        assert corr > 0.3, name


# -- TCGA-style tables --------------------------------------------------------------------------------
def _write_tcga(folder: Path) -> dict:
    (folder / "rna.csv").write_text("sample_id,G1,G2\nA,1.0,2.0\nB,3.0,4.0\nC,5.0,6.0\nZ,0,0\n")
    (folder / "protein.tsv").write_text("sample_id\tP1\tP2\tP3\nB\t0.5\t\t1.5\nD\t1\tNA\t2\n")
    (folder / "labels.csv").write_text("sample_id,cancer\nA,BRCA\nB,LUAD\nC,BRCA\nD,LUAD\n")
    return {"rna": folder / "rna.csv", "protein": folder / "protein.tsv"}


def test_tcga_tables_presence_missing_values_and_labels(tmp_path):
    omics = _write_tcga(tmp_path)
    data = load_tcga_tables(omics, tmp_path / "labels.csv")
    assert data.sample_ids == ("A", "B", "C", "D") and data.schema.classes == ("BRCA", "LUAD")
    assert data.present.tolist() == [[True, False], [True, True], [True, False], [False, True]]
    assert data.labels.tolist() == [0, 1, 0, 1]
    assert np.isnan(data.features["protein"][1, 1]) and np.isnan(data.features["protein"][3, 1])
    assert data.features["protein"][1, 2] == pytest.approx(1.5)
    assert data.schema.modality("protein").features == ("P1", "P2", "P3")
    assert any("without a label" in n for n in data.notes)
    # straight into the MCA tokeniser: NaN cells are key-masked, no NaN comes out
    model = fc.create_model("mca", data.schema, dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1).eval()
    from fusioncore.data.dataset import to_batch

    with torch.no_grad():
        out = model(to_batch(data))
    assert all(torch.isfinite(v).all() for v in out.embeddings.values())
    z = load_tcga_tables(omics, tmp_path / "labels.csv", zscore=True)
    assert np.allclose(z.features["rna"][:3].mean(0), 0, atol=1e-6)


def test_tcga_bad_cells_and_duplicates_are_named(tmp_path):
    omics = _write_tcga(tmp_path)
    (tmp_path / "rna.csv").write_text("sample_id,G1\nA,1.0\nB,abc\n")
    with pytest.raises(DataError, match=r"rna.csv, row 3, column 'G1'"):
        load_tcga_tables(omics, tmp_path / "labels.csv")
    (tmp_path / "rna.csv").write_text("sample_id,G1\nA,1.0\nA,2.0\n")
    with pytest.raises(DataError, match="repeat"):
        load_tcga_tables(omics, tmp_path / "labels.csv")
    _write_tcga(tmp_path)
    with pytest.raises(DataError, match="not one of"):
        load_tcga_tables(omics, tmp_path / "labels.csv", classes=("BRCA", "KIRC"))


# -- CMU-MOSEI computational sequences --------------------------------------------------------------------
def _write_csd(path: Path, name: str, data: dict[str, np.ndarray]) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as fh:
        root = fh.create_group(name)
        grp = root.create_group("data")
        for sid, x in data.items():
            g = grp.create_group(sid)
            g.create_dataset("features", data=x)
            g.create_dataset("intervals", data=np.stack([np.arange(len(x)), np.arange(len(x)) + 1], 1).astype(float))
        root.create_group("metadata")
    return path


def test_cmu_mosei_csd_loader(tmp_path):
    from fusioncore.data.cmu_mosei import read_cmu_mosei

    audio = {"v1[0]": np.ones((3, 2)), "v1[1]": np.full((5, 2), -np.inf), "v2[0]": np.zeros((0, 2))}
    text = {"v1[0]": np.arange(8.0).reshape(4, 2), "v1[1]": np.ones((1, 2)), "v2[0]": np.ones((2, 2))}
    labels = {"v1[0]": np.array([[1.5, 0, 0, 0, 0, 0, 0]]), "v1[1]": np.array([[-2.0, 1, 0, 0, 0, 0, 3]]),
              "v2[0]": np.array([[0.0] * 7])}
    cmu = read_cmu_mosei(
        {"covarep": _write_csd(tmp_path / "a.csd", "COVAREP", audio), "glove": _write_csd(tmp_path / "t.csd", "glove", text)},
        _write_csd(tmp_path / "l.csd", "All Labels", labels),
        max_lengths={"covarep": 4},
    )
    d = cmu.dataset
    assert d.sample_ids == ("v1[0]", "v1[1]", "v2[0]")
    assert d.features["covarep"].shape == (3, 4, 2) and d.features["glove"].shape == (3, 4, 2)
    assert d.present.tolist() == [[True, True], [True, True], [False, True]]
    assert cmu.padding["covarep"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
    assert np.all(d.features["covarep"][1] == 0)  # -inf -> 0, truncated to 4 tokens
    assert any("truncated" in n for n in d.notes) and any("non-finite" in n for n in d.notes)
    assert cmu.targets.shape == (3, 7) and d.labels.tolist() == [1, 0, 1]
    batch = cmu.batch(np.array([0, 2]))
    assert batch.padding["glove"].shape == (2, 4)
    model = fc.create_model("mca", d.schema, dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1).eval()
    with torch.no_grad():
        assert torch.isfinite(model(batch).logits).all()


def test_cmu_mosei_bad_labels(tmp_path):
    from fusioncore.data.cmu_mosei import read_cmu_mosei

    bad = _write_csd(tmp_path / "l.csd", "All Labels", {"s": np.zeros((1, 3))})
    feats = _write_csd(tmp_path / "a.csd", "A", {"s": np.ones((2, 2))})
    with pytest.raises(DataError, match="expected \\(1, 7\\)"):
        read_cmu_mosei({"a": feats}, bad)
    good = _write_csd(tmp_path / "g.csd", "All Labels", {"s": np.zeros((1, 7))})
    (tmp_path / "x.csd").write_text("not hdf5")
    with pytest.raises(DataError, match="HDF5"):
        read_cmu_mosei({"a": tmp_path / "x.csd"}, good)


def test_folder_loaders_as_the_cli_calls_them(tmp_path):
    from fusioncore.data.cmu_mosei import load_cmu_mosei
    from fusioncore.data.loaders import load_data
    from fusioncore.data.tcga import load_tcga

    tcga = tmp_path / "tcga"
    tcga.mkdir()
    _write_tcga(tcga)
    splits = load_tcga(tcga, test_fraction=0.25, seed=0)
    assert len(splits.train) == 3 and len(splits.test) == 1 and splits.schema.modality_names == ["protein", "rna"]
    cmu = tmp_path / "cmu"
    cmu.mkdir()
    ids = [f"v{i}[0]" for i in range(10)]
    _write_csd(cmu / "CMU_MOSEI_COVAREP.csd", "COVAREP", {s: np.ones((3, 2)) for s in ids})
    _write_csd(cmu / "CMU_MOSEI_TimestampedWordVectors.csd", "glove", {s: np.ones((2, 3)) for s in ids})
    _write_csd(cmu / "CMU_MOSEI_Labels.csd", "All Labels", {s: np.zeros((1, 7)) for s in ids})
    c = load_cmu_mosei(cmu, max_lengths={"covarep": 5})
    assert len(c.test) == 1 and c.schema.modality("covarep").shape == (5, 2)
    syn = load_data("synthetic-sparse:n=40,sparsity=0.4,seed=2")
    assert len(syn.train) + len(syn.test) == 40 and not syn.train.present.all()
    assert len(load_data("synthetic-sparse:24").train) == 18
    with pytest.raises(ValueError, match="unknown setting"):
        load_data("synthetic-sparse:size=3")


# -- ROSMAP through the TCGA-style tokeniser -------------------------------------------------------------
def test_rosmap_as_three_tokenised_tabular_modalities():
    if not (SHARED / "rosmap").is_dir():
        pytest.skip("shared ROSMAP data not available")
    from fusioncore.data.dataset import to_batch
    from fusioncore.data.mogonet import load_mogonet

    splits = load_mogonet(SHARED / "rosmap")
    assert len(splits.schema.modalities) == 3
    model = fc.create_model("mca", splits.schema, dim=8, depth=1, heads=1, dim_head=8, tokens_per_channel=1).eval()
    assert model.token_counts == (200, 200, 200) and len(model.channel_names) == 4
    batch = to_batch(apply_predrop(splits.test, 0.4, seed=0), None, "cpu", np.arange(4))
    with torch.no_grad():
        out = model(batch)
    assert torch.isfinite(out.logits).all() and out.embeddings["fusion"].shape == (4, 8)
