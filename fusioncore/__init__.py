"""fusioncore: multimodal fusion methods you can train, load and inspect.

Public API::

    import fusioncore as fc
    fc.list_models()                       # registered methods
    model = fc.create_model("mmdynamics", schema)
    model.save("ckpt/")                    # config.json + model.safetensors
    model = fc.load("ckpt/")               # same predictions, bit for bit

The package imports its models (so the built-in methods are registered), the registry imports
nothing above it, and :func:`load` (:mod:`fusioncore.checkpoint`) sits above the registry.
"""

from . import config, models  # noqa: F401  (importing models registers the built-in methods)
from .checkpoint import CheckpointError, load
from .config import DataSchema, ModalitySpec, TrainConfig
from .device import select_device
from .registry import create_model, get_method, list_models
from .types import Batch, FusionOutput, LossOutput

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "CheckpointError",
    "DataSchema",
    "FusionOutput",
    "LossOutput",
    "ModalitySpec",
    "TrainConfig",
    "create_model",
    "get_method",
    "list_models",
    "load",
    "select_device",
    "__version__",
]
