"""How big a model would be, found before a single weight is allocated.

A config naming a 100,000-feature modality asks MM-dynamics for a 100,000 x 100,000 feature
gate: 10^10 parameters, 40 GB as float32. Building it to find out takes the machine down, and a
dashboard user can cause that with a 707-byte upload. So the model is first built on PyTorch's
``meta`` device (shapes only, no storage, a few milliseconds), measured, and refused with the
figure when it is over the budget; the same shapes let a checkpoint's weights be checked
before the real model exists.

The budget: ``FUSIONCORE_MAX_PARAMETERS`` parameters (default 250 million) and
``FUSIONCORE_MAX_MODEL_GB`` gigabytes of weights and buffers (default 2). Training needs about
four times the weights (gradients and two Adam moments) on top.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

PARAMETERS_ENV = "FUSIONCORE_MAX_PARAMETERS"
MEMORY_ENV = "FUSIONCORE_MAX_MODEL_GB"
DEFAULT_MAX_PARAMETERS = 250_000_000
DEFAULT_MAX_GB = 2.0


class ModelTooLarge(ValueError):
    """A model (or one of its gates) needs more parameters or memory than the budget allows."""


@dataclass(frozen=True)
class Budget:
    """The largest model this process builds."""

    max_parameters: int = DEFAULT_MAX_PARAMETERS
    max_bytes: int = int(DEFAULT_MAX_GB * 1e9)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Budget":
        env = os.environ if environ is None else environ
        try:
            params = int(env.get(PARAMETERS_ENV) or DEFAULT_MAX_PARAMETERS)
            gb = float(env.get(MEMORY_ENV) or DEFAULT_MAX_GB)
        except ValueError as err:
            raise ValueError(f"{PARAMETERS_ENV} / {MEMORY_ENV}: expected numbers ({err})") from err
        if params <= 0 or not math.isfinite(gb) or gb <= 0:
            raise ValueError(f"{PARAMETERS_ENV} / {MEMORY_ENV}: expected positive numbers")
        return cls(params, int(gb * 1e9))


@dataclass(frozen=True)
class ModelSize:
    """Parameters and bytes of a model's state (weights + persistent buffers) and its largest tensor."""

    parameters: int
    nbytes: int
    largest_name: str
    largest_shape: tuple[int, ...]
    largest_bytes: int

    def describe(self) -> str:
        shape = " x ".join(f"{s:,}" for s in self.largest_shape)
        return (f"{self.parameters:,} parameters ({_gb(self.nbytes)}); the largest tensor, "
                f"{self.largest_name!r} ({shape}), alone needs {_gb(self.largest_bytes)}")


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e7 else f"{nbytes / 1e6:.2f} MB"


def _negative_fields(config: Any, prefix: str = "") -> list[str]:
    """``name=value`` of every negative integer hyper-parameter (nested dataclasses included)."""
    out = []
    for f in dataclasses.fields(config) if dataclasses.is_dataclass(config) else ():
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out += _negative_fields(value, f"{prefix}{f.name}.")
        elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
            out.append(f"{prefix}{f.name}={value}")
    return out


def meta_model(model_cls: type, config: Any, schema: Any) -> nn.Module:
    """``model_cls(config, schema)`` built on the meta device: every shape, no storage.

    Raises ``ValueError`` naming the hyper-parameters when the model cannot be built (a
    negative dimension, an empty weight).
    """
    negative = _negative_fields(config)
    if negative:
        raise ValueError(f"{', '.join(negative)}: dimensions and counts must be positive integers")
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")  # refused below
            model = model_cls(config, schema)
    except RuntimeError as err:  # torch's "negative dimension", "invalid size"...
        raise ValueError(f"{getattr(model_cls, 'method', model_cls.__name__)}: the model cannot be built from these "
                         f"hyper-parameters ({str(err).splitlines()[0]})") from err
    empty = [(k, tuple(v.shape)) for k, v in model.state_dict().items() if v.numel() == 0]
    if empty:
        name, shape = empty[0]
        raise ValueError(f"the model would have an empty weight {name!r} of shape {shape}: a dimension of the "
                         "schema or the hyper-parameters is 0; every dimension must be a positive integer")
    return model


def model_size(model: nn.Module) -> ModelSize:
    """The size of ``model``'s state dict (works on meta tensors: nothing is read)."""
    state = model.state_dict()
    if not state:
        return ModelSize(0, 0, "", (), 0)
    sizes = {k: v.numel() * v.element_size() for k, v in state.items()}
    largest = max(sizes, key=sizes.get)
    params = sum(p.numel() for p in model.parameters())
    return ModelSize(params, sum(sizes.values()), largest, tuple(state[largest].shape), sizes[largest])


def check_model_size(model_cls: type, config: Any, schema: Any, *, budget: Budget | None = None) -> nn.Module:
    """Refuse a model over ``budget`` (default: from the environment); return its meta twin.

    Raises :class:`ModelTooLarge` giving the size, the largest tensor and what to do.
    """
    budget = budget or Budget.from_env()
    meta = meta_model(model_cls, config, schema)
    size = model_size(meta)
    if size.parameters > budget.max_parameters or size.nbytes > budget.max_bytes:
        raise ModelTooLarge(
            f"the model would have {size.describe()}; this installation builds at most "
            f"{budget.max_parameters:,} parameters and {_gb(budget.max_bytes)} ({PARAMETERS_ENV}, {MEMORY_ENV}). "
            "Use fewer features for the largest modality (e.g. the most variable few thousand) or a smaller "
            "hidden size, or raise the limits if this machine has the memory (training needs about 4x the weights)"
        )
    return meta
