"""One encoder per modality, whatever its kind: the shared front end of early/late/hybrid fusion.

``tabular`` ``(B, d)`` -> :class:`~fusioncore.encoders.tabular.TabularEncoder`; ``image``
``(B, C, H, W)`` -> :class:`ImageEncoder` (the SmallCNN of Image MM-dynamics, then ReLU and
dropout, as MM-dynamics treats every view). Both end in ``(B, out_dim)``, so the fusion
methods are written once for any mix of feature vectors and images.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ModalitySpec
from .smallcnn import SmallCNN
from .tabular import TabularEncoder


class ImageEncoder(nn.Module):
    """``(B, C, H, W)`` -> ``(B, out_dim)``: SmallCNN -> ReLU -> Dropout (H, W divisible by 4)."""

    def __init__(self, spec: ModalitySpec, out_dim: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        c, h, w = spec.shape
        self.cnn = SmallCNN(c, (h, w), out_dim)
        self.drop = nn.Dropout(dropout)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.cnn(x).relu())


def modality_encoders(
    modalities: tuple[ModalitySpec, ...], out_dim: int, *, n_layers: int = 1, dropout: float = 0.0, method: str = ""
) -> nn.ModuleDict:
    """An encoder per modality keyed by name (schema order); ``n_layers`` applies to tabular ones.

    Raises ``ValueError`` naming the modality for a kind or shape it cannot encode.
    """
    encoders: dict[str, nn.Module] = {}
    for spec in modalities:
        if spec.kind == "tabular" and len(spec.shape) == 1:
            encoders[spec.name] = TabularEncoder(spec.dim, out_dim, n_layers=n_layers, dropout=dropout)
        elif spec.kind == "image" and len(spec.shape) == 3:
            encoders[spec.name] = ImageEncoder(spec, out_dim, dropout=dropout)
        else:
            raise ValueError(
                f"{method or 'this method'}: modality {spec.name!r} is {spec.kind} with shape {tuple(spec.shape)}; "
                "expected tabular (d,) or image (C, H, W)"
            )
    return nn.ModuleDict(encoders)
