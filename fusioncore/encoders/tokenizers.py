"""Token encoders of the MCA family (spec §1a, "Inputs / tokenisation").

* :class:`SequenceEncoder` (pre-embedded sequences, CMU-MOSEI style):
  ``LayerNorm(d) -> Linear(d -> D) -> LayerNorm(D)``, padded positions zeroed before and after
  the projection, then a fixed sinusoidal positional encoding is added.
* :class:`TabularTokenizer` (dense tabular features, TCGA style): feature ``j`` becomes one token
  ``E[j] + MLP(v_j)`` where ``E`` is a learned identity embedding (rows capped at norm 1) and the value
  MLP is ``Linear(1 -> D) -> ReLU -> Linear(D -> D) -> LayerNorm``; values are clipped above at
  ``max_value`` (100); missing values are key-masked (and their value zeroed, so they are finite).
* :class:`PatchTokenizer` (images; not in the MCA paper, which has no image modality): the image is
  cut into non-overlapping ``p x p`` patches (``unfold``), each embedded as
  ``LayerNorm(C*p*p) -> Linear(C*p*p -> D) -> LayerNorm(D)`` (the patch embedding of lucidrains'
  SimpleViT, and the same shape as the sequence encoder above), plus a 2-D position (fixed
  sinusoidal: half the dimensions encode the patch row, half the column; or learned). The input
  LayerNorm standardises each patch's pixels: without it every H&E patch projects to nearly the
  same token (mean pairwise cosine 0.985 on the demo tiles at initialisation, against 0.875 with
  it), and a token model needs many more steps before its attention can tell patches apart. Tokens are in row-major patch order, so token ``k`` is patch ``(k // (W/p), k % (W/p))``
  and attention to the tokens can be drawn over the image. A patch holding a non-finite pixel is
  key-masked like a missing tabular value.

All return ``(tokens (B, L, D), real (B, L) bool)``; the caller ANDs ``real`` with the
sample's modality presence. :func:`token_encoder` picks the tokeniser of a modality.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ModalitySpec


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(length, dim)`` fixed sin/cos encoding (Vaswani et al.): even dims sin, odd dims cos."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe.to(dtype)


class SequenceEncoder(nn.Module):
    """``(B, L, d)`` pre-embedded tokens -> ``(B, L, D)`` model tokens."""

    def __init__(self, input_dim: int, dim: int) -> None:
        super().__init__()
        self.norm_in = nn.LayerNorm(input_dim)
        self.proj = nn.Linear(input_dim, dim)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: Tensor, real: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``real`` ``(B, L)`` True = a real token (None: all real)."""
        if x.dim() != 3:
            raise ValueError(f"SequenceEncoder expects (batch, length, features), got shape {tuple(x.shape)}")
        if real is None:
            real = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        keep = real.unsqueeze(-1).to(x.dtype)
        h = self.norm_out(self.proj(self.norm_in(x * keep))) * keep
        h = h + sinusoidal_positions(x.shape[1], h.shape[-1], h.device, h.dtype)
        return h, real


