"""The image modality of MM-dynamics (Image MM-dynamics, spec §5a).

Same interface as the tabular branch in :mod:`fusioncore.models.mmdynamics`:

* :meth:`ImageBranch.informativeness` — a U-Net gives one logit map; sigmoid; averaged over
  ``patch_size x patch_size`` patches and expanded back, so the map ``(B, 1, H, W)`` is in
  (0, 1) and piece-wise constant per patch (default 8 x 8 px patches on 64 x 64 inputs: an
  8 x 8 grid). The model gates the image with :meth:`ImageBranch.fill` (``image * map``, or
  towards white with ``image_gate_fill="white"``) and adds ``mean(map)`` as sparsity.
* :meth:`ImageBranch.encode` — the gated image -> ``(B, hidden)`` after ReLU, before dropout.

Variants: ``config.image_gate`` ``"smp"`` (segmentation-models-pytorch U-Net with encoder
``config.image_gate_encoder``) or ``"paper"`` (the compact U-Net of §5a); ``config.image_encoder``
``"smallcnn"`` (§5a) or any smp/timm encoder name (random weights, globally average-pooled;
``config.image_encoder_depth`` stages). The difference matters for the gate: SmallCNN flattens
its last feature map into a linear layer, so it learns *where* evidence sat in the training
images, while a pooled encoder responds to evidence anywhere, which is what lets the gate learn to
open every evidence patch (docs/results.md, section 3).

Training (``config.image_gate_training``): ``"joint"`` is the published scheme — gate, encoder
and classifier learn together from the gated image. That lets the gate *encode* the prediction
in which patches it opens (any pattern the encoder learns to read), rather than showing the
evidence (Jethani et al., "Have we learned to explain?", AISTATS 2021). ``"decoupled"`` follows
their REAL-X remedy: the encoder and unimodal classifier (the evaluator) learn only from images
under *random* patch masks (:meth:`ImageBranch.random_mask`), so a mask pattern carries no class
information to them, while the gate learns through a frozen copy of the evaluator (and its
sparsity term) to keep the patches that let it classify. Inference is the same in both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModalitySpec
from .smallcnn import SmallCNN
from .unet import PaperUNet, _prune_resnet_stages, build_smp_unet


def patch_average(prob: Tensor, patch_size: int) -> Tensor:
    """``(B, 1, H, W)`` -> the same shape, every ``patch_size`` square replaced by its mean.

    Average-pool then nearest-expand: each patch holds exactly one value (bit-identical copies),
    which is what makes the map a per-patch explanation.
    """
    if patch_size == 1:
        return prob
    pooled = nn.functional.avg_pool2d(prob, kernel_size=patch_size, stride=patch_size)
    return pooled.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)


class SmpImageEncoder(nn.Module):
    """An smp/timm encoder (random weights) + global average pool + Linear -> ``(B, latent)``."""

    def __init__(self, name: str, in_channels: int, image_size: tuple[int, int], latent_dim: int,
                 depth: int = 0) -> None:
        """``depth`` 1-5 stages (fewer = fewer parameters and a smaller receptive field); 0 = the
        deepest of 5 whose total stride divides the image size."""
        super().__init__()
        import segmentation_models_pytorch as smp

        h, w = image_size
        if depth:
            if not 1 <= depth <= 5 or h % 2**depth or w % 2**depth:
                raise ValueError(f"image_encoder_depth must be 0 or 1-5 with 2**depth dividing the image size "
                                 f"{h}x{w}, got {depth}")
        else:
            depth = 5
            while depth > 1 and (h % 2**depth or w % 2**depth):
                depth -= 1
        try:
            self.encoder = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth, weights=None)
        except (KeyError, ValueError, RuntimeError) as err:
            raise ValueError(f"unknown or unusable image encoder {name!r}: {err}") from err
        _prune_resnet_stages(self.encoder, depth)
        self.head = nn.Linear(self.encoder.out_channels[-1], latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x)[-1].mean(dim=(2, 3)))


class ImageBranch(nn.Module):
    """Gate + encoder for one image modality of shape ``(C, H, W)``."""

    def __init__(self, spec: ModalitySpec, config: Any) -> None:
        super().__init__()
        if len(spec.shape) != 3:
            raise ValueError(f"image modality {spec.name!r}: shape must be (C, H, W), got {tuple(spec.shape)}")
        c, h, w = (int(s) for s in spec.shape)
        p = int(config.image_patch_size)
        if p < 1 or h % p or w % p:
            raise ValueError(
                f"image modality {spec.name!r}: image_patch_size {p} must divide the image size {h}x{w}"
            )
        self.patch_size = p
        self.white_fill = getattr(config, "image_gate_fill", "black") == "white"
        self.hidden_dim = int(config.image_hidden_dim)
        if config.image_gate == "smp":
            self.gate = build_smp_unet(config.image_gate_encoder, c, (h, w), p)
        elif config.image_gate == "paper":
            self.gate = PaperUNet(c)
            if h % 16 or w % 16:
                raise ValueError(
                    f"image modality {spec.name!r}: the paper U-Net needs H and W divisible by 16, got {h}x{w}"
                )
        else:
            raise ValueError(f"image_gate must be 'smp' or 'paper', got {config.image_gate!r}")
        if config.image_encoder == "smallcnn":
            self.encoder = SmallCNN(c, (h, w), self.hidden_dim)
        else:
            self.encoder = SmpImageEncoder(config.image_encoder, c, (h, w), self.hidden_dim,
                                           depth=int(getattr(config, "image_encoder_depth", 0)))

    def informativeness(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` image -> ``(B, 1, H, W)`` map in (0, 1), constant on each patch."""
        logits = self.gate(x)
        if logits.shape[-2:] != x.shape[-2:]:
            # The paper U-Net answers per 8x8 cell: nearest-upsample, as the published code does.
            logits = nn.functional.interpolate(logits, size=x.shape[-2:], mode="nearest")
        return patch_average(logits.sigmoid(), self.patch_size)

    def fill(self, x: Tensor, mask: Tensor) -> Tensor:
        """Gate ``x`` by a ``(B, 1, H, W)`` mask in [0, 1]: closed pixels become black (``x * mask``,
        published) or, with ``image_gate_fill="white"``, white — on bright-field H&E a closed gate
        must read "no stain here", not "maximal stain"."""
        return x * mask + (1.0 - mask) if self.white_fill else x * mask

    def random_mask(self, x: Tensor) -> Tensor:
        """A random ``(B, 1, H, W)`` patch mask for training the evaluator: each sample draws a
        keep rate uniformly in [0, 1] and keeps each patch with that probability, so the evaluator
        sees every amount of context, from almost nothing (like a sparse gate) to the whole tile."""
        b, _, h, w = x.shape
        p = self.patch_size
        keep = torch.rand(b, 1, 1, 1, device=x.device)
        mask = (torch.rand(b, 1, h // p, w // p, device=x.device) < keep).to(x.dtype)
        return mask.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)

    def encode(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` gated image -> ``(B, hidden)`` after ReLU, before dropout."""
        return self.encoder(x).relu()
