"""A synthetic multimodal cohort with planted ground truth (the dashboard's demo data).

Every explanation the package produces can be *scored* on this cohort, because the generator
knows where the class evidence is:

* ``histology`` — 64 x 64 H&E-like tiles rendered with the Beer–Lambert stain model (optical
  densities of hematoxylin and eosin, Ruifrok–Johnston stain vectors): eosin stroma with
  fibre texture, white lumina, scattered small nuclei. In a few patches of the 8 x 8-px grid
  per image the generator *plants* class evidence: a dense cluster of small dark nuclei
  (class 0), one large vesicular nucleus with a nucleolus (class 1) or spindle-shaped nuclei
  (class 2). ``GroundTruth.patch_masks`` records those patches.
* ``mrna`` and ``methylation`` — omics-like tables (log-expression and beta values) driven by
  nuisance factors, in which a few named features (``GroundTruth.informative_features``) are
  shifted by class.
* ``noisy`` — a deliberately uninformative modality (no class signal at all), which a
  confidence-weighting method should learn to trust least.

Everything is a pure function of ``seed``; the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DataSchema, ModalitySpec
from .dataset import MultimodalDataset, select_modalities

CLASSES = ("lymphoid", "vesicular", "spindle")
CLASS_PROPORTIONS = (0.45, 0.33, 0.22)
# Optical-density vectors (R, G, B) of the two stains, normalised (Ruifrok & Johnston 2001).
HEMATOXYLIN = np.array([0.650, 0.704, 0.286])
EOSIN = np.array([0.072, 0.990, 0.105])


@dataclass(frozen=True)
class GroundTruth:
    """What the generator planted.

    patch_masks:          ``(N, H/p, W/p)`` bool, True = the patch holds class evidence.
    patch_size:           ``p`` in pixels.
    informative_features: modality -> names of the features that carry class signal.
    noisy_modality:       the modality with no class signal.
    """

    patch_masks: np.ndarray
    patch_size: int
    informative_features: dict[str, tuple[str, ...]]
    noisy_modality: str

    def pixel_masks(self) -> np.ndarray:
        """``(N, H, W)`` bool masks at pixel resolution."""
        p = self.patch_size
        return self.patch_masks.repeat(p, axis=1).repeat(p, axis=2)

    def subset(self, index) -> "GroundTruth":
        index = np.asarray(index, dtype=np.int64)
        return GroundTruth(self.patch_masks[index], self.patch_size, self.informative_features, self.noisy_modality)


@dataclass(frozen=True)
class SyntheticCohort:
    """The cohort (a :class:`MultimodalDataset`) and its :class:`GroundTruth`."""

    data: MultimodalDataset
    truth: GroundTruth

    def subset(self, index) -> "SyntheticCohort":
        return SyntheticCohort(self.data.subset(index), self.truth.subset(index))

    def select(self, modalities) -> "SyntheticCohort":
        """The same samples with only ``modalities`` (e.g. image-only, omics-only cohorts)."""
        return SyntheticCohort(select_modalities(self.data, modalities), self.truth)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """``(size, size)`` smooth noise in ~[-1, 1]: a ``cells x cells`` grid, bilinearly upsampled."""
    grid = rng.standard_normal((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    top = grid[i][:, i] * (1 - f)[None, :] + grid[i][:, i + 1] * f[None, :]
    bot = grid[i + 1][:, i] * (1 - f)[None, :] + grid[i + 1][:, i + 1] * f[None, :]
    return top * (1 - f)[:, None] + bot * f[:, None]


def _stamp(od: np.ndarray, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, a: float, b: float,
           angle: float, density: float, rim: float = 0.0) -> None:
    """Add one soft-edged elliptical nucleus (semi-axes ``a``, ``b``) to optical density ``od``."""
    c, s = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * c + (yy - cy) * s) / a
    v = (-(xx - cx) * s + (yy - cy) * c) / b
    r = np.sqrt(u * u + v * v)
    body = np.clip((1.15 - r) / 0.3, 0.0, 1.0)  # anti-aliased edge
    if rim:
        # vesicular nucleus: pale centre, dark membrane
        body = body * (1.0 - rim * np.clip(1.0 - r / 0.7, 0.0, 1.0))
    od += density * body


def render_tile(rng: np.random.Generator, label: int, evidence: np.ndarray, size: int = 64, patch: int = 8) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 H&E-like tile; class evidence drawn in the True cells of
    ``evidence`` ``(size/patch, size/patch)``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    # Eosin: stroma density with fibres along a random direction, and one or two white lumina.
    angle = rng.uniform(0, np.pi)
    fibres = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.6, 1.1) + 2 * _smooth_noise(rng, size, 4))
    od_e = 0.32 + 0.10 * fibres + 0.08 * _smooth_noise(rng, size, 8)
    for _ in range(rng.integers(0, 3)):
        cy, cx, rad = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(4, 9)
        lumen = np.clip((rad - np.hypot(yy - cy, xx - cx)) / 2.0, 0.0, 1.0)
        lumen *= ~evidence.repeat(patch, 0).repeat(patch, 1)  # evidence stays on tissue
        od_e *= 1.0 - 0.85 * lumen
    od_h = np.zeros_like(od_e)
    # Background: scattered small, pale nuclei anywhere.
    for _ in range(rng.integers(8, 16)):
        _stamp(od_h, yy, xx, rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.0, 1.5),
               rng.uniform(0.8, 1.2), rng.uniform(0, np.pi), rng.uniform(0.35, 0.6))
    # Planted evidence, one motif per evidence cell.
    for gy, gx in zip(*np.nonzero(evidence)):
        y0, x0 = gy * patch, gx * patch
        if label == 0:  # lymphoid: dense cluster of small dark round nuclei
            for _ in range(rng.integers(5, 8)):
                _stamp(od_h, yy, xx, y0 + rng.uniform(1, patch - 1), x0 + rng.uniform(1, patch - 1),
                       1.1, 1.1, 0.0, rng.uniform(1.1, 1.4))
        elif label == 1:  # vesicular: one large nucleus, pale centre, dark rim, nucleolus
            cy, cx = y0 + patch / 2 + rng.uniform(-0.7, 0.7), x0 + patch / 2 + rng.uniform(-0.7, 0.7)
            _stamp(od_h, yy, xx, cy, cx, rng.uniform(3.0, 3.5), rng.uniform(2.6, 3.2), rng.uniform(0, np.pi), 1.2, rim=0.6)
            _stamp(od_h, yy, xx, cy, cx, 0.8, 0.8, 0.0, 0.9)
        else:  # spindle: two or three elongated nuclei along one direction
            theta = rng.uniform(0, np.pi)
            for k in range(rng.integers(2, 4)):
                _stamp(od_h, yy, xx, y0 + patch / 2 + rng.uniform(-2, 2), x0 + patch / 2 + rng.uniform(-2, 2),
                       3.6, 0.9, theta + rng.uniform(-0.2, 0.2), rng.uniform(1.0, 1.3))
    stain = rng.uniform(0.85, 1.15, size=2)  # slide-to-slide stain intensity
    od = od_h[..., None] * stain[0] * HEMATOXYLIN + od_e[..., None] * stain[1] * EOSIN
    rgb = np.exp(-od * np.log(10)) + rng.normal(0, 0.015, size=od.shape)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def _omics(rng: np.random.Generator, labels: np.ndarray, n_features: int, informative: int, shift: float,
           factors: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(N, d)`` Gaussian omics with nuisance factors; the first ``informative`` columns (in a
    shuffled order) get class-specific mean shifts. Returns ``(x, informative column indices)``."""
    n, k = len(labels), int(labels.max()) + 1
    loadings = rng.normal(0, 0.6, size=(factors, n_features))
    x = rng.standard_normal((n, factors)) @ loadings + rng.standard_normal((n, n_features))
    cols = np.sort(rng.choice(n_features, size=informative, replace=False))
    # each informative feature orders the classes differently: class means at a permutation of
    # evenly spaced levels in [-shift, shift], so every one of them separates the classes
    levels = np.linspace(-1.0, 1.0, k)
    means = np.stack([rng.permutation(levels) for _ in range(informative)], axis=1) * shift
    x[:, cols] += means[labels]
    return x, cols


