"""A trained model as a function of slide tiles: map cells, class probabilities and confidence per tile.

For a multimodal model the slide is its image modality and every other modality is flagged
*absent* (``Batch.present`` False, zeros as values), so each tile's prediction is the model's
prediction from that tile alone — MM-dynamics drops an absent modality's hidden vector before
fusion; methods that cannot predict without a modality say so through their own errors.

Speed (docs/benchmarks.md, section "Slides"): tiles arrive as a uint8 ``(B, h, w, 3)`` stack, which
viewed as ``(B, 3, h, w)`` is already channels-last, the layout oneDNN's convolutions are fastest
in; inference mode; batch norms folded into the convolutions (:func:`fold_batch_norm`); optionally
bfloat16 weights and activations (``precision="bf16"``, measured
within :data:`BF16_TOLERANCE` of float32 on the map) and ``torch.compile`` (folds batch norm into
the convolutions, fuses the element-wise tails). ``precision="auto"`` is bf16 where the CPU
multiplies bf16 natively (AMX or AVX-512 BF16) or on CUDA, float32 elsewhere; the first batch of
every run is checked against float32 and the run falls back to float32 when they differ by more
than the tolerance.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..types import Batch

#: Largest |bf16 - fp32| accepted on the map (values in [0, 1]) and on class probabilities.
BF16_TOLERANCE = 0.02
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TileOutputs:
    """One batch of tiles: ``cells`` ``(B, h/p, w/p)`` mean map per model patch, ``probs`` ``(B, K)``
    class probabilities, ``confidence`` ``(B,)`` the image modality's confidence (NaN when the method
    gives none), all float32 numpy."""

    cells: np.ndarray
    probs: np.ndarray
    confidence: np.ndarray


class _TileNet(nn.Module):
    """``(B, 3, h, w)`` float in [0, 1] -> ``(map (B, 1, h, w), logits (B, K), confidence (B,))``."""

    def __init__(self, model: nn.Module, modality: str) -> None:
        super().__init__()
        self.model = model
        self.modality = modality
        self.index = model.schema.index(modality)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n = x.shape[0]
        inputs = {m.name: x if m.name == self.modality else torch.zeros((n, *m.shape), device=x.device, dtype=x.dtype)
                  for m in self.model.schema.modalities}
        present = torch.zeros((n, len(self.model.schema.modalities)), dtype=torch.bool, device=x.device)
        present[:, self.index] = True
        out = self.model(Batch(inputs=inputs, present=present))
        if self.modality not in out.gates:
            raise ValueError(f"method {self.model.method!r} gives no image map for {self.modality!r}")
        conf = out.confidence.get(self.modality) if out.confidence else None
        if conf is None:
            conf = torch.full((n,), float("nan"), device=x.device, dtype=x.dtype)
        return out.gates[self.modality], out.logits, conf


def fold_batch_norm(module: nn.Module) -> nn.Module:
    """Fold eval-mode batch norms into the convolutions before them, in every submodule torch.fx can
    trace (others are searched further down; their own code stays as it is).

    Why: each folded batch norm is one pass over the activations less (measured ~10 % on the demo's
    U-Net gate); the result equals the unfolded model to float32 rounding (max 1e-6 on the map).
    """
    from torch.fx.experimental.optimization import fuse

    for name, child in list(module.named_children()):
        if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in child.modules()):
            continue
        try:
            setattr(module, name, fuse(child))
        except Exception:  # noqa: BLE001 -- not traceable (no forward, shape-dependent code): look inside
            fold_batch_norm(child)
    return module


def fast_bf16_available(device: torch.device) -> bool:
    """Whether bf16 is native here: CUDA, or a CPU with AMX / AVX-512 BF16 (oneDNN uses them)."""
    if device.type == "cuda":
        return True
    capability = str(torch.backends.cpu.get_cpu_capability()).lower()
    if "amx" in capability:
        return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = fh.read(200_000)
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def image_modality(model, modality: str | None = None) -> str:
    """The image modality a slide stands for: the named one, or the model's only/first image."""
    images = [m.name for m in model.schema.modalities if m.kind == "image"]
    if not images:
        raise ValueError(f"the model has no image modality (modalities: {model.schema.modality_names})")
    if modality is None:
        return images[0]
    if modality not in images:
        raise ValueError(f"--modality {modality!r} is not an image modality of the model (images: {images})")
    return modality


