"""Per-modality encoders for tabular (feature-vector) modalities.

Early, late and hybrid fusion all start the same way: each modality's ``(B, d)`` feature vector
is mapped by its own small MLP to a ``(B, hidden)`` representation (images go through the
SmallCNN instead, see :mod:`fusioncore.encoders.modality`). Sharing that front end means the
three baselines differ only in *how they fuse*, which is what a benchmark of fusion strategies
should compare.
"""

from __future__ import annotations

from torch import Tensor, nn



class TabularEncoder(nn.Module):
    """``(B, d)`` -> ``(B, out_dim)``: ``n_layers`` of Linear -> ReLU -> Dropout.

    With ``n_layers=1`` this is MM-dynamics' one-layer encoder (without gates). Dropout sits
    after each activation so the encoder regularises its own output, which matters on
    ROSMAP-sized data (a few hundred samples, hundreds of features).
    """

    def __init__(self, in_dim: int, out_dim: int, *, n_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"TabularEncoder: in_dim and out_dim must be >= 1, got {in_dim} and {out_dim}")
        if n_layers < 1:
            raise ValueError(f"TabularEncoder: n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(n_layers):
            layers += [nn.Linear(dim, out_dim), nn.ReLU(), nn.Dropout(dropout)]
            dim = out_dim
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

