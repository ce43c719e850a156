"""Built-in fusion methods; importing this package registers them."""

from .base import FusionModel
from .mmdynamics import MMDynamics, MMDynamicsConfig
from .mmstatic import MMStatic, MMStaticConfig  # noqa: F401  (registers mmstatic)
from .early import EarlyFusion, EarlyFusionConfig
from .late import LateFusion, LateFusionConfig
from .hybrid import HybridFusion, HybridFusionConfig
from .mca import EAO, MCA, MCAConfig, Zorro  # noqa: F401  (registers mca, zorro, eao)

__all__ = ["FusionModel", "MMDynamics", "MMDynamicsConfig",
           "EarlyFusion", "EarlyFusionConfig", "LateFusion", "LateFusionConfig", "HybridFusion", "HybridFusionConfig"]
