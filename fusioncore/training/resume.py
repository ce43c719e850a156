"""Training-state checkpoints, so a killed run continues where it stopped (no pickle).

A training state is a folder with two files:

* ``state.safetensors`` -- every tensor: model weights (``model/<name>``), optimiser state
  (``optim/...``: Adam's moments and step counters), RNG states as uint8 tensors
  (``rng/...``: torch CPU and CUDA generators of every rank, NumPy's Mersenne-Twister keys,
  the modality-dropout generator);
* ``state.json`` -- everything else: position (epoch, batch within the epoch, optimiser step),
  the history so far, the scheduler's state, the optimiser's param-group settings and state
  *structure* (with ``{"__tensor__": key}`` where a tensor sits), the seed generator's state
  of the data order, and what the run was (method, model and training config, world size,
  sample count) so that resuming a different run is refused rather than silently mixed.

``torch.save`` would be simpler but unpickling runs arbitrary code; checkpoints travel
between machines and users, so we keep the same rule as model checkpoints. The folder is
written next to its final place and swapped in with renames (:mod:`fusioncore.atomic_folder`,
as model checkpoints), so a kill during the write leaves the previous state intact.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from ..atomic_folder import recover_interrupted, write_folder
from ..config import from_jsonable, to_jsonable
from .distributed import DistContext, all_gather_bytes

STATE_FORMAT = 1
STATE_JSON = "state.json"
STATE_TENSORS = "state.safetensors"


class ResumeError(ValueError):
    """A training state that cannot be resumed; the message names the file and the field."""


# --------------------------------------------------------------------------- nested <-> JSON + tensors
def encode_nested(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` (dicts, lists, tuples, scalars, tensors) as JSON, tensors moved into ``tensors``.

    Tuples and dicts whose keys are not plain strings (the optimiser's integer parameter ids)
    are tagged so :func:`decode_nested` rebuilds exactly the same Python structure.
    """
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):  # e.g. a confusion matrix in an eval record: stored as a list
        return encode_nested(obj.tolist(), prefix, tensors)
    if isinstance(obj, (bool, type(None), str)):
        return obj
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_nested(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode_nested(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        plain = all(isinstance(k, str) and not k.startswith("__") for k in obj)
        if plain:
            return {k: encode_nested(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {
            "__items__": [
                [encode_nested(k, f"{prefix}/key{i}", tensors), encode_nested(v, f"{prefix}/{k}", tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    raise ResumeError(f"{prefix}: cannot store a {type(obj).__name__} in a training state (no pickle)")


def decode_nested(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """Inverse of :func:`encode_nested`; ``where`` names the file in error messages."""
    if isinstance(obj, list):
        return [decode_nested(v, tensors, where) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            key = obj["__tensor__"]
            if key not in tensors:
                raise ResumeError(f"{where}: refers to tensor {key!r}, which {STATE_TENSORS} does not contain")
            return tensors[key]
        if "__tuple__" in obj:
            return tuple(decode_nested(v, tensors, where) for v in obj["__tuple__"])
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__items__" in obj:
            return {decode_nested(k, tensors, where): decode_nested(v, tensors, where) for k, v in obj["__items__"]}
        return {k: decode_nested(v, tensors, where) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- RNG states
def numpy_global_state() -> tuple[dict, torch.Tensor]:
    """NumPy's legacy global RNG: JSON part and the 624-word key as uint8 bytes."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    return meta, torch.from_numpy(np.ascontiguousarray(keys, dtype=np.uint32).view(np.uint8).copy())


def set_numpy_global_state(meta: dict, keys: torch.Tensor) -> None:
    words = keys.numpy().view(np.uint32)
    np.random.set_state((meta["name"], words, meta["pos"], meta["has_gauss"], meta["cached_gaussian"]))


# --------------------------------------------------------------------------- what the loop stores
def config_with_defaults(stored: Any, current: Any) -> Any:
    """A config stored in a training state, completed with the defaults of fields added since it
    was written (new fields default to the old behaviour), so an older state still resumes.
    Anything that does not parse is returned as it is and reported by ``check_same_run``."""
    if not isinstance(stored, dict):
        return stored
    try:
        return to_jsonable(from_jsonable(type(current), stored, "training state"))
    except (TypeError, ValueError):
        return stored


def data_fingerprint(sample_ids) -> str:
    """Short hash of the training sample ids (a resumed run must see the same samples)."""
    return hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()[:16]


def rng_snapshot(ctx: DistContext | None, device: torch.device, dropout_gen: torch.Generator, order_state: dict) -> dict[str, Any]:
    """Every random stream the loop depends on. Torch CPU/CUDA states are per rank (gathered)."""
    gather_ctx = ctx if ctx is not None else DistContext()
    snapshot: dict[str, Any] = {
        "torch_cpu": all_gather_bytes(torch.get_rng_state(), gather_ctx, device),
        "modality_dropout": dropout_gen.get_state(),
        "data_order": copy.deepcopy(order_state),
    }
    if device.type == "cuda":
        snapshot["torch_cuda"] = all_gather_bytes(torch.cuda.get_rng_state(device), gather_ctx, device)
    np_meta, np_keys = numpy_global_state()
    snapshot["numpy_global"] = {"meta": np_meta, "keys": np_keys}
    snapshot["python_random"] = random.getstate()
    return snapshot


def restore_rng(rng_state: dict, rank: int, device: torch.device, data_rng: np.random.Generator,
                dropout_gen: torch.Generator) -> None:
    """Put back every random stream of :func:`rng_snapshot` (this rank's torch states)."""

    def mine(states: list) -> torch.Tensor:
        return states[rank] if rank < len(states) else states[0]

    torch.set_rng_state(mine(rng_state["torch_cpu"]))
    if device.type == "cuda" and "torch_cuda" in rng_state:
        torch.cuda.set_rng_state(mine(rng_state["torch_cuda"]), device)
    dropout_gen.set_state(rng_state["modality_dropout"])
    data_rng.bit_generator.state = rng_state["data_order"]
    set_numpy_global_state(rng_state["numpy_global"]["meta"], rng_state["numpy_global"]["keys"])
    py = rng_state["python_random"]
    random.setstate((py[0], tuple(py[1]), py[2]))


# --------------------------------------------------------------------------- the state folder
@dataclass
class TrainingState:
    """What :func:`load_training_state` returns (tensors on CPU)."""

    folder: Path
    meta: dict[str, Any]
    progress: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any]
    tensors: dict[str, torch.Tensor]


def save_training_state(
    folder: str | Path,
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any] | None,
    progress: dict[str, Any],
    rng: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write a training state atomically to ``folder`` and return it.

    ``progress`` and ``meta`` must be JSON values; ``rng`` may mix JSON values and uint8
    tensors. The previous state is replaced only once the new one is complete on disk.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in model_state.items():
        tensors[f"model/{name}"] = value.detach().to("cpu").contiguous().clone()
    document = {
        "format": STATE_FORMAT,
        "meta": meta,
        "progress": encode_nested(progress, "progress", tensors),
        "model_keys": list(model_state),
        "optimizer": encode_nested(optimizer_state, "optim", tensors),
        "scheduler": encode_nested(scheduler_state, "sched", tensors),
        "rng": encode_nested(rng, "rng", tensors),
    }
    # fsynced and swapped in by rename (the module doc): a kill leaves the previous state intact
    write_folder(folder, {
        STATE_TENSORS: save_tensors(tensors, metadata={"format": "fusioncore-training-state"}),
        STATE_JSON: (json.dumps(document, indent=1) + "\n").encode(),
    })
    return folder


def find_state(folder: str | Path) -> Path | None:
    """The newest complete state at ``folder`` (or its ``.old`` twin, which versions before the
    atomic folder writes left after a kill mid-swap); an interrupted write is finished first."""
    folder = Path(folder)
    recover_interrupted(folder, (STATE_JSON, STATE_TENSORS))
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / STATE_JSON).is_file() and (candidate / STATE_TENSORS).is_file():
            return candidate
    return None


def load_training_state(folder: str | Path) -> TrainingState:
    """Read a state written by :func:`save_training_state`, validating both files."""
    found = find_state(folder)
    if found is None:
        raise ResumeError(f"{folder}: no training state here (expected {STATE_JSON} and {STATE_TENSORS})")
    json_path, tensor_path = found / STATE_JSON, found / STATE_TENSORS
    try:
        document = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResumeError(f"{json_path}: not valid JSON ({err})") from err
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise ResumeError(f"{json_path}: field 'format' must be {STATE_FORMAT} (a fusioncore training state)")
    for key in ("meta", "progress", "model_keys", "optimizer", "scheduler", "rng"):
        if key not in document:
            raise ResumeError(f"{json_path}: missing field {key!r}")
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ResumeError(f"{tensor_path}: not a readable safetensors file ({err})") from err
    missing = [k for k in document["model_keys"] if f"model/{k}" not in tensors]
    if missing:
        raise ResumeError(f"{tensor_path}: model tensors {missing[:5]} listed in {STATE_JSON} are missing")
    where = str(json_path)
    return TrainingState(
        folder=found,
        meta=document["meta"],
        progress=decode_nested(document["progress"], tensors, where),
        model={k: tensors[f"model/{k}"] for k in document["model_keys"]},
        optimizer=decode_nested(document["optimizer"], tensors, where),
        scheduler=decode_nested(document["scheduler"], tensors, where),
        rng=decode_nested(document["rng"], tensors, where),
        tensors=tensors,
    )


def check_same_run(state: TrainingState, expected: dict[str, Any]) -> None:
    """Refuse to resume a state written by a different run, naming every field that differs."""
    diffs = []
    for key, want in expected.items():
        have = state.meta.get(key)
        if have != want:
            diffs.append(f"{key}: state has {json.dumps(have)}, this run has {json.dumps(want)}")
    if diffs:
        raise ResumeError(
            f"{state.folder / STATE_JSON}: this training state belongs to a different run ("
            + "; ".join(diffs)
            + "); resume with the same settings, or start afresh without --resume / in another --out folder"
        )


__all__ = [
    "ResumeError",
    "TrainingState",
    "check_same_run",
    "config_with_defaults",
    "data_fingerprint",
    "decode_nested",
    "encode_nested",
    "find_state",
    "load_training_state",
    "numpy_global_state",
    "restore_rng",
    "rng_snapshot",
    "save_training_state",
    "set_numpy_global_state",
]
