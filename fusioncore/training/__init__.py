"""Training and evaluation shared by every method."""

from .evaluate import Prediction, evaluate_model, predict
from .loop import FitResult, fit, fit_preprocessing
from .seeding import seed_everything

__all__ = ["FitResult", "Prediction", "evaluate_model", "fit", "fit_preprocessing", "predict", "seed_everything"]
