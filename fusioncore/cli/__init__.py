"""The ``fusioncore`` command: one module per sub-command, assembled in :mod:`.main`."""

from .main import build_parser, main
from .train import TRAINING_STATE_DIR

__all__ = ["TRAINING_STATE_DIR", "build_parser", "main"]
