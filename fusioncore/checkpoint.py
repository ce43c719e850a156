"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ ``metrics.json``), loaded.

No pickle anywhere: hyper-parameters, schema, preprocessing statistics and training recipe are
JSON; weights are safetensors. Loading validates every file and names what is wrong, because a
checkpoint is also something users upload to the dashboard. Loading rebuilds the model through
the registry, so this module sits above it; the writer needs no registry and is
:mod:`fusioncore.checkpoint_writer` (re-exported here: ``save_checkpoint``, the file names).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .atomic_folder import leftover_hint
from .checkpoint_writer import CHECKPOINT_FILES, CONFIG_FILE, FORMAT_VERSION, METRICS_FILE, WEIGHTS_FILE, save_checkpoint
from .config import TrainConfig, from_jsonable, schema_from_json
from .data.preprocessing import MinMaxScaler, preprocessing_from_json
from .device import select_device
from .registry import get_method

__all__ = ["CHECKPOINT_FILES", "CONFIG_FILE", "FORMAT_VERSION", "METRICS_FILE", "WEIGHTS_FILE", "CheckpointError",
           "checkpoint_hash", "load", "read_config", "save_checkpoint", "weights_nbytes"]


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded; the message says which file and why."""


#: A ``config.json`` above this size is refused unread (100,000 feature names plus their scaling
#: statistics take about 10 MB).
MAX_CONFIG_BYTES = 64 * 1024**2
#: Dimensions of a modality's per-sample shape, by kind.
SHAPE_RANK = {"tabular": 1, "image": 3, "sequence": 2}
#: torch dtype -> the name safetensors gives it in a file's header.
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                      torch.uint8: "U8", torch.bool: "BOOL"}


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed (every number must be finite)")


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of checkpoint folder ``path``, its top level and schema validated."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoint folder (expected a folder with {CONFIG_FILE} and "
                              f"{WEIGHTS_FILE}){leftover_hint(folder)}")
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: missing; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        size = cfg_path.stat().st_size
        raw = cfg_path.read_bytes() if size <= MAX_CONFIG_BYTES else None
    except OSError as err:
        raise CheckpointError(f"{cfg_path}: cannot be read ({err.strerror or err})") from err
    if raw is None:
        raise CheckpointError(f"{cfg_path}: {size / 1e6:.1f} MB, more than the {MAX_CONFIG_BYTES / 1e6:.0f} MB "
                              "a checkpoint's config may have (refused unread)")
    try:
        config = json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({err})") from err
    except ValueError as err:  # NaN / Infinity
        raise CheckpointError(f"{cfg_path}: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: expected a JSON object at the top level")
    for key in ("format_version", "method", "model", "schema"):
        if key not in config:
            raise CheckpointError(f"{cfg_path}: missing field {key!r}")
    if config["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: format_version {config['format_version']!r} is not supported (this fusioncore reads {FORMAT_VERSION})"
        )
    _check_schema_json(config["schema"], f"{cfg_path}: schema")
    return config


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_schema_json(schema: Any, where: str) -> None:
    """Refuse a schema whose shapes are not positive integers of the right rank, or whose names clash."""
    if not isinstance(schema, dict) or not isinstance(schema.get("modalities"), list) or not schema["modalities"]:
        raise CheckpointError(f"{where}: expected an object with a non-empty 'modalities' list")
    for i, mod in enumerate(schema["modalities"]):
        at = f"{where}.modalities[{i}]"
        if not isinstance(mod, dict):
            raise CheckpointError(f"{at}: expected an object with name, kind and shape")
        missing = [k for k in ("name", "kind", "shape") if k not in mod]
        if missing:
            raise CheckpointError(f"{at}: missing field(s) {missing} (expected name, kind, shape[, features])")
        kind, shape = mod["kind"], mod["shape"]
        at = f"{at} ({mod['name']!r})"
        if kind not in SHAPE_RANK:
            raise CheckpointError(f"{at}: kind {kind!r} is not one of {', '.join(SHAPE_RANK)}")
        rank = SHAPE_RANK[kind]
        if not isinstance(shape, list) or len(shape) != rank or not all(_is_positive_int(s) for s in shape):
            raise CheckpointError(f"{at}: shape {shape!r} must be {rank} positive integer(s) for a {kind} modality "
                                  "(a negative or zero dimension is not a model)")
        features = mod.get("features", [])
        if kind == "tabular" and features and len(features) != shape[0]:
            raise CheckpointError(f"{at}: {len(features)} feature names for shape {shape}")
    classes = schema.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or len({str(c) for c in classes}) != len(classes):
        raise CheckpointError(f"{where}.classes: expected at least 2 distinct class names, got {classes!r}")


def _check_preprocessing(pre: dict[str, Any], schema, where: str) -> None:
    """Every modality has its transform, each min-max statistic fits its modality and is ordered."""
    if not pre:
        return  # a checkpoint trained on data scaled by the user
    names = schema.modality_names
    unknown = [n for n in pre if n not in names]
    missing = [n for n in names if n not in pre]
    if unknown or missing:
        raise CheckpointError(f"{where}: entries {sorted(pre)} do not match the schema's modalities {names} "
                              f"(unknown: {unknown}; missing: {missing}); was a key renamed?")
    for name, transform in pre.items():
        if not isinstance(transform, MinMaxScaler):
            continue
        d = schema.modality(name).shape[-1]
        lo, hi = transform.minimum, transform.maximum
        for label, stat in (("min", lo), ("max", hi)):
            if stat.ndim != 1 or stat.shape[0] != d:
                raise CheckpointError(f"{where}.{name}.{label}: {stat.size} values for a modality of {d} features")
            if not np.isfinite(stat).all():
                raise CheckpointError(f"{where}.{name}.{label}: holds NaN or infinite values")
        inverted = np.flatnonzero(lo > hi)
        if inverted.size:
            j = int(inverted[0])
            raise CheckpointError(f"{where}.{name}: min > max for {inverted.size} feature(s), e.g. feature {j} "
                                  f"(min {lo[j]:g}, max {hi[j]:g}); the statistics are corrupt")


def _parse_config(config: dict[str, Any], entry, cfg_path: Path):
    """(model config, schema, preprocessing, train config, class weights) of a read ``config.json``."""
    try:
        schema = schema_from_json(config["schema"])
        model_config = from_jsonable(entry.config_cls, config["model"], where=f"{cfg_path}: model")
        preprocessing = preprocessing_from_json(config.get("preprocessing") or {})
        train = from_jsonable(TrainConfig, config["train"], where=f"{cfg_path}: train") if config.get("train") else None
        weights = config.get("class_weights")
        class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{cfg_path}: {err}") from err
    _check_preprocessing(preprocessing, schema, f"{cfg_path}: preprocessing")
    if class_weights is not None and (class_weights.shape != (schema.n_classes,) or not bool((class_weights >= 0).all())):
        raise CheckpointError(f"{cfg_path}: class_weights must be {schema.n_classes} non-negative numbers, got {weights!r}")
    return model_config, schema, preprocessing, train, class_weights


def _prepare(folder: Path):
    """``config.json`` read and validated, and the model sized on the meta device (nothing allocated).

    Returns (config, registry entry, parsed config parts, meta model).
    """
    from .budget import check_model_size

    config = read_config(folder)
    cfg_path = folder / CONFIG_FILE
    try:
        entry = get_method(config["method"])
    except ValueError as err:
        raise CheckpointError(f"{cfg_path}: {err}") from err
    parsed = _parse_config(config, entry, cfg_path)
    try:
        meta = check_model_size(entry.model_cls, parsed[0], parsed[1])
    except ValueError as err:
        raise CheckpointError(f"{cfg_path}: {err}") from err
    return config, entry, parsed, meta


def weights_nbytes(path: str | Path) -> int:
    """The bytes of tensor data ``model.safetensors`` must hold, from ``config.json`` alone.

    Lets an archive's weights be extracted with a cap that fits the model (see
    :mod:`fusioncore.inspect.uploads`). Raises :class:`CheckpointError` like :func:`load`.
    """
    from .budget import model_size

    return model_size(_prepare(Path(path))[3]).nbytes


def load(path: str | Path, device: str | torch.device | None = "cpu"):
    """Load a checkpoint folder into a ready-to-use model (eval mode) on ``device``.

    ``device="auto"`` picks CUDA when available. Predictions are bit-identical to those of the
    model that was saved (same device and dtype). Before any weight is allocated, the model is
    sized on the meta device (:mod:`fusioncore.budget`) and every tensor's name, shape and dtype
    in the weights file's header is checked against it, so a hand-edited config cannot make
    the loader allocate what the file does not hold.
    """
    folder = Path(path)
    config, entry, (model_config, schema, preprocessing, train, class_weights), meta = _prepare(folder)
    _check_weights_header(folder / WEIGHTS_FILE, meta.state_dict())
    model = entry.model_cls(model_config, schema)
    model.preprocessing = preprocessing
    if train is not None:
        model.train_config = train
    if class_weights is not None:
        model.class_weights = class_weights
    _load_weights(model, folder / WEIGHTS_FILE)
    model.checkpoint_path = folder
    model.checkpoint_extra = config.get("extra") or {}
    return model.to(select_device(device)).eval()


def _check_weights_header(weights_path: Path, expected: dict[str, torch.Tensor]) -> None:
    """Compare the safetensors header (names, shapes, dtypes; no tensor is read) with ``expected``."""
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing; a checkpoint folder needs {WEIGHTS_FILE}")
    try:
        with safe_open(str(weights_path), framework="pt") as file:
            found = {k: (tuple(file.get_slice(k).get_shape()), file.get_slice(k).get_dtype()) for k in file.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from err
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path}: weights do not match the model in config.json "
            f"(missing: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"unexpected: {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    for key, (shape, dtype) in found.items():
        want = expected[key]
        if shape != tuple(want.shape):
            raise CheckpointError(f"{weights_path}: tensor {key!r} has shape {shape}, config.json implies {tuple(want.shape)}")
        if dtype != SAFETENSORS_DTYPES.get(want.dtype):
            raise CheckpointError(f"{weights_path}: tensor {key!r} is stored as {dtype}, the model expects "
                                  f"{SAFETENSORS_DTYPES.get(want.dtype, want.dtype)}")


def _load_weights(model, weights_path: Path) -> None:
    """Read the weights into ``model``; names and shapes were checked by :func:`_check_weights_header`."""
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from err
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{weights_path}: tensor(s) {bad[:5]} hold NaN or infinite values; the weights are "
                              "corrupt (save or train the checkpoint again)")
    model.load_state_dict(state, strict=True)


def checkpoint_hash(path: str | Path) -> str:
    """SHA-256 over ``config.json`` and ``model.safetensors`` (provenance records), read in chunks."""
    folder = Path(path)
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name}: missing; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        with open(folder / name, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
