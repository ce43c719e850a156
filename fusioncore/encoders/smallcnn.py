"""SmallCNN: the image encoder of Image MM-dynamics (Wenderoth 2024, spec §5a).

Two conv-ReLU-maxpool stages, then two fully connected layers. On a 64 x 64 RGB input the
flattened feature map is ``32 * 16 * 16 = 8192`` values, as in the published ``models.py``.
"""

from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """``(B, C, H, W)`` image -> ``(B, latent_dim)`` pre-activation latent.

    conv3x3(C->16)+ReLU+maxpool2 -> conv3x3(16->32)+ReLU+maxpool2 -> flatten ``32*(H/4)*(W/4)``
    -> Linear(->fc_dim)+ReLU -> Linear(fc_dim->latent_dim). The caller applies the final ReLU
    and dropout, as MM-dynamics does for every view.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], latent_dim: int, fc_dim: int = 128) -> None:
        super().__init__()
        h, w = image_size
        if h % 4 or w % 4:
            raise ValueError(f"SmallCNN needs an image height and width divisible by 4 (two 2x2 max-pools), got {h}x{w}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc1 = nn.Linear(32 * (h // 4) * (w // 4), fc_dim)
        self.fc2 = nn.Linear(fc_dim, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        z = self.features(x).flatten(1)
        return self.fc2(self.fc1(z).relu())