class TabularTokenizer(nn.Module):
    """``(B, d)`` feature values -> ``(B, d, D)`` tokens, one per feature."""

    def __init__(self, n_features: int, dim: int, max_value: float = 100.0) -> None:
        super().__init__()
        self.max_value = max_value
        # The original uses nn.Embedding(max_norm=1), which renormalises the weight *in place*
        # at every lookup; float rounding can leave a norm a hair above 1 and change the weights
        # again on the next call, so two identical eval forwards could differ. The same cap is
        # applied functionally instead (rows scaled to norm <= 1 on the fly, weights untouched).
        self.identity = nn.Embedding(n_features, dim)
        self.value = nn.Sequential(nn.Linear(1, dim), nn.ReLU(), nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x: Tensor, observed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``observed`` ``(B, d)`` True = value observed; non-finite values count as missing too."""
        if x.dim() != 2 or x.shape[1] != self.identity.num_embeddings:
            raise ValueError(
                f"TabularTokenizer expects (batch, {self.identity.num_embeddings}) values, got shape {tuple(x.shape)}"
            )
        finite = torch.isfinite(x)
        real = finite if observed is None else (observed & finite)
        v = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device)).clamp(max=self.max_value)
        w = self.identity.weight
        identity = w * (1.0 / w.norm(dim=-1, keepdim=True).clamp_min(1e-7)).clamp(max=1.0)
        tokens = identity[None] + self.value(v.unsqueeze(-1))
        return tokens, real


def sinusoidal_positions_2d(rows: int, cols: int, dim: int) -> Tensor:
    """``(rows * cols, dim)`` fixed 2-D encoding in row-major order: the first ``dim // 2``
    dimensions encode the row (:func:`sinusoidal_positions`), the rest the column (as MAE)."""
    d_row = dim // 2
    row = sinusoidal_positions(rows, d_row)[:, None, :].expand(rows, cols, d_row)
    col = sinusoidal_positions(cols, dim - d_row)[None, :, :].expand(rows, cols, dim - d_row)
    return torch.cat([row, col], dim=-1).reshape(rows * cols, dim)


POSITION_KINDS = ("sinusoidal", "learned")


class PatchTokenizer(nn.Module):
    """``(B, C, H, W)`` image -> ``(B, (H/p) * (W/p), D)`` patch tokens (row-major) and their validity."""

    def __init__(self, image_shape: tuple[int, int, int], patch_size: int, dim: int, positions: str = "sinusoidal") -> None:
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        if patch_size < 1 or h % patch_size or w % patch_size:
            raise ValueError(f"image_patch_size {patch_size} must divide the image size {h}x{w}")
        if positions not in POSITION_KINDS:
            raise ValueError(f"image_positions must be one of {POSITION_KINDS}, got {positions!r}")
        self.image_shape = (c, h, w)
        self.patch_size = patch_size
        self.grid = (h // patch_size, w // patch_size)
        patch_dim = c * patch_size * patch_size
        self.norm_in = nn.LayerNorm(patch_dim)
        self.proj = nn.Linear(patch_dim, dim)
        self.norm_out = nn.LayerNorm(dim)
        n = self.grid[0] * self.grid[1]
        if positions == "learned":
            self.positions = nn.Parameter(0.02 * torch.randn(n, dim))
        else:
            self.register_buffer("positions", sinusoidal_positions_2d(*self.grid, dim), persistent=False)

    @property
    def n_tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    def forward(self, x: Tensor, real: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``real`` ``(B, L)`` True = a usable patch (None: every patch with finite pixels)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"PatchTokenizer expects (batch, {', '.join(map(str, self.image_shape))}) images, "
                             f"got shape {tuple(x.shape)}")
        finite = torch.isfinite(x)
        p = self.patch_size
        whole = finite.all(dim=1, keepdim=True).to(x.dtype)  # (B, 1, H, W)
        patch_ok = nn.functional.max_pool2d(1.0 - whole, kernel_size=p, stride=p).flatten(1) == 0  # (B, L)
        real = patch_ok if real is None else (real & patch_ok)
        # Zero non-finite pixels so that a masked patch still has a finite token (never NaN keys).
        clean = torch.where(finite, x, torch.zeros((), dtype=x.dtype, device=x.device))
        patches = nn.functional.unfold(clean, kernel_size=p, stride=p).transpose(1, 2)  # (B, L, C*p*p), row-major
        tokens = self.norm_out(self.proj(self.norm_in(patches)))  # (B, L, D)
        return tokens + self.positions.to(tokens.dtype), real


_SHAPES = {"sequence": (2, "(length, features)"), "tabular": (1, "(features,)"), "image": (3, "(C, H, W)")}


def _check_token_shape(spec: ModalitySpec) -> None:
    rank, text = _SHAPES[spec.kind]
    if len(spec.shape) != rank:
        raise ValueError(f"modality {spec.name!r}: a {spec.kind} modality needs shape {text}, got {tuple(spec.shape)}")


def token_count(spec: ModalitySpec, patch_size: int = 8) -> int:
    """Tokens a modality becomes: its length (sequence), its features (tabular) or its patches (image)."""
    _check_token_shape(spec)
    if spec.kind != "image":
        return int(spec.shape[0])
    _, h, w = spec.shape
    if patch_size < 1 or h % patch_size or w % patch_size:
        raise ValueError(f"modality {spec.name!r}: image_patch_size {patch_size} must divide the image size {h}x{w}")
    return (h // patch_size) * (w // patch_size)


def token_encoder(spec: ModalitySpec, dim: int, *, max_value: float = 100.0, patch_size: int = 8,
                  positions: str = "sinusoidal") -> nn.Module:
    """The tokeniser of one modality: sequence -> :class:`SequenceEncoder`, tabular ->
    :class:`TabularTokenizer`, image -> :class:`PatchTokenizer`; a clear error for a bad shape."""
    token_count(spec, patch_size)
    if spec.kind == "sequence":
        return SequenceEncoder(spec.shape[1], dim)
    if spec.kind == "tabular":
        return TabularTokenizer(spec.shape[0], dim, max_value)
    try:
        return PatchTokenizer(spec.shape, patch_size, dim, positions)
    except ValueError as err:
        raise ValueError(f"modality {spec.name!r}: {err}") from err


__all__ = [
    "POSITION_KINDS",
    "PatchTokenizer",
    "SequenceEncoder",
    "TabularTokenizer",
    "sinusoidal_positions",
    "sinusoidal_positions_2d",
    "token_count",
    "token_encoder",
]
