"""Training recipes: the default fits the modality kinds, ``paper`` is the published recipe, the
validation split is stratified / seeded / disjoint from test and stored in the checkpoint, early
stopping restores the best weights, and bad options are refused naming the option."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.cli import main
from fusioncore.config import DataSchema, ModalitySpec, SelectionConfig, TrainConfig
from fusioncore.data.dataset import DatasetSplits
from fusioncore.registry import get_recipe
from fusioncore.training import fit
from fusioncore.training.loop import _postfix
from fusioncore.training.selection import EpochSelector, holdout_split
from fusioncore.training.recipes import check_train_options

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_tabular_dataset  # noqa: E402
from doc_layouts import write_mogonet  # noqa: E402

TABULAR = DataSchema((ModalitySpec("a", "tabular", (4,)), ModalitySpec("b", "tabular", (3,))), ("x", "y"))
IMAGE = DataSchema((ModalitySpec("img", "image", (3, 32, 32)), ModalitySpec("a", "tabular", (4,))), ("x", "y"))


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


# -- which recipe -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", fc.list_models())
def test_paper_recipe_is_the_published_registry_recipe(method):
    schema = IMAGE if "image" in fc.get_method(method).supports else TABULAR
    paper = get_recipe(method, schema, "paper")
    assert paper.train == fc.get_method(method).train_defaults
    assert paper.selection is None and paper.model_params == {}


@pytest.mark.parametrize("method", [m for m in fc.list_models() if "image" in fc.get_method(m).supports])
def test_default_recipe_on_images_is_mini_batch_and_short(method):
    recipe = get_recipe(method, IMAGE)
    assert recipe.name == "default" and recipe.selection is not None
    assert recipe.train.batch_size is not None and recipe.train.batch_size <= 64
    assert recipe.train.epochs <= 40


def test_mmdynamics_default_follows_the_modality_kinds():
    published = fc.get_method("mmdynamics").train_defaults
    tables = get_recipe("mmdynamics", TABULAR)
    assert tables.train == published and tables.model_params == {}  # the published optimisation, epoch picked on validation
    assert tables.selection is not None and tables.selection.min_epochs == 0
    images = get_recipe("mmdynamics", IMAGE)
    assert images.train.batch_size == 32 and images.train.scheduler == "cosine" and images.train.lr == 2e-3
    assert 24 <= images.train.epochs <= 40
    config = dataclasses.replace(fc.get_method("mmdynamics").config_cls(), **images.model_params)
    assert config.image_gate_fill == "white" and config.image_gate_training == "decoupled"
    # no epoch is selected before the sparsity ramp has run its course
    assert images.selection.min_epochs == config.sparsity_warmup_epochs + config.sparsity_ramp_epochs


def test_unknown_recipe_is_refused_by_name():
    with pytest.raises(ValueError, match="--recipe 'fast'.*default, paper"):
        get_recipe("mmdynamics", TABULAR, "fast")


# -- the validation split ----------------------------------------------------------------------
def test_validation_split_is_stratified_seeded_and_a_partition_of_train():
    data = make_tabular_dataset(n=200, seed=3)
    train, val = holdout_split(data, 0.2, seed=5)
    assert set(train.sample_ids) | set(val.sample_ids) == set(data.sample_ids)
    assert not set(train.sample_ids) & set(val.sample_ids)
    for label in (0, 1):
        share = (val.labels == label).sum() / (data.labels == label).sum()
        assert share == pytest.approx(0.2, abs=0.01)
    again = holdout_split(data, 0.2, seed=5)[1]
    other = holdout_split(data, 0.2, seed=6)[1]
    assert again.sample_ids == val.sample_ids and other.sample_ids != val.sample_ids


def test_a_single_sample_class_stays_in_training():
    data = make_tabular_dataset(n=20, seed=0)
    labels = data.labels.copy()
    labels[:] = 0
    labels[7] = 1
    data = dataclasses.replace(data, labels=labels)
    train, val = holdout_split(data, 0.2, seed=0)
    assert "s007" in train.sample_ids and (val.labels == 0).all()


def test_cli_default_recipe_stores_the_validation_ids_and_never_uses_test(tmp_path, capsys):
    folder = write_mogonet(tmp_path / "ds", n_tr=40, n_te=12)
    code, record, err = _run(capsys, "train", "--method", "mmdynamics", "--data", f"mogonet:{folder}", "--out",
                             tmp_path / "ck", "--epochs", 6, "--param", "hidden_dim=8", "--quiet", "--seed", 3)
    assert code == 0, err
    extra = json.loads((tmp_path / "ck" / "config.json").read_text())["extra"]["recipe"]
    assert extra["name"] == "default" and extra["epoch"] == "validation-selected"
    from fusioncore.data.mogonet import load_mogonet

    data = load_mogonet(folder)
    _, expected = holdout_split(data.train, extra["selection"]["fraction"], seed=3)
    assert extra["validation_ids"] == list(expected.sample_ids)
    assert not set(extra["validation_ids"]) & set(data.test.sample_ids)
    assert 1 <= extra["selected_epoch"] <= extra["stopped_epoch"] <= 6
    assert record["recipe"]["selected_epoch"] == extra["selected_epoch"]


def test_cli_paper_recipe_is_the_published_procedure_and_says_so(tmp_path, capsys):
    folder = write_mogonet(tmp_path / "ds", n_tr=20, n_te=8)
    code, _, err = _run(capsys, "train", "--method", "mmdynamics", "--data", f"mogonet:{folder}", "--out",
                        tmp_path / "ck", "--recipe", "paper", "--epochs", 3, "--param", "hidden_dim=8", "--quiet")
    assert code == 0, err
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    published = dataclasses.replace(fc.get_method("mmdynamics").train_defaults, epochs=3, seed=0)
    assert config["train"] == fc.config.to_jsonable(published)
    assert config["extra"]["recipe"]["name"] == "paper" and config["extra"]["recipe"]["selection"] is None
    assert config["extra"]["recipe"]["epoch"] == "final" and config["extra"]["recipe"]["trained_epochs"] == 3


# -- early stopping ----------------------------------------------------------------------------
def _model(data, seed=0):
    torch.manual_seed(seed)
    return fc.create_model("mmdynamics", data.schema, hidden_dim=8)


def test_early_stopping_restores_the_best_weights():
    """Validation labels are the training labels flipped: every epoch of learning makes the
    validation loss worse, so epoch 1 must be selected and its weights come back."""
    data = make_tabular_dataset(n=48, seed=1)
    flipped = dataclasses.replace(data, labels=1 - data.labels)
    cfg = TrainConfig(epochs=12, lr=5e-2, scheduler="none", seed=0)
    result = fit(_model(data), data, cfg, validation=flipped, selection=SelectionConfig(patience=3), progress=False)
    assert result.selection["selected_epoch"] == 1
    assert result.selection["early_stopped"] and result.selection["stopped_epoch"] == 4
    losses = [h["val"]["loss"] for h in result.history]
    assert losses[0] == min(losses) and len(result.history) == 4
    first = fit(_model(data), data, dataclasses.replace(cfg, epochs=1), progress=False).model.state_dict()
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, first[key]), key


def test_min_epochs_delays_selection_and_stopping():
    selector = EpochSelector(SelectionConfig(patience=1, min_epochs=3))
    model = torch.nn.Linear(2, 1)
    assert not selector.update(1, {"loss": 0.1}, model) and selector.best_epoch is None
    assert not selector.update(3, {"loss": 0.5}, model) and selector.best_epoch == 3
    assert selector.update(4, {"loss": 0.6}, model)


def test_progress_bar_shows_the_validation_score():
    selector = EpochSelector(SelectionConfig())
    selector.best_epoch = 2
    shown = _postfix({"loss": 0.5, "val": {"loss": 0.4, "acc": 0.75, "balanced_acc": 0.7}}, selector)
    assert shown == {"loss": "0.5000", "val_loss": "0.4000", "val_acc": "0.750", "best": "2"}


def test_resumed_run_selects_as_an_uninterrupted_one(tmp_path):
    data = make_tabular_dataset(n=48, seed=2)
    train, val = holdout_split(data, 0.25, seed=0)
    cfg = TrainConfig(epochs=6, lr=1e-2, scheduler="none", seed=0)
    sel = SelectionConfig(patience=0)
    whole = fit(_model(data), train, cfg, validation=val, selection=sel, progress=False)

    class Stop(Exception):
        pass

    def interrupt(step, record):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        fit(_model(data), train, cfg, validation=val, selection=sel, progress=False, state_dir=tmp_path / "st",
            state_every=1, on_step=interrupt)
    resumed = fit(_model(data), train, cfg, validation=val, selection=sel, progress=False, state_dir=tmp_path / "st",
                  state_every=1, resume=True)
    assert resumed.selection["selected_epoch"] == whole.selection["selected_epoch"]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: expected a whole number of epochs >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size: expected a whole number of samples >= 1, got 0"),
    (["--modality-dropout", "1.5"], "--modality-dropout: expected a probability in [0, 1), got 1.5"),
    (["--lr", "0"], "--lr: expected a finite number > 0, got 0"),
    (["--recipe", "fast"], "--recipe: invalid choice: 'fast'"),
    (["--patience", "-1"], "--patience: expected a whole number of epochs >= 0, got -1"),
    (["--train-param", "epochs=0"], "--epochs 0: expected a whole number of epochs >= 1"),
    (["--train-param", "modality_dropout=1.0"], "--modality-dropout 1.0: expected a probability in [0, 1)"),
    (["--val-fraction", "0.7"], "--val-fraction 0.7: expected a share of the training split in (0, 0.5)"),
    (["--recipe", "paper", "--patience", "3"], "recipe 'paper' keeps the final epoch"),
])
def test_bad_training_options_exit_2_naming_the_option(tmp_path, capsys, argv, message):
    folder = write_mogonet(tmp_path / "ds", n_tr=12, n_te=6)
    try:
        code = main(["train", "--method", "mmdynamics", "--data", f"mogonet:{folder}", "--out", str(tmp_path / "o"),
                     "--quiet", *argv])
    except SystemExit as exit_:  # argparse refuses before the command runs
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and not (tmp_path / "o" / "model.safetensors").exists()


def test_check_train_options_accepts_the_registry_recipes():
    for method in fc.list_models():
        schema = IMAGE if "image" in fc.get_method(method).supports else TABULAR
        for name in ("default", "paper"):
            check_train_options(get_recipe(method, schema, name).train)


def test_data_with_its_own_validation_split_uses_it(tmp_path):
    from fusioncore.training.recipes import validation_split

    data = make_tabular_dataset(n=60)
    splits = DatasetSplits(train=data.subset(np.arange(40)), test=data.subset(np.arange(40, 50)),
                           val=data.subset(np.arange(50, 60)))
    train, val = validation_split(splits, SelectionConfig(), seed=0)
    assert train.sample_ids == splits.train.sample_ids and val.sample_ids == splits.val.sample_ids


def test_refit_trains_the_whole_training_split_for_the_selected_epochs():
    from fusioncore.config import Recipe
    from fusioncore.training.recipes import train_by_recipe

    data = make_tabular_dataset(n=60, seed=4)
    splits = DatasetSplits(train=data.subset(np.arange(48)), test=data.subset(np.arange(48, 60)))
    cfg = TrainConfig(epochs=8, lr=1e-2, scheduler="step", step_size=3, gamma=0.5, seed=0)
    recipe = Recipe("default", cfg, {}, SelectionConfig(fraction=0.25, patience=2, refit=True))
    result, record = train_by_recipe(_model(data), splits, recipe, cfg, progress=False)
    chosen = record["selected_epoch"]
    assert record["n_train"] == 48 and record["epoch"].startswith("refit") and len(result.history) == chosen
    again = fit(_model(data), splits.train, cfg, stop_after_epochs=chosen, progress=False).model.state_dict()
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, again[key]), key
