"""The steps of :class:`TrainingRun`, each called alone: the options it refuses, what ``prepare``
sets up, one step, one epoch, the end of an epoch with epoch selection, a state written and
resumed, and the result -- and that calling the steps one by one is ``fit``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.config import SelectionConfig
from fusioncore.training import fit
from fusioncore.training.loop import RunSettings, StateCheckpoints, TrainingRun, Validation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_tabular_dataset  # noqa: E402


def _model(data, method="early", seed=0, **params):
    torch.manual_seed(seed)
    return fc.create_model(method, data.schema, hidden_dim=8, **params)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


QUIET = RunSettings(progress=False)


def test_state_options_and_labels_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="state_every must be >= 0"):
        StateCheckpoints(tmp_path, every=-1)
    with pytest.raises(ValueError, match="need a state_dir"):
        StateCheckpoints(None, resume=True)
    data = make_tabular_dataset(n=10)
    unlabelled = type(data)(schema=data.schema, features=data.features, present=data.present, labels=None,
                            sample_ids=data.sample_ids, source="no-labels.csv")
    with pytest.raises(ValueError, match="no-labels.csv has no labels"):
        TrainingRun(_model(data), unlabelled, fc.TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="needs both a validation split and a SelectionConfig"):
        fit(_model(data), data, fc.TrainConfig(epochs=1), validation=data, progress=False)


def test_prepare_sets_preprocessing_class_weights_and_the_schedule():
    data = make_tabular_dataset(n=30, n_classes=3, seed=2)
    model = _model(data, "mmdynamics", class_weighted=True)
    run = TrainingRun(model, data, fc.TrainConfig(epochs=4, batch_size=7, scheduler="cosine", lr=1e-2), settings=QUIET)
    run.prepare()
    assert set(model.preprocessing) == {"m0", "m1", "m2"} and model.train_config is run.train_config
    counts = data.class_counts()
    assert torch.allclose(model.class_weights, torch.tensor(counts.sum() / counts, dtype=torch.float32))
    assert run.full is None and run.steps_per_epoch == math.ceil(30 / 7) and run.total_steps == 4 * 5
    assert isinstance(run.optimizer, torch.optim.Adam) and run.per_step  # cosine steps per optimiser step
    assert run.global_step == 0 and run.history == [] and run.resumed_from is None

    full = TrainingRun(_model(data), data, fc.TrainConfig(epochs=3, scheduler="step"), settings=QUIET)
    full.prepare()
    assert full.full is not None and full.full.size == 30 and full.steps_per_epoch == 1 and not full.per_step


def test_one_step_updates_the_weights_and_the_epoch_sums():
    data = make_tabular_dataset(n=24)
    run = TrainingRun(_model(data), data, fc.TrainConfig(epochs=2, batch_size=8, lr=1e-2), settings=QUIET)
    run.prepare()
    before = _weights(run.model)
    record = run.train_step(0.0, np.arange(8))
    assert run.global_step == 1 and run.count == 1 and run.samples == 8
    assert record["loss"] > 0 and run.sums == record
    assert not _same(before, _weights(run.model))
    assert run.model.training_epoch == 0.0


def test_one_epoch_adds_one_history_entry_and_steps_an_epoch_schedule():
    data = make_tabular_dataset(n=24)
    cfg = fc.TrainConfig(epochs=4, lr=1e-2, scheduler="step", step_size=1, gamma=0.5)
    run = TrainingRun(_model(data), data, cfg, settings=QUIET)
    run.prepare()
    assert run.run_epoch(0) is False
    assert [e["epoch"] for e in run.history] == [1] and run.global_step == 1
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3)  # StepLR stepped after the epoch
    assert run.history[0]["loss"] == pytest.approx(run.sums["loss"] / run.count)


def test_end_of_epoch_scores_validation_and_stops_when_patience_runs_out():
    data = make_tabular_dataset(n=30, seed=3)
    validation = Validation(make_tabular_dataset(n=12, seed=4), SelectionConfig(patience=1))
    run = TrainingRun(_model(data), data, fc.TrainConfig(epochs=5, lr=1e-2), settings=QUIET, validation=validation)
    run.prepare()
    run.run_epoch(0)
    assert set(run.history[0]["val"]) == {"loss", "acc", "balanced_acc"} and run.selector.best_epoch == 1
    run.selector.best_score = -math.inf  # nothing can beat it now: the next epoch is stale
    assert run.run_epoch(1) is True and run.stop
    result = run.finish()
    assert result.selection["selected_epoch"] == 1 and result.selection["early_stopped"] is True
    assert _same(_weights(result.model), run.selector.best_weights) and not result.model.training


def test_steps_called_one_by_one_are_fit():
    data = make_tabular_dataset(n=30, missing=0.2, seed=5)
    cfg = fc.TrainConfig(epochs=3, lr=1e-2, batch_size=8, modality_dropout=0.2, scheduler="cosine", seed=3)
    reference = fit(_model(data, dropout=0.2), data, cfg, progress=False)
    run = TrainingRun(_model(data, dropout=0.2), data, cfg, settings=QUIET)
    run.prepare()
    for epoch in range(cfg.epochs):
        run.run_epoch(epoch)
    result = run.finish()
    assert result.history == reference.history and result.steps == reference.steps == 12
    assert _same(_weights(result.model), _weights(reference.model))


def test_a_state_saved_after_an_epoch_resumes_into_the_same_run(tmp_path):
    data = make_tabular_dataset(n=30, seed=6)
    cfg = fc.TrainConfig(epochs=3, lr=1e-2, batch_size=8, modality_dropout=0.3, scheduler="cosine", seed=1)
    reference = fit(_model(data, dropout=0.2), data, cfg, progress=False)
    first = TrainingRun(_model(data, dropout=0.2), data, cfg, settings=QUIET, states=StateCheckpoints(tmp_path / "s"))
    first.prepare()
    first.run_epoch(0)
    first.save_state(0, first.steps_per_epoch - 1, last=True)
    torch.manual_seed(123)  # the resumed process starts from other random states

    second = TrainingRun(_model(data, dropout=0.2, seed=9), data, cfg, settings=QUIET,
                         states=StateCheckpoints(tmp_path / "s", resume=True))
    second.prepare()
    assert (second.start_epoch, second.start_batch, second.global_step, second.resumed_from) == (1, 0, 4, 4)
    assert second.history == first.history
    for epoch in range(second.start_epoch, cfg.epochs):
        second.run_epoch(epoch)
    result = second.finish()
    assert result.history == reference.history and _same(_weights(result.model), _weights(reference.model))
