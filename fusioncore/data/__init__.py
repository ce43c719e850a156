"""Data loaders: every layout becomes a :class:`MultimodalDataset`."""

from .dataset import DatasetSplits, MultimodalDataset, iter_batches, to_batch
from .errors import DataError

__all__ = ["DataError", "DatasetSplits", "MultimodalDataset", "iter_batches", "to_batch"]
