"""What a model's training images looked like, and whether a new image looks like them.

A model trained on 64 x 64 synthetic tiles says nothing reliable about a 2000 x 1500 photo of
real tissue, and nothing in the prediction warns about it. The trainer therefore stores, with
the checkpoint's preprocessing of every image modality, an :class:`ImageReference`: the input
size, the spread of the training images' per-image colour means and contrast, and (when the
data states it) their microns per pixel. :func:`check_image` compares a new image with it and
returns plain-language warnings; checkpoints saved before the reference existed load with an
:class:`~fusioncore.data.preprocessing.IdentityTransform` and the check reports "unavailable".

The reference changes no number the model computes: its ``transform`` is the identity, exactly
what image modalities had before, so training is bit-identical with or without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Percentiles of the training images' per-image statistics that bound "in distribution".
LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.0
#: Slack added to that range, in units of the per-image standard deviation of the statistic
#: (a new image a little outside the 1-99 % range of a few hundred tiles is not alarming).
SLACK_SIGMAS = 1.0
#: A scale factor (new image -> model input) beyond this, up or down, changes the apparent size
#: of every structure enough to be flagged.
MAX_SCALE = 1.5
#: Relative difference of aspect ratios (and of microns per pixel) that is flagged.
MAX_ASPECT_CHANGE = 0.1
MAX_MPP_CHANGE = 0.25
CHANNELS = ("red", "green", "blue")


@dataclass(frozen=True)
class ImageReference:
    """Statistics of a modality's training images (pixels in [0, 1], ``(3, H, W)`` each).

    input_size:   ``(H, W)`` of the model input the training images were brought to.
    mean_range:   ``(3, 2)`` low/high bound of the per-image channel means.
    std_range:    ``(2,)`` low/high bound of the per-image standard deviation (contrast).
    channel_mean: ``(3,)`` mean of the per-image channel means (shown to the user).
    source_size:  ``(H, W)`` of the training images as stored on disk when the loader knew it
                  (None: they were stored at the input size, as the demo tiles are).
    mpp:          microns per pixel of the training images when the data said so.
    """

    input_size: tuple[int, int]
    n_images: int
    mean_range: tuple[tuple[float, float], ...]
    std_range: tuple[float, float]
    channel_mean: tuple[float, ...]
    source_size: tuple[int, int] | None = None
    mpp: float | None = None

    @classmethod
    def fit(cls, images: np.ndarray, present: np.ndarray | None = None, *, mpp: float | None = None,
            source_size: tuple[int, int] | None = None) -> "ImageReference":
        """Fit on ``images`` ``(N, 3, H, W)`` in [0, 1], rows where ``present`` is True."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"image reference: expected (N, 3, H, W) images, got shape {images.shape}")
        rows = images if present is None else images[np.asarray(present, dtype=bool)]
        if rows.shape[0] == 0:
            raise ValueError("cannot fit the image reference: no training sample has this modality")
        means = rows.mean(axis=(2, 3), dtype=np.float64)  # (N, 3)
        stds = rows.reshape(rows.shape[0], -1).std(axis=1, dtype=np.float64)  # (N,)
        return cls(
            input_size=(int(images.shape[2]), int(images.shape[3])),
            n_images=int(rows.shape[0]),
            mean_range=tuple(_bounds(means[:, c]) for c in range(3)),
            std_range=_bounds(stds),
            channel_mean=tuple(float(v) for v in means.mean(axis=0)),
            source_size=None if source_size is None else (int(source_size[0]), int(source_size[1])),
            mpp=None if mpp is None else float(mpp),
        )

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The identity (images are already in [0, 1]); the reference only describes them."""
        return np.asarray(x, dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        # kind stays "identity": a reader that does not know the reference still loads the checkpoint
        return {"kind": "identity", "reference": {
            "input_size": list(self.input_size), "n_images": self.n_images,
            "mean_range": [list(r) for r in self.mean_range], "std_range": list(self.std_range),
            "channel_mean": list(self.channel_mean),
            "source_size": None if self.source_size is None else list(self.source_size), "mpp": self.mpp}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImageReference":
        ref = data["reference"]
        try:
            return cls(
                input_size=(int(ref["input_size"][0]), int(ref["input_size"][1])),
                n_images=int(ref["n_images"]),
                mean_range=tuple((float(lo), float(hi)) for lo, hi in ref["mean_range"]),
                std_range=(float(ref["std_range"][0]), float(ref["std_range"][1])),
                channel_mean=tuple(float(v) for v in ref["channel_mean"]),
                source_size=None if ref.get("source_size") is None else tuple(int(v) for v in ref["source_size"]),
                mpp=None if ref.get("mpp") is None else float(ref["mpp"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"preprocessing: image reference is malformed ({err!r}); expected the fields "
                             "input_size, n_images, mean_range, std_range, channel_mean") from err


def _bounds(values: np.ndarray) -> tuple[float, float]:
    """The ``[LOW, HIGH]`` percentile range widened by ``SLACK_SIGMAS`` standard deviations."""
    slack = SLACK_SIGMAS * float(values.std())
    lo, hi = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
    return float(lo) - slack, float(hi) + slack


@dataclass(frozen=True)
class ImageCheck:
    """The comparison of one image with the training images.

    available: False when the checkpoint has no reference (trained before it existed).
    warnings:  one sentence per way the image differs (empty = looks like the training images).
    rule:      how the image is brought to the model input (always stated).
    """

    available: bool
    warnings: tuple[str, ...] = field(default=())
    rule: str = ""

    @property
    def out_of_distribution(self) -> bool:
        return bool(self.warnings)


def input_rule(height: int, width: int, size: tuple[int, int]) -> str:
    """The sentence that says what :func:`fusioncore.data.images.to_model_input` does to an
    ``height x width`` image for a model input of ``size = (H, W)``."""
    H, W = size
    if (height, width) == (H, W):
        return f"{width} x {height} px: used as is (the model's input size)."
    scale = max(H / height, W / width)
    kept_h, kept_w = min(height, H / scale), min(width, W / scale)
    kept = kept_h * kept_w / (height * width)
    crop = "no crop" if kept > 0.999 else f"the centre {kept_w:.0f} x {kept_h:.0f} px kept ({kept:.0%} of the image)"
    return (f"{width} x {height} px scaled by {scale:.3g} (bilinear, aspect ratio kept) to cover {W} x {H}, "
            f"then centre-cropped: {crop}; nothing is squashed.")


def check_image(reference: ImageReference | None, pixels: np.ndarray, *, size: tuple[int, int],
                mpp: float | None = None, tiled: bool = False) -> ImageCheck:
    """Compare an ``(H, W, 3)`` uint8 image, as uploaded (before resizing), with ``reference``.

    ``size``: the model's input ``(H, W)``; ``mpp``: the image's microns per pixel when known;
    ``tiled``: the image is cut into input-sized tiles rather than scaled (whole-image maps), so
    its size and aspect do not matter.
    """
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    rule = (f"{width} x {height} px cut into {size[1]} x {size[0]} tiles (no scaling)." if tiled
            else input_rule(height, width, size))
    if reference is None:
        return ImageCheck(False, (), rule)
    x = np.asarray(pixels, dtype=np.float64) / 255.0
    warnings = [] if tiled else _size_warnings(reference, height, width)
    means = x.mean(axis=(0, 1))
    off = [f"{name} {m:.2f} (training {lo:.2f}–{hi:.2f})"
           for name, m, (lo, hi) in zip(CHANNELS, means, reference.mean_range) if not lo <= m <= hi]
    if off:
        warnings.append("its colours differ from the training images: mean " + ", ".join(off) + ".")
    std = float(x.std())
    lo, hi = reference.std_range
    if not lo <= std <= hi:
        warnings.append(f"its contrast (pixel standard deviation {std:.2f}) is outside the training range {lo:.2f}–{hi:.2f}.")
    if reference.mpp is not None:
        if mpp is None:
            warnings.append(f"the model was trained at {reference.mpp:g} µm/px and this image's resolution is unknown.")
        elif abs(mpp / reference.mpp - 1) > MAX_MPP_CHANGE:
            warnings.append(f"it is at {mpp:g} µm/px, the training images at {reference.mpp:g} µm/px.")
    return ImageCheck(True, tuple(warnings), rule)


def _size_warnings(reference: ImageReference, height: int, width: int) -> list[str]:
    ref_h, ref_w = reference.source_size or reference.input_size
    out = []
    scale = max(reference.input_size[0] / height, reference.input_size[1] / width)
    ref_scale = max(reference.input_size[0] / ref_h, reference.input_size[1] / ref_w)
    ratio = scale / ref_scale
    if ratio < 1 / MAX_SCALE or ratio > MAX_SCALE:
        out.append(f"it is {width} x {height} px and the training images were {ref_w} x {ref_h} px: everything in it "
                   f"reaches the model {1 / ratio:.3g}x {'smaller' if ratio < 1 else 'larger'} than in training.")
    if abs((width / height) / (ref_w / ref_h) - 1) > MAX_ASPECT_CHANGE:
        out.append(f"its aspect ratio ({width / height:.2f}) differs from the training images' ({ref_w / ref_h:.2f}): "
                   "the centre crop drops its edges.")
    return out
