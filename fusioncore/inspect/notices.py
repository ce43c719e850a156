"""What the user is looking at: synthetic demo or not, which split a sample is from, and
whether an uploaded image resembles the images the model was trained on.

The dashboard states these facts beside the numbers they qualify; they are computed here so
that they are tested without a browser and phrased once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.image_reference import ImageCheck, ImageReference, check_image
from ..data.images import read_image
from .session import ModelSummary
from .uploads import IMAGE_SUFFIXES, UPLOAD_MAX_PIXELS, _assign_images

HELD_OUT = ("test", "val")
UNAVAILABLE = ("Out-of-distribution check unavailable: this checkpoint was saved before fusioncore stored the "
               "statistics of its training images (retrain it to get the check).")


def synthetic_notice(summary: ModelSummary, data_is_demo: bool) -> str | None:
    """The sentence that says the model and/or the data are the synthetic demo (None: neither)."""
    if summary.synthetic_demo and data_is_demo:
        return "Synthetic demo model and data: generated tiles and omics with planted evidence — not patients, not tissue."
    if summary.synthetic_demo:
        return ("Synthetic demo model: it was trained on generated 64 x 64 tiles and omics with planted evidence and "
                "has never seen real tissue or patients; its predictions on this data mean nothing clinically.")
    if data_is_demo:
        return "Synthetic demo data: the samples are generated (planted evidence), not patients."
    return None


def split_of(split: Sequence[str] | None, index: int) -> str | None:
    """The split tag (train/test/val) of row ``index``, or None when the cohort has no tags."""
    return None if split is None else str(split[int(index)])


def default_index(split: Sequence[str] | None) -> int:
    """The row a page opens on: the first held-out (test, else val) sample, else the first."""
    if split is None:
        return 0
    tags = np.asarray(split)
    for tag in HELD_OUT:
        rows = np.flatnonzero(tags == tag)
        if rows.size:
            return int(rows[0])
    return 0


def image_reference(model, modality: str) -> ImageReference | None:
    """The training-image statistics stored with ``modality`` (None for older checkpoints)."""
    transform = model.preprocessing.get(modality)
    return transform if isinstance(transform, ImageReference) else None


def _modality_size(model, modality: str) -> tuple[int, int]:
    spec = model.schema.modality(modality)
    return int(spec.shape[1]), int(spec.shape[2])


def check_image_bytes(model, modality: str, name: str, payload: bytes, *,
                      max_pixels: int = UPLOAD_MAX_PIXELS, tiled: bool = False) -> ImageCheck:
    """Compare an uploaded image file (``name``, ``payload``) with ``modality``'s training images.

    Raises :class:`~fusioncore.data.images.ImageLoadError` naming ``name`` for a bad file.
    """
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="fc-check-") as tmp:
        path = Path(tmp) / f"image{suffix if suffix in IMAGE_SUFFIXES else '.png'}"
        path.write_bytes(payload)
        try:
            loaded = read_image(path, max_pixels=max_pixels)
        except ValueError as err:
            raise type(err)(str(err).replace(str(path), name)) from err
    return check_image(image_reference(model, modality), loaded.pixels, size=_modality_size(model, modality), tiled=tiled)


def check_model_input(model, modality: str, image: np.ndarray) -> ImageCheck:
    """Compare an image already at the model input (``(3, H, W)`` in [0, 1], e.g. a dataset
    row) with the training images: colours and contrast only, its original size is gone."""
    pixels = np.clip(np.round(np.moveaxis(np.asarray(image), 0, -1) * 255), 0, 255).astype(np.uint8)
    return check_image(image_reference(model, modality), pixels, size=_modality_size(model, modality))


def check_lines(check: ImageCheck) -> list[str]:
    """The check as sentences for the page: every warning, or why the check is unavailable."""
    if not check.available:
        return [UNAVAILABLE]
    return [f"Out of distribution — unlike the training images, {w}" for w in check.warnings]


def uploaded_image_checks(model, files: Sequence[tuple[str, bytes]],
                          sample_ids: Sequence[str] = ()) -> dict[tuple[str, str], ImageCheck]:
    """``(sample id, modality) -> ImageCheck`` for every uploaded image, matched to samples by the
    same naming rules as :func:`fusioncore.inspect.uploads.read_uploaded_samples`."""
    images = [(n, p) for n, p in files if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        return {}
    assigned = _assign_images(images, model.schema, list(sample_ids))
    return {(sid, mod): check_image_bytes(model, mod, fname, payload)
            for (mod, sid), (fname, payload) in assigned.items()}