def _tiles(rng: np.random.Generator, blank_rng: np.random.Generator, labels: np.ndarray, image_size: int,
           patch_size: int, evidence_patches: tuple[int, int], uninformative: float) -> tuple[np.ndarray, np.ndarray]:
    """``(patch masks (N, g, g), tiles (N, size, size, 3) uint8)``: each tile with its planted patches.

    Blank tiles (a share ``uninformative``) come from ``blank_rng``, drawn after the tile they
    replace is rendered, so everything else (labels, the other tiles, the omics) is the same as
    without them.
    """
    n, grid = len(labels), image_size // patch_size
    masks = np.zeros((n, grid, grid), dtype=bool)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    blank = blank_rng.random(n) < uninformative
    for i in range(n):
        k = rng.integers(*evidence_patches)
        masks[i].flat[rng.choice(grid * grid, size=k, replace=False)] = True
        images[i] = render_tile(rng, int(labels[i]), masks[i], image_size, patch_size)
        if blank[i]:
            masks[i] = False
            images[i] = render_tile(blank_rng, int(labels[i]), masks[i], image_size, patch_size)
    return masks, images


def _schema(image_size: int, n_mrna: int, n_methylation: int, n_noisy: int) -> DataSchema:
    """The demo's four modalities and their feature names (``GENE000``, ``cg00000``, ``noise00``)."""
    return DataSchema(
        modalities=(
            ModalitySpec("histology", "image", (3, image_size, image_size)),
            ModalitySpec("mrna", "tabular", (n_mrna,), tuple(f"GENE{j:03d}" for j in range(n_mrna))),
            ModalitySpec("methylation", "tabular", (n_methylation,), tuple(f"cg{j:05d}" for j in range(n_methylation))),
            ModalitySpec("noisy", "tabular", (n_noisy,), tuple(f"noise{j:02d}" for j in range(n_noisy))),
        ),
        classes=CLASSES,
    )


