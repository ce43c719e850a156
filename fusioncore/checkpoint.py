"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ ``metrics.json``).

No pickle anywhere: hyper-parameters, schema, preprocessing statistics and training recipe are
JSON; weights are safetensors. Loading validates every file and names what is wrong, because a
checkpoint is also something users upload to the dashboard.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import TrainConfig, from_jsonable, schema_from_json, schema_to_json, to_jsonable
from .data.preprocessing import preprocessing_from_json, preprocessing_to_json
from .device import select_device
from .registry import get_method

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded; the message says which file and why."""


def save_checkpoint(model, path: str | Path, *, metrics: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``model`` to folder ``path`` (created if needed) and return the folder."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "method": model.method,
        "model": to_jsonable(model.config),
        "schema": schema_to_json(model.schema),
        "preprocessing": preprocessing_to_json(model.preprocessing),
        "train": None if model.train_config is None else to_jsonable(model.train_config),
        "class_weights": None if model.class_weights is None else model.class_weights.tolist(),
        "extra": extra or {},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "method": model.method})
    _canonicalize_header(folder / WEIGHTS_FILE)
    if metrics is not None:
        (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    elif (folder / METRICS_FILE).is_file():
        (folder / METRICS_FILE).unlink()  # an older run's metrics must not sit beside new weights
    return folder


def _canonicalize_header(path: Path) -> None:
    """Rewrite a safetensors header with its ``__metadata__`` keys sorted, in place.

    The safetensors writer emits the metadata map in hash order, which varies between runs, so
    two identical models could differ in bytes; sorting makes a saved checkpoint reproducible to
    the byte (the demo assets rely on it). Tensor entries, offsets and data are unchanged and the
    header keeps its length, so the file stays valid.
    """
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header["__metadata__"].items())),
                  **{k: v for k, v in header.items() if k != "__metadata__"}}
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > n:  # cannot happen for a reordering of the same JSON; refuse rather than corrupt
        raise ValueError(f"{path}: canonical header is longer than the original ({len(text)} > {n})")
    path.write_bytes(raw[:8] + text + b" " * (n - len(text)) + raw[8 + n :])


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of checkpoint folder ``path``, validated at the top level."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoint folder (expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: missing; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({err})") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: expected a JSON object at the top level")
    for key in ("format_version", "method", "model", "schema"):
        if key not in config:
            raise CheckpointError(f"{cfg_path}: missing field {key!r}")
    if config["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: format_version {config['format_version']!r} is not supported (this fusioncore reads {FORMAT_VERSION})"
        )
    return config


def load(path: str | Path, device: str | torch.device | None = "cpu"):
    """Load a checkpoint folder into a ready-to-use model (eval mode) on ``device``.

    ``device="auto"`` picks CUDA when available. Predictions are bit-identical to those of the
    model that was saved (same device and dtype).
    """
    folder = Path(path)
    config = read_config(folder)
    cfg_path = folder / CONFIG_FILE
    try:
        entry = get_method(config["method"])
    except ValueError as err:
        raise CheckpointError(f"{cfg_path}: {err}") from err
    try:
        schema = schema_from_json(config["schema"])
        model_config = from_jsonable(entry.config_cls, config["model"], where=f"{cfg_path}: model")
        model = entry.model_cls(model_config, schema)
        model.preprocessing = preprocessing_from_json(config.get("preprocessing") or {})
        if config.get("train"):
            model.train_config = from_jsonable(TrainConfig, config["train"], where=f"{cfg_path}: train")
        if config.get("class_weights") is not None:
            model.class_weights = torch.tensor(config["class_weights"], dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{cfg_path}: {err}") from err
    _load_weights(model, folder / WEIGHTS_FILE)
    model.checkpoint_path = folder
    model.checkpoint_extra = config.get("extra") or {}
    return model.to(select_device(device)).eval()


def _load_weights(model, weights_path: Path) -> None:
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing; a checkpoint folder needs {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path}: weights do not match the model in config.json "
            f"(missing: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"unexpected: {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{weights_path}: tensor {key!r} has shape {tuple(value.shape)}, config.json implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=True)


def checkpoint_hash(path: str | Path) -> str:
    """SHA-256 over ``config.json`` and ``model.safetensors`` (provenance records)."""
    folder = Path(path)
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name}: missing; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()
