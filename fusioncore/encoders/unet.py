"""U-Nets that produce a one-channel informativeness map for an image.

* :class:`PaperUNet` — the compact U-Net of Image MM-dynamics (spec §5a), layer for layer, so
  the published architecture can be reproduced. Its output is one logit per 8 x 8-pixel patch.
* :func:`build_smp_unet` — a segmentation-models-pytorch U-Net with a configurable encoder
  (``resnet18``, ``resnet34``, ``tu-*`` timm encoders, ...) and random weights, because nothing
  can be downloaded. Its output is one logit per pixel.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU()
    )


class PaperUNet(nn.Module):
    """The compact U-Net of §5a: ``(B, C, H, W)`` -> ``(B, 1, H/8, W/8)`` logits.

    On 64 x 64 inputs: enc1 (C->16, max-pool 4) gives the 16 x 16 x 16 skip; enc2 (16->32,
    max-pool 4) gives 4 x 4 x 32; the middle (32->16) is upsampled (nearest) to 16 x 16 and
    concatenated with the skip (32 channels); a 2 x 2 stride-2 conv (32->8) gives 8 x 8, then
    conv3x3(8->8)+ReLU, conv3x3(8->2)+ReLU, conv1x1(2->1). H and W must be divisible by 16.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.enc1 = _double_conv(in_channels, 16)
        self.enc2 = _double_conv(16, 32)
        self.middle = _double_conv(32, 16)
        self.pool = nn.MaxPool2d(4)
        self.down = nn.Conv2d(32, 8, kernel_size=2, stride=2)
        self.head = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 1, 1)
        )

    #: pixels per output cell along each side
    output_stride = 8

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % 16 or w % 16:
            raise ValueError(f"the paper U-Net needs height and width divisible by 16 (two 4x4 max-pools), got {h}x{w}")
        skip = self.pool(self.enc1(x))
        mid = self.middle(self.pool(self.enc2(skip)))
        mid = nn.functional.interpolate(mid, size=skip.shape[-2:], mode="nearest")
        return self.head(self.down(torch.cat([mid, skip], dim=1)))


def smp_depth(image_size: tuple[int, int], patch_size: int) -> int:
    """Encoder depth for the smp U-Net: ``log2(patch_size)`` clamped to [3, 5], so the deepest
    features are about one cell per patch, reduced until ``2**depth`` divides H and W."""
    h, w = image_size
    depth = min(5, max(3, int(math.log2(patch_size)))) if patch_size >= 1 else 3
    while depth > 1 and (h % 2**depth or w % 2**depth):
        depth -= 1
    return depth


def _prune_resnet_stages(encoder: nn.Module, depth: int) -> None:
    """Drop the ResNet stages an encoder of ``depth`` never runs (smp keeps all four).

    ``layer{k}`` runs only when ``depth >= k + 1``; deleting the others removes millions of
    unused parameters (resnet18 at depth 3: 11.2 M -> 0.7 M), which keeps checkpoints small.
    """
    for k in range(1, 5):
        if depth < k + 1 and isinstance(getattr(encoder, f"layer{k}", None), nn.Module):
            delattr(encoder, f"layer{k}")


def build_smp_unet(encoder: str, in_channels: int, image_size: tuple[int, int], patch_size: int) -> nn.Module:
    """A randomly initialised ``smp.Unet(encoder)`` giving ``(B, 1, H, W)`` logits.

    Decoder channels halve from ``16 * 2**(depth-1)`` to 16 (smp's default at depth 5).
    """
    import segmentation_models_pytorch as smp

    depth = smp_depth(image_size, patch_size)
    channels = [16 * 2 ** (depth - 1 - i) for i in range(depth)]
    try:
        net = smp.Unet(
            encoder_name=encoder,
            encoder_depth=depth,
            encoder_weights=None,
            decoder_channels=channels,
            in_channels=in_channels,
            classes=1,
        )
    except (KeyError, ValueError, RuntimeError) as err:
        raise ValueError(f"cannot build an smp U-Net with encoder {encoder!r} at depth {depth}: {err}") from err
    _prune_resnet_stages(net.encoder, depth)
    return net
