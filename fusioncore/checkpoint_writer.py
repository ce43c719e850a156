"""Writing a checkpoint folder: ``config.json`` + ``model.safetensors`` (+ ``metrics.json``).

Why a module of its own: saving needs only the model's own state (its config, schema,
preprocessing and weights), never the registry, so ``FusionModel.save`` can call it without an
import circle (as timm's saving is a free function below ``create_model``). Rebuilding a model
from the folder needs the registry and lives above it, in :mod:`fusioncore.checkpoint`, which
also re-exports everything here.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save as save_tensors

from .atomic_folder import write_folder
from .config import schema_to_json, to_jsonable
from .data.preprocessing import preprocessing_to_json

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
#: The files a save writes; anything else in an existing checkpoint folder is kept.
CHECKPOINT_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE)


def save_checkpoint(model, path: str | Path, *, metrics: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``model`` to folder ``path`` atomically and return the folder.

    The files are written and fsynced in a temporary folder beside ``path`` (same parent, so
    same file system) and swapped in with renames (:mod:`fusioncore.atomic_folder`): at every
    instant ``path`` holds the complete old checkpoint or the complete new one, never new
    config beside old weights, and a save killed or hitting a full disk leaves the old one.
    Whatever else the old folder held (e.g. ``training_state/``) is carried into the new one,
    except an older ``metrics.json`` when ``metrics`` is None (it must not sit beside new
    weights). Files are written ``0666 & ~umask`` (0644 under the usual umask 022), so a
    checkpoint shared through a group-readable folder is readable by the group; safetensors
    alone would write 0600.
    """
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
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    files = {
        CONFIG_FILE: (json.dumps(config, indent=2) + "\n").encode(),
        WEIGHTS_FILE: _canonical_header(save_tensors(state, metadata={"format": "pt", "method": model.method})),
    }
    if metrics is not None:
        files[METRICS_FILE] = (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode()
    return write_folder(path, files, replaced=CHECKPOINT_FILES)


def _canonical_header(raw: bytes) -> bytes:
    """A safetensors file's bytes with its ``__metadata__`` keys sorted.

    The safetensors writer emits the metadata map in hash order, which varies between runs, so
    two identical models could differ in bytes; sorting makes a saved checkpoint reproducible to
    the byte (the demo assets rely on it). Tensor entries, offsets and data are unchanged and the
    header keeps its length, so the file stays valid.
    """
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header["__metadata__"].items())),
                  **{k: v for k, v in header.items() if k != "__metadata__"}}
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > n:  # cannot happen for a reordering of the same JSON; refuse rather than corrupt
        raise ValueError(f"canonical safetensors header is longer than the original ({len(text)} > {n})")
    return raw[:8] + text + b" " * (n - len(text)) + raw[8 + n :]
