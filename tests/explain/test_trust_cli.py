"""``fusioncore explain trust`` on the bundled omics demo: trust.json records, per-sample CSVs,
the run record and figures' data; bad options get a clear error."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fusioncore.cli import main
from fusioncore.demo import demo_checkpoint


@pytest.fixture(scope="module")
def trust_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trust")
    code = main(["explain", "trust", "--checkpoint", str(demo_checkpoint("mmdynamics_omics")), "--data", "demo:omics",
                 "--max-samples", "12", "--stages", "2", "--figure-formats", "csv,json", "--out", str(out)])
    assert code == 0
    return out


def test_trust_json_lists_a_record_per_explanation(trust_run):
    records = json.loads((trust_run / "trust.json").read_text())
    kinds = {(r["explanation"], r["modality"]) for r in records}
    assert kinds == {(k, m) for k in ("gates", "ig") for m in ("mrna", "methylation", "noisy")}
    for r in records:
        assert set(r["deletion_gap"]) == {"mean", "low", "high"}
        assert r["verdict"] in ("trustworthy", "doubtful", "untrustworthy") and r["why"]
        assert 0 <= r["randomisation_similarity"] <= 1 and len(r["randomisation_curve"]) == 2
    mrna = next(r for r in records if (r["explanation"], r["modality"]) == ("gates", "mrna"))
    assert mrna["recovery_auroc"] > 0.9  # the demo's planted truth is scored automatically
    run = json.loads((trust_run / "trust_run.json").read_text())
    assert run["n_samples"] == 12 and run["planted_truth"] and run["settings"]["n_stages"] == 2
    assert run["thresholds"]["randomisation_pass"] < run["thresholds"]["randomisation_fail"]


def test_a_csv_per_sample_and_the_figure_data(trust_run):
    samples = sorted((trust_run / "samples").glob("*.csv"))
    assert len(samples) == 12
    frame = pd.read_csv(samples[0])
    assert {"explanation", "modality", "verdict", "deletion_gap", "randomisation_similarity", "why"} <= set(frame.columns)
    assert len(frame) == 6
    table = pd.read_csv(trust_run / "trust.csv")
    assert len(table) == 6 and (trust_run / "trust_gaps__mmdynamics.csv").is_file()
    assert (trust_run / "trust_randomisation__mmdynamics.json").is_file()


def test_bad_options_are_named(tmp_path, capsys):
    ckpt = str(demo_checkpoint("mmdynamics_omics"))
    assert main(["explain", "trust", "--checkpoint", ckpt, "--data", "demo:omics", "--max-samples", "0", "--out", str(tmp_path)]) == 2
    assert "--max-samples" in capsys.readouterr().err
    assert main(["explain", "trust", "--checkpoint", ckpt, "--data", "demo:omics", "--figure-formats", "gif", "--out", str(tmp_path)]) == 2
    assert "--figure-formats" in capsys.readouterr().err
