"""Training and evaluation shared by every method."""

from .evaluate import Prediction, evaluate_model, predict
from .interrupt import TrainingInterrupted
from .loop import FitResult, TrainingRun, fit, fit_preprocessing
from .recipes import check_train_options, train_by_recipe
from .seeding import seed_everything
from .selection import EpochSelector, holdout_split

__all__ = ["EpochSelector", "FitResult", "Prediction", "TrainingInterrupted", "TrainingRun", "check_train_options",
           "evaluate_model", "fit", "fit_preprocessing", "holdout_split", "predict", "seed_everything",
           "train_by_recipe"]
