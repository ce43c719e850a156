"""Built-in fusion methods; importing this package registers them."""

from .base import FusionModel
from .mmdynamics import MMDynamics, MMDynamicsConfig

__all__ = ["FusionModel", "MMDynamics", "MMDynamicsConfig"]
