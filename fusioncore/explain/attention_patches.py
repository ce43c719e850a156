"""Where on the image a token model looks: the attention paid to each image patch, per reader.

MCA, Zorro and EAO (and hybrid with ``image_tokens="patches"``) turn an image into one token per
square patch, row-major (``encoders.tokenizers.PatchTokenizer``). Their :class:`AttentionMaps`
therefore say how much attention each *reader* pays to each patch, and that is a map over the
image, like the U-Net gate of MM-dynamics. Readers, in this order:

* every **fusion channel** whose tokens may read the image (MCA: each channel containing it;
  Zorro: its one channel; hybrid: the fusion token) — attention of the channel's fusion tokens;
* the image's **return token** (MCA / Zorro pooling: the query that pools the image embedding)
  or hybrid's **readout** (the fusion query of the prediction);
* the image's **own tokens** (self-attention among the patches: the only reader EAO has, since
  its pair passes and post-hoc fusion are not in its maps) — attention *received* by each patch.

For each reader the map is its attention mass on each patch, averaged over the chosen layer(s),
head(s) and the reader's tokens, then divided by its total mass on the image, so a map is the
*share* of the reader's image attention per patch (sums to 1; all zero when the reader paid the
image no attention, e.g. the image was switched off). The total is kept as ``mass``.

:func:`patch_attention_fidelity` scores these maps against the demo cohort's planted patches (the
AUROC the U-Net gate gets in ``explain.planted.explanation_fidelity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.dataset import MultimodalDataset
from ..data.synthetic_cohort import SyntheticCohort
from ..training.evaluate import ensure_aligned, model_batches
from ..types import AttentionMaps
from .planted import planted_auroc

OWN_TOKENS = "tokens"
RETURN_TOKEN = "return token"
READOUT = "readout"


@dataclass(frozen=True)
class PatchAttention:
    """Attention paid to one image modality's patches.

    readers: reader names (channel names, ``"<image> return token"``, ``"readout"``, ``"<image> tokens"``).
    maps:    ``(B, R, gh, gw)`` share of each reader's image attention on each patch (rows sum to 1, or 0).
    mass:    ``(B, R)`` total attention mass each reader put on the image (before normalising).
    """

    readers: tuple[str, ...]
    maps: np.ndarray
    mass: np.ndarray

    def reader(self, name: str) -> np.ndarray:
        """``(B, gh, gw)`` map of reader ``name``."""
        if name not in self.readers:
            raise ValueError(f"no attention reader {name!r}; readers: {', '.join(self.readers)}")
        return self.maps[:, self.readers.index(name)]


def _select(probs: Tensor, head: int | None) -> Tensor:
    """``(B, H, Q, S)`` -> ``(B, Q, S)``: one head or the mean of heads."""
    if head is None:
        return probs.float().mean(dim=1)
    if not 0 <= head < probs.shape[1]:
        raise ValueError(f"head: {head} out of range for {probs.shape[1]} heads")
    return probs[:, head].float()


def _layer_maps(maps: AttentionMaps, layer: int | None) -> list[Tensor]:
    if not maps.layers:
        raise ValueError("the attention maps hold no layers: ask the model for attention (return_attention=True)")
    if layer is None:
        return list(maps.layers)
    if not -len(maps.layers) <= layer < len(maps.layers):
        raise ValueError(f"layer: {layer} out of range for {len(maps.layers)} layers")
    return [maps.layers[layer]]


@dataclass(frozen=True)
class _Reader:
    name: str
    rows: Tensor | None  # (S,) bool query rows of a self-attention reader; None = the pooling reader


def _readers(maps: AttentionMaps, modality: int, modality_name: str) -> list[_Reader]:
    """The readers of modality ``modality``'s tokens, in the order of the module docstring."""
    types = maps.token_modality.cpu()
    image = types == modality
    allowed = None
    if maps.mask is not None:
        m = maps.mask.cpu() if maps.mask.dim() == 2 else maps.mask.cpu().any(dim=0)
        allowed = m[:, image].any(dim=1)  # (S,) rows whose rule lets them read the image
    readers = []
    n_channels = int((-types).max().clamp_min(0))  # fusion tokens of channel c have type -1 - c
    for c in range(n_channels):
        rows = types == -1 - c
        if allowed is not None and not bool(allowed[rows].any()):
            continue
        readers.append(_Reader(maps.channel_names[c] if c < len(maps.channel_names) else f"channel{c}", rows))
    if isinstance(maps.pooling, Tensor):
        # (B, H, Q, S) MCA / Zorro: query m pools modality m; (B, H, S) hybrid's readout
        readers.append(_Reader(f"{modality_name} {RETURN_TOKEN}" if maps.pooling.dim() == 4 else READOUT, None))
    readers.append(_Reader(f"{modality_name} {OWN_TOKENS}", image))
    return readers