def make_synthetic_cohort(
    n: int = 600,
    seed: int = 0,
    *,
    image_size: int = 64,
    patch_size: int = 8,
    evidence_patches: tuple[int, int] = (4, 8),
    n_mrna: int = 100,
    n_methylation: int = 80,
    n_noisy: int = 40,
    informative_per_modality: int = 5,
    omics_shift: float = 1.2,
    uninformative_images: float = 0.0,
) -> SyntheticCohort:
    """Generate the demo cohort: ``n`` samples, 3 classes (45/33/22 %), 4 modalities.

    ``evidence_patches=(lo, hi)``: each image gets ``lo..hi-1`` evidence patches.
    ``omics_shift``: class mean shift (in noise SDs) of each informative omics feature.
    ``uninformative_images``: fraction of samples (any class) whose tile holds no evidence at
    all, as tiles of real slides often do. Besides realism this matters for the image gate:
    when every tile holds evidence, "nothing visible" identifies the one class whose motif the
    model chose not to learn, and a gate can then close that class's evidence for free (a
    shortcut measured in docs/results.md, section 3, for the published joint training); with
    blank tiles in every class, "nothing visible" is uninformative. Decoupled gate training
    (``image_gate_training="decoupled"``) no longer depends on them.
    """
    if n < 3:
        raise ValueError(f"a cohort needs at least 3 samples (one per class), got n={n}")
    if image_size % patch_size:
        raise ValueError(f"patch_size {patch_size} must divide image_size {image_size}")
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(CLASSES), size=n, p=CLASS_PROPORTIONS).astype(np.int64)
    labels[:3] = [0, 1, 2]  # every class present even in tiny cohorts
    if not 0.0 <= uninformative_images < 1.0:
        raise ValueError(f"uninformative_images must be in [0, 1), got {uninformative_images}")
    masks, images = _tiles(rng, np.random.default_rng([seed, 1]), labels, image_size, patch_size, evidence_patches,
                           uninformative_images)
    mrna, mrna_cols = _omics(rng, labels, n_mrna, informative_per_modality, omics_shift)
    meth, meth_cols = _omics(rng, labels, n_methylation, informative_per_modality, omics_shift)
    noisy = rng.standard_normal((n, n_noisy)) * 1.5
    schema = _schema(image_size, n_mrna, n_methylation, n_noisy)
    mrna_names, meth_names = schema.modality("mrna").features, schema.modality("methylation").features
    features = {
        "histology": images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0),
        "mrna": (6.0 + mrna).astype(np.float32),  # log-expression-like
        "methylation": (1.0 / (1.0 + np.exp(-meth))).astype(np.float32),  # beta values in (0, 1)
        "noisy": noisy.astype(np.float32),
    }
    data = MultimodalDataset(schema=schema, features=features, present=np.ones((n, 4), dtype=bool), labels=labels,
                             sample_ids=tuple(f"demo-{i:04d}" for i in range(n)),
                             source=f"synthetic demo cohort (seed {seed})")
    informative = {"mrna": tuple(mrna_names[j] for j in mrna_cols), "methylation": tuple(meth_names[j] for j in meth_cols)}
    return SyntheticCohort(data=data, truth=GroundTruth(masks, patch_size, informative, noisy_modality="noisy"))
