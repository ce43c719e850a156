"""Converting checkpoints of the official MM-dynamics code into fusioncore checkpoints.

The official code saves a plain ``state_dict`` (``torch.save(model.state_dict())``) with keys
``FeatureInforEncoder.{m}.clf.0.*`` (gates), ``FeatureEncoder.{m}.clf.0.*`` (encoders),
``TCPClassifierLayer.{m}.clf.0.*``, ``TCPConfidenceLayer.{m}.clf.0.*`` and
``MMClasifier.0.clf.0.*`` (fusion). It is read with ``torch.load(weights_only=True)`` only, so a
file that would need arbitrary code to unpickle is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from .config import override
from .data.dataset import DatasetSplits
from .registry import create_model, get_method
from .training.loop import fit_preprocessing

# official prefix -> (our attribute, per-modality?)
_MAP = {
    "FeatureInforEncoder": ("branches.{m}.gate", True),
    "FeatureEncoder": ("branches.{m}.encoder", True),
    "TCPClassifierLayer": ("tcp_classifiers.{m}", True),
    "TCPConfidenceLayer": ("confidences.{m}", True),
}


def official_to_fusioncore_keys(modality_names: list[str]) -> dict[str, str]:
    """Official state-dict key -> fusioncore key, for modalities in the official view order."""
    mapping = {}
    for i, name in enumerate(modality_names):
        for prefix, (ours, _) in _MAP.items():
            for p in ("weight", "bias"):
                mapping[f"{prefix}.{i}.clf.0.{p}"] = f"{ours.format(m=name)}.{p}"
    for p in ("weight", "bias"):
        mapping[f"MMClasifier.0.clf.0.{p}"] = f"fusion.{p}"
    return mapping


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a plain PyTorch state_dict loadable with weights_only=True ({err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a mapping of parameter names to tensors (a state_dict)")
    return state


def import_mmdynamics(state_dict_path: str | Path, splits: DatasetSplits, out: str | Path) -> Path:
    """Write a fusioncore checkpoint from an official MM-dynamics ``state_dict``.

    The data gives the schema (modalities in view order, feature and class names) and the
    train min/max statistics the official pipeline scales with.
    """
    state = read_state_dict(state_dict_path)
    schema = splits.schema
    mapping = official_to_fusioncore_keys(schema.modality_names)
    missing = sorted(set(mapping) - set(state))
    unexpected = sorted(set(state) - set(mapping))
    if missing or unexpected:
        raise ValueError(
            f"{state_dict_path}: keys do not match an MM-dynamics model with views {schema.modality_names} "
            f"(missing: {missing[:6]}; unexpected: {unexpected[:6]})"
        )
    hidden = state["FeatureEncoder.0.clf.0.weight"].shape[0]
    model = create_model("mmdynamics", schema, hidden_dim=int(hidden))
    ours = model.state_dict()
    converted = {}
    for key, target in mapping.items():
        if tuple(state[key].shape) != tuple(ours[target].shape):
            raise ValueError(
                f"{state_dict_path}: {key} has shape {tuple(state[key].shape)}, the data implies {tuple(ours[target].shape)}"
            )
        converted[target] = state[key].to(torch.float32)
    model.load_state_dict(converted, strict=True)
    model.preprocessing = fit_preprocessing(splits.train, "minmax")
    model.train_config = override(get_method("mmdynamics").train_defaults)
    return model.save(out, extra={"imported_from": str(state_dict_path)})
