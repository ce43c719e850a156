"""Helpers every command shares: ``KEY=VALUE`` overrides checked against a config dataclass,
JSON output (NaN -> null), and the split a command works on."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

import numpy as np


def _parse_value(text: str, tp: Any) -> Any:
    """``text`` as the dataclass field type ``tp`` (bool, int, float, str, tuples, optionals)."""
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return None if text.lower() == "none" else _parse_value(text, args[0])
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            kind = "a whole number" if tp is int else "a number"
            raise ValueError(f"expected {kind}, got {text!r}" + (" (the value is empty)" if not text else "")) from None
    if origin is tuple:
        inner = args[0] if args else str
        items = [t.strip() for t in text.split(",")]
        if any(not t for t in items) and text:
            raise ValueError(f"expected comma-separated values, got an empty item in {text!r}")
        return tuple(_parse_value(t, inner) for t in items if t)
    if typing.get_origin(tp) is typing.Literal:
        if text not in typing.get_args(tp):
            raise ValueError(f"expected one of {typing.get_args(tp)}, got {text!r}")
    return text


def apply_params(config: Any, params: list[str], what: str) -> Any:
    """Apply ``key=value`` overrides to a frozen dataclass, naming unknown keys."""
    hints = typing.get_type_hints(type(config))
    changes = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in hints:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE with KEY one of {sorted(hints)} ({what})")
        try:
            changes[key] = _parse_value(value.strip(), hints[key])
        except ValueError as err:
            raise ValueError(f"--param {item!r}: {err}") from err
    return dataclasses.replace(config, **changes)


def emit(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_to_none(v) for v in obj]
    return obj


def select_split(splits, name: str):
    """The ``--split`` of a dataset: train, test or val."""
    if name == "train":
        return splits.train
    if name == "test":
        return splits.test
    if name == "val":
        if splits.val is None:
            raise ValueError("this dataset has no validation split")
        return splits.val
    raise ValueError(f"--split must be train, test or val, got {name!r}")


def report_data(command: str, data: Any, preprocessing: dict | None = None) -> None:
    """Print a dataset's notes and warnings on stderr, ``fusioncore COMMAND: warning: ...``.

    ``data`` is a :class:`~fusioncore.data.dataset.DatasetSplits` (``train``: training data of a
    single class is refused, and the test and validation splits are checked against the training
    split's statistics) or one dataset (checked against ``preprocessing``, a checkpoint's). The
    JSON result on stdout is unchanged.
    """
    from ..data.checks import check_trainable, data_warnings, splits_messages
    from ..data.dataset import DatasetSplits

    if isinstance(data, DatasetSplits):
        check_trainable(data)
        notes, found = splits_messages(data)
    else:
        notes, found = list(data.notes), data_warnings(data, preprocessing)
    for note in notes:
        print(f"fusioncore {command}: note: {note}", file=sys.stderr)
    for warning in found:
        print(f"fusioncore {command}: warning: {warning}", file=sys.stderr)
