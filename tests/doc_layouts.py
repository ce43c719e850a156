"""Small generated data in the layouts the docs describe (README "your own images plus omics",
docs/image_tables.md), for the executable-README test and the image-table end-to-end tests.

The class is planted in both modalities (bright vs dark images, shifted genes) so a model can
learn something in an epoch or two; the point here is that the documented layouts load and
train, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

#: Image formats and modes the docs promise, cycled over the samples.
FORMATS = (("png", "RGB"), ("jpg", "RGB"), ("tiff", "RGB"), ("png", "RGBA"), ("png", "L"))


def write_image(path: Path, label: int, rng: np.random.Generator, mode: str = "RGB", size: int = 24) -> None:
    """A small noisy tile, brighter for class 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = 170 if label else 80
    pixels = np.clip(base + rng.normal(0, 25, size=(size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode == "RGBA":
        image = image.convert("RGBA")
    elif mode == "L":
        image = image.convert("L")
    image.save(path)


def write_my_cohort(root: Path, n: int = 24, seed: int = 0, *, image_table: str = "histology.csv",
                    image_column: str = "path", split: bool = False) -> Path:
    """``root`` as in the README's worked example: labels.csv, mrna.csv, an image table, tiles/.

    Sample ids ``P001...``; images under ``tiles/`` and ``tiles/batch2/`` in PNG, JPEG and TIFF
    (RGB, RGBA, grayscale), paths relative to the table's folder. ``image_table`` chooses the
    table's name and format (``.csv``, ``.tsv`` or ``.parquet``).
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"P{i + 1:03d}" for i in range(n)]
    labels = np.array([i % 2 for i in range(n)])
    frame = pd.DataFrame({"sample": ids, "label": np.where(labels == 1, "tumour", "normal")})
    if split:
        frame["split"] = ["test" if i % 4 == 3 else "train" for i in range(n)]
    frame.to_csv(root / "labels.csv", index=False)
    genes = rng.normal(size=(n, 8)) + labels[:, None] * 1.5
    mrna = pd.DataFrame(genes, columns=[f"GENE{j + 1:03d}" for j in range(8)])
    mrna.insert(0, "sample", ids)
    mrna.to_csv(root / "mrna.csv", index=False)
    paths = []
    for i, (sid, label) in enumerate(zip(ids, labels)):
        ext, mode = FORMATS[i % len(FORMATS)]
        rel = f"tiles/batch2/{sid}.{ext}" if i % 3 == 2 else f"tiles/{sid}.{ext}"
        write_image(root / rel, int(label), rng, mode)
        paths.append(rel)
    table = pd.DataFrame({"sample": ids, image_column: paths})
    target = root / image_table
    if target.suffix == ".parquet":
        table.to_parquet(target, index=False)
    else:
        table.to_csv(target, index=False, sep="\t" if target.suffix == ".tsv" else ",")
    return root


def write_region(path: Path, size: int = 96, seed: int = 1) -> Path:
    """An image larger than the model input, for ``explain heatmap`` (tiled inference)."""
    rng = np.random.default_rng(seed)
    write_image(path, 1, rng, size=size)
    return path


def write_mogonet(folder, n_tr=12, n_te=6, dims=(4, 3), seed=0, featnames=True):
    """A small random cohort in the MOGONET layout (``{v}_{tr,te}.csv``, labels, feature names)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("tr", n_tr), ("te", n_te)):
        np.savetxt(folder / f"labels_{split}.csv", rng.integers(0, 2, n).astype(float), delimiter=",", fmt="%.18e")
        for v, d in enumerate(dims, start=1):
            np.savetxt(folder / f"{v}_{split}.csv", rng.random((n, d)), delimiter=",", fmt="%.18e")
    if featnames:
        for v, d in enumerate(dims, start=1):
            (folder / f"{v}_featname.csv").write_text("\n".join(f"g{v}_{j}" for j in range(d)) + "\n")
    return folder


def official_state_dict(dims, hidden, k, seed=0):
    """A random state_dict in the official MM-dynamics layout (MMDynamic's parameter names)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, d in enumerate(dims):
        for prefix, shape in (("FeatureInforEncoder", (d, d)), ("FeatureEncoder", (hidden, d)),
                              ("TCPClassifierLayer", (k, hidden)), ("TCPConfidenceLayer", (1, hidden))):
            state[f"{prefix}.{i}.clf.0.weight"] = torch.randn(shape, generator=g)
            state[f"{prefix}.{i}.clf.0.bias"] = torch.randn(shape[0], generator=g)
    state["MMClasifier.0.clf.0.weight"] = torch.randn(k, hidden * len(dims), generator=g)
    state["MMClasifier.0.clf.0.bias"] = torch.randn(k, generator=g)
    return state