def reader_names(maps: AttentionMaps, modality: int, modality_name: str = "image") -> list[str]:
    """Names of the readers :func:`patch_attention` returns, without computing their maps."""
    _check_tokens(maps)
    return [r.name for r in _readers(maps, modality, modality_name)]


def _check_tokens(maps: AttentionMaps) -> None:
    if maps.token_modality is None:
        raise ValueError("the attention maps do not say which modality each token is (token_modality is None)")


def patch_attention(
    maps: AttentionMaps,
    modality: int,
    grid: tuple[int, int],
    *,
    modality_name: str = "image",
    layer: int | None = None,
    head: int | None = None,
) -> PatchAttention:
    """Per-reader attention to the ``grid = (gh, gw)`` patches of modality index ``modality``.

    ``layer`` / ``head``: one of them, or None for the mean over all. The pooling reader (return
    token / readout) has one map and ignores ``layer``.
    """
    _check_tokens(maps)
    image = maps.token_modality.cpu() == modality
    n_patches = int(image.sum())
    if n_patches != grid[0] * grid[1]:
        raise ValueError(f"modality {modality_name!r} has {n_patches} tokens, not the {grid[0]} x {grid[1]} patch grid "
                         "(is it an image tokenised into patches?)")
    dense = torch.stack([_select(p.cpu(), head) for p in _layer_maps(maps, layer)]).mean(dim=0)  # (B, S, S)
    readers = _readers(maps, modality, modality_name)
    raw = []
    for reader in readers:
        if reader.rows is not None:
            raw.append(dense[:, reader.rows][:, :, image].mean(dim=1))  # (B, P)
            continue
        pool = maps.pooling.cpu()
        pool = pool[:, :, modality] if pool.dim() == 4 else pool  # (B, H, S)
        raw.append(_select(pool.unsqueeze(2), head)[:, 0, image])
    raw = torch.stack(raw, dim=1)  # (B, R, P)
    mass = raw.sum(dim=-1)
    share = torch.where(mass[..., None] > 0, raw / mass[..., None].clamp_min(1e-30), torch.zeros(()))
    names = tuple(r.name for r in readers)
    return PatchAttention(names, share.reshape(raw.shape[0], len(names), *grid).numpy(), mass.numpy())


def image_grid(model, modality: str) -> tuple[int, int]:
    """The ``(gh, gw)`` patch grid a model cuts image ``modality`` into (asked of the model)."""
    grid = model.patch_grid(modality)
    if grid is None:
        raise ValueError(f"method {model.method!r} does not tokenise {modality!r} into image patches, "
                         "so its attention cannot be drawn over the image")
    return grid


@torch.no_grad()
def cohort_patch_attention(model, data: MultimodalDataset, modality: str, *, batch_size: int = 16,
                           layer: int | None = None, head: int | None = None) -> PatchAttention:
    """:func:`patch_attention` of every sample of ``data`` (aligned to the model's schema), in batches
    (dense attention maps cost ``B * H * S^2`` floats per layer, so batches stay small)."""
    data = ensure_aligned(model, data)
    grid = image_grid(model, modality)
    j = model.modality_names.index(modality)
    parts = []
    for _, batch in model_batches(model, data, batch_size=batch_size):
        out = model(batch, return_attention=True)
        parts.append(patch_attention(out.attention, j, grid, modality_name=modality, layer=layer, head=head))
    return PatchAttention(parts[0].readers, np.concatenate([p.maps for p in parts]), np.concatenate([p.mass for p in parts]))


def patch_attention_fidelity(model, cohort: SyntheticCohort, *, batch_size: int = 16) -> dict:
    """Pooled AUROC of each reader's patch attention against the planted patch masks, over every patch
    of every sample (as ``heatmap_auroc`` of the U-Net gate), for the model's first image modality.

    Returns ``{"patch_attention_auroc": {reader: auroc}, "patch_attention_mass": {reader: mean mass}}``
    (mass: the mean share of each reader's attention that goes to the image at all).
    """
    images = [m.name for m in model.schema.modalities if m.kind == "image" and model.patch_grid(m.name) is not None]
    if not images:
        raise ValueError(f"method {model.method!r} has no image modality tokenised into patches")
    att = cohort_patch_attention(model, cohort.data, images[0], batch_size=batch_size)
    truth = cohort.truth.patch_masks
    if truth.shape[1:] != att.maps.shape[2:]:
        raise ValueError(f"the planted patch masks are {truth.shape[1]} x {truth.shape[2]}, the model's patch grid is "
                         f"{att.maps.shape[2]} x {att.maps.shape[3]}: score a model whose patches are the planted ones")
    return {
        "patch_attention_auroc": {r: planted_auroc(att.maps[:, i], truth, pooled=True) for i, r in enumerate(att.readers)},
        "patch_attention_mass": {r: float(att.mass[:, i].mean()) for i, r in enumerate(att.readers)},
    }