class SlideModel:
    """A model wrapped for slide tiles (see the module docstring). ``precision`` is auto | fp32 | bf16."""

    def __init__(self, model, modality: str | None = None, *, precision: str = "auto", compile: bool = False,
                 device: torch.device | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model = model
        self.device = device or model.device
        self.modality = image_modality(model, modality)
        spec = model.schema.modality(self.modality)
        self.tile = (int(spec.shape[1]), int(spec.shape[2]))
        self.cell = model.explanation_patch_size
        if self.tile[0] % self.cell or self.tile[1] % self.cell:
            self.cell = 1  # a map not constant on patches: keep it per pixel
        self.classes = list(model.schema.classes)
        self.absent = [m.name for m in model.schema.modalities if m.name != self.modality]
        self.requested = precision
        self.precision = "bf16" if precision == "bf16" or (precision == "auto" and fast_bf16_available(self.device)) else "fp32"
        self.compiled = compile
        self._reference = _TileNet(model, self.modality).eval()
        self._net = self._build(self.precision, compile)
        self.check: dict | None = None

    def _build(self, precision: str, compile: bool):
        net = _TileNet(fold_batch_norm(copy.deepcopy(self.model).eval()), self.modality).eval()
        net = net.to(memory_format=torch.channels_last)
        if precision == "bf16":
            net = net.to(torch.bfloat16)
        if compile:
            net = torch.compile(net, options={"freezing": True})
        return net

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def to_input(self, tiles: np.ndarray) -> Tensor:
        """uint8 ``(B, h, w, 3)`` -> ``(B, 3, h, w)`` float in [0, 1], channels-last, on the device."""
        t = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device).permute(0, 3, 1, 2)
        return t.to(torch.float32).div_(255.0)

    def _outputs(self, net, x: Tensor) -> TileOutputs:
        with torch.inference_mode():
            heat, logits, conf = net(x.to(self.dtype) if net is self._net else x.contiguous())
            cells = nn.functional.avg_pool2d(heat.float(), self.cell) if self.cell > 1 else heat.float()
            probs = torch.softmax(logits.float(), dim=-1)
        return TileOutputs(cells=cells[:, 0].cpu().numpy(), probs=probs.cpu().numpy(),
                           confidence=conf.float().cpu().numpy())

    def __call__(self, tiles: np.ndarray) -> TileOutputs:
        """The outputs of a batch of uint8 tiles ``(B, h, w, 3)`` (the model's tile size)."""
        if tiles.shape[1:3] != self.tile:
            raise ValueError(f"tiles are {tiles.shape[1]} x {tiles.shape[2]} px, the model takes {self.tile[0]} x {self.tile[1]}")
        x = self.to_input(tiles)
        if self.check is None and (self.precision != "fp32" or self.compiled):
            return self._checked(x)
        return self._outputs(self._net, x)

    def _checked(self, x: Tensor) -> TileOutputs:
        """Run the first batch both ways; keep the fast path only if it is within tolerance."""
        fast, ref = self._outputs(self._net, x), self._outputs(self._reference, x)
        diff_map = float(np.nanmax(np.abs(fast.cells - ref.cells))) if fast.cells.size else 0.0
        diff_prob = float(np.nanmax(np.abs(fast.probs - ref.probs))) if fast.probs.size else 0.0
        ok = diff_map <= BF16_TOLERANCE and diff_prob <= BF16_TOLERANCE
        self.check = {"precision": self.precision, "compiled": self.compiled, "tiles": int(x.shape[0]),
                      "max_abs_diff_map": diff_map, "max_abs_diff_probs": diff_prob, "tolerance": BF16_TOLERANCE,
                      "kept": ok}
        if not ok:
            self.precision, self.compiled = "fp32", False
            self._net = self._build("fp32", False)
            return ref
        return fast

    def describe(self) -> dict:
        return {"modality": self.modality, "tile": list(self.tile), "cell": self.cell, "precision": self.precision,
                "requested_precision": self.requested, "compiled": self.compiled, "device": str(self.device),
                "absent_modalities": self.absent, "precision_check": self.check}
