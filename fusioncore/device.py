"""Device selection: CUDA when it is there, else CPU, always overridable."""

from __future__ import annotations

import os

import torch


def select_device(preference: str | torch.device | None = None) -> torch.device:
    """The device to run on.

    ``preference`` (or the ``FUSIONCORE_DEVICE`` environment variable) may be ``"auto"``,
    ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. Asking for CUDA where there is none is an error
    rather than a silent fall-back, so a user never believes a CPU run was a GPU run.
    """
    if isinstance(preference, torch.device):
        return preference
    choice = (preference or os.environ.get("FUSIONCORE_DEVICE") or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was requested but CUDA is not available on this machine")
    try:
        return torch.device(choice)
    except RuntimeError as err:
        raise ValueError(f"unknown device {choice!r}: use auto, cpu, cuda or cuda:N") from err


def describe_device(device: torch.device) -> str:
    """A human label, e.g. ``"cuda:0 (NVIDIA H100)"`` or ``"cpu"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return "cpu"
