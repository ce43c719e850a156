"""Short seeded training runs that cover every branch of ``fit`` (full batch / mini-batch,
step / cosine schedule, class weights, modality dropout, evaluation during training, epoch
selection with early stopping, a stopped-early refit, step callbacks), and a summary of
each run's outcome: its history, step count, selection and final weights.

``test_fit_reference.py`` compares these summaries with the ones recorded from the loop before
it became :class:`~fusioncore.training.loop.TrainingRun` (``fit_reference.json``), so the
refactoring is checked to change no number. Run as a script to print the summaries
(``python tests/training/fit_scenarios.py > summaries.json``) and compare two versions exactly
(the sha256 of the weights is bit-exact on one machine and thread count).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fusioncore as fc  # noqa: E402
from conftest import make_tabular_dataset  # noqa: E402
from fusioncore.config import SelectionConfig  # noqa: E402
from fusioncore.training import fit  # noqa: E402


def weights_summary(model: torch.nn.Module) -> dict[str, Any]:
    """sha256 of every tensor's bytes (exact) and float64 sums (compared with a tolerance)."""
    digest = hashlib.sha256()
    total, squares = 0.0, 0.0
    for key, value in sorted(model.state_dict().items()):
        array = value.detach().cpu().contiguous().numpy()
        digest.update(key.encode())
        digest.update(array.tobytes())
        as_float = array.astype(np.float64)
        total += float(as_float.sum())
        squares += float((as_float ** 2).sum())
    return {"sha256": digest.hexdigest(), "sum": total, "sum_sq": squares}


def _full_batch_mmdynamics() -> dict:
    data = make_tabular_dataset(n=36, dims=(6, 5), n_classes=3, seed=3, missing=0.2)
    held = make_tabular_dataset(n=12, dims=(6, 5), n_classes=3, seed=4)
    torch.manual_seed(4)
    model = fc.create_model("mmdynamics", data.schema, hidden_dim=8, class_weighted=True)
    cfg = fc.TrainConfig(epochs=6, lr=1e-2, scheduler="step", step_size=2, gamma=0.5, seed=1, eval_every=3)
    return {"model": model, "data": data, "cfg": cfg, "options": {"eval_data": held}}


def _minibatch_early() -> dict:
    data = make_tabular_dataset(n=44, missing=0.3, seed=1)
    torch.manual_seed(0)
    model = fc.create_model("early", data.schema, hidden_dim=8, head_dim=8, dropout=0.3)
    cfg = fc.TrainConfig(epochs=3, lr=1e-2, batch_size=8, optimizer="adamw", scheduler="cosine", warmup_steps=3,
                         grad_clip=0.5, modality_dropout=0.3, seed=2)
    return {"model": model, "data": data, "cfg": cfg, "options": {}}


def _selection_late() -> dict:
    data = make_tabular_dataset(n=40, seed=5)
    validation = make_tabular_dataset(n=14, seed=6)
    torch.manual_seed(2)
    model = fc.create_model("late", data.schema, hidden_dim=8)
    cfg = fc.TrainConfig(epochs=40, lr=5e-2, batch_size=10, scheduler="none", seed=3)
    selection = SelectionConfig(fraction=0.2, monitor="loss", patience=3, min_epochs=2)
    return {"model": model, "data": data, "cfg": cfg, "options": {"validation": validation, "selection": selection}}


def _stop_after_hybrid() -> dict:
    data = make_tabular_dataset(n=30, dims=(4, 3), seed=7, missing=0.1)
    torch.manual_seed(5)
    model = fc.create_model("hybrid", data.schema, hidden_dim=8)
    cfg = fc.TrainConfig(epochs=5, lr=1e-2, batch_size=7, scheduler="cosine", modality_dropout=0.2, seed=4)
    return {"model": model, "data": data, "cfg": cfg, "options": {"stop_after_epochs": 2}}


SCENARIOS: dict[str, Callable[[], dict]] = {
    "full_batch_mmdynamics": _full_batch_mmdynamics,
    "minibatch_early": _minibatch_early,
    "selection_late": _selection_late,
    "stop_after_hybrid": _stop_after_hybrid,
}


def run_scenario(name: str) -> dict[str, Any]:
    """Train scenario ``name`` and summarise the outcome (JSON-able)."""
    setup = SCENARIOS[name]()
    steps: list[tuple[int, float]] = []
    result = fit(setup["model"], setup["data"], setup["cfg"], progress=False,
                 on_step=lambda step, record: steps.append((step, record["loss"])), **setup["options"])
    selection = dict(result.selection) if result.selection else None
    return {
        "history": result.history,
        "steps": result.steps,
        "step_losses": steps,
        "selection": selection,
        "class_weights": None if getattr(result.model, "class_weights", None) is None
        else [float(w) for w in result.model.class_weights],
        "weights": weights_summary(result.model),
        "training": result.model.training,
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps({name: run_scenario(name) for name in SCENARIOS}, indent=1, sort_keys=True))
