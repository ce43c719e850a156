"""The bundled demo: its cohort and checkpoints, in the style of ``sklearn.datasets``.

``load_demo_cohort()`` reads the synthetic multimodal cohort shipped as package data in
``fusioncore/assets/demo/`` (written by ``scripts/build_assets.py``, found through
:mod:`importlib.resources`, so a wheel install has it too); ``make_demo_cohort(seed, n)``
generates a fresh one with the same generator. Both return a :class:`DemoCohort`: the data, the
planted ground truth (patch masks, informative features, the noisy modality) and a fixed,
stratified train/test split, so every explanation can be scored against the truth.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .config import schema_from_json, schema_to_json
from .data.dataset import DatasetSplits, MultimodalDataset
from .data.splits import held_out_rows, rest
from .data.synthetic_cohort import GroundTruth, SyntheticCohort, make_synthetic_cohort

DEMO_SEED = 0
DEMO_SIZE = 500
DEMO_TEST_FRACTION = 0.3
DEMO_UNINFORMATIVE_IMAGES = 0.2  # fraction of tiles with no evidence (see make_synthetic_cohort)
COHORT_FILE = "cohort.npz"
COHORT_META = "cohort.json"
#: Checkpoint folders that ``scripts/build_assets.py`` writes under ``fusioncore/assets/demo/``.
DEMO_CHECKPOINTS = ("mmdynamics_image_omics", "mmstatic_image_omics", "mmdynamics_omics", "mca_image_omics",
                    "zorro_image_omics", "eao_image_omics", "hybrid_image_omics")


@dataclass(frozen=True)
class DemoCohort:
    """The demo cohort with its ground truth and its train/test split (row indices)."""

    data: MultimodalDataset
    truth: GroundTruth
    train_index: np.ndarray
    test_index: np.ndarray
    seed: int
    description: str

    def splits(self) -> DatasetSplits:
        return DatasetSplits(train=self.data.subset(self.train_index), test=self.data.subset(self.test_index))

    @property
    def train(self) -> SyntheticCohort:
        return SyntheticCohort(self.data, self.truth).subset(self.train_index)

    @property
    def test(self) -> SyntheticCohort:
        return SyntheticCohort(self.data, self.truth).subset(self.test_index)


def assets_dir() -> Path:
    """``$FUSIONCORE_ASSETS`` or the package data folder ``fusioncore/assets/``.

    Found through :mod:`importlib.resources` rather than a path relative to the repository, so
    the same call works in a checkout, an editable install and a wheel install. The assets are
    read as files (safetensors, ``np.load``), so a package imported from a zip is refused.
    """
    env = os.environ.get("FUSIONCORE_ASSETS")
    if env:
        return Path(env)
    folder = resources.files(__package__) / "assets"
    if not isinstance(folder, Path):
        raise ValueError(f"{folder}: the demo assets are inside an archive; install fusioncore unzipped "
                         "(pip install does) or set FUSIONCORE_ASSETS to a folder holding demo/")
    return folder


def demo_dir() -> Path:
    return assets_dir() / "demo"


def demo_checkpoint(name: str = "mmdynamics_image_omics") -> Path:
    """Path of a bundled demo checkpoint folder (see :data:`DEMO_CHECKPOINTS`)."""
    if name not in DEMO_CHECKPOINTS:
        raise ValueError(f"unknown demo checkpoint {name!r}; available: {', '.join(DEMO_CHECKPOINTS)}")
    path = demo_dir() / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: demo checkpoint missing; run `python scripts/build_assets.py` to build fusioncore/assets/")
    return path


def make_demo_cohort(seed: int = DEMO_SEED, n: int = DEMO_SIZE, *, test_fraction: float = DEMO_TEST_FRACTION,
                     uninformative_images: float = DEMO_UNINFORMATIVE_IMAGES) -> DemoCohort:
    """Generate the demo cohort (see :func:`fusioncore.data.synthetic_cohort.make_synthetic_cohort`)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cohort = make_synthetic_cohort(n=n, seed=seed, uninformative_images=uninformative_images)
    labels = cohort.data.labels
    test = held_out_rows(len(labels), test_fraction, seed + 1, labels=labels, at_least=1)  # stratified
    train = rest(len(labels), test)
    return DemoCohort(cohort.data, cohort.truth, train, test, seed, (
        f"Synthetic H&E + omics demo cohort: {n} samples, seed {seed}, classes {list(cohort.data.schema.classes)}; "
        f"evidence planted in known 8x8-px patches of the 64x64 tiles ({uninformative_images:.0%} of tiles hold none) and in "
        f"{sum(len(v) for v in cohort.truth.informative_features.values())} named omics features; "
        f"modality {cohort.truth.noisy_modality!r} carries no class signal."
    ))


# -- (de)serialisation: deterministic bytes, no pickle ------------------------------------
def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` whose bytes depend only on the arrays (fixed zip timestamps and order)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def save_demo_cohort(cohort: DemoCohort, folder: str | Path) -> Path:
    """Write ``cohort.npz`` (images as uint8) + ``cohort.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = cohort.data
    arrays = {
        "labels": d.labels.astype(np.int64),
        "present": d.present,
        "sample_ids": np.asarray(d.sample_ids, dtype=str),
        "patch_masks": cohort.truth.patch_masks,
        "train_index": cohort.train_index,
        "test_index": cohort.test_index,
    }
    for spec in d.schema.modalities:
        x = d.features[spec.name]
        arrays[f"x_{spec.name}"] = np.round(x * 255).astype(np.uint8) if spec.kind == "image" else x.astype(np.float32)
    _write_npz(folder / COHORT_FILE, arrays)
    meta = {
        "schema": schema_to_json(d.schema),
        "seed": cohort.seed,
        "n": len(d),
        "patch_size": cohort.truth.patch_size,
        "informative_features": {k: list(v) for k, v in cohort.truth.informative_features.items()},
        "noisy_modality": cohort.truth.noisy_modality,
        "description": cohort.description,
    }
    (folder / COHORT_META).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def read_demo_cohort(folder: str | Path) -> DemoCohort:
    """Read a cohort written by :func:`save_demo_cohort`, validating what it reads."""
    folder = Path(folder)
    meta_path, npz_path = folder / COHORT_META, folder / COHORT_FILE
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; run `python scripts/build_assets.py` to build the demo assets")
    meta = json.loads(meta_path.read_text())
    schema = schema_from_json(meta["schema"])
    with np.load(npz_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    features = {}
    for spec in schema.modalities:
        x = arrays[f"x_{spec.name}"]
        features[spec.name] = x.astype(np.float32) / np.float32(255.0) if spec.kind == "image" else x
    data = MultimodalDataset(
        schema=schema,
        features=features,
        present=arrays["present"].astype(bool),
        labels=arrays["labels"].astype(np.int64),
        sample_ids=tuple(str(s) for s in arrays["sample_ids"]),
        source=f"demo cohort ({npz_path})",
    )
    truth = GroundTruth(
        patch_masks=arrays["patch_masks"].astype(bool),
        patch_size=int(meta["patch_size"]),
        informative_features={k: tuple(v) for k, v in meta["informative_features"].items()},
        noisy_modality=meta["noisy_modality"],
    )
    return DemoCohort(data, truth, arrays["train_index"], arrays["test_index"], int(meta["seed"]), meta["description"])


def load_demo_cohort(*, folder: str | Path | None = None) -> DemoCohort:
    """The bundled demo cohort (``fusioncore/assets/demo/``); identical to ``make_demo_cohort()``.

    When the assets have not been built (a bare source checkout), the cohort is generated from
    the same seed instead — the result is the same arrays, only slower.
    """
    folder = Path(folder) if folder is not None else demo_dir()
    if (folder / COHORT_FILE).is_file():
        return read_demo_cohort(folder)
    return make_demo_cohort()


_ALIASES = {"image": ("histology",), "omics": ("mrna", "methylation", "noisy"), "all": ()}


def load_demo_splits(modalities: str | None = None) -> DatasetSplits:
    """The demo cohort's fixed train/test splits, for ``--data demo[:MODALITIES]``.

    ``modalities``: names joined by ``+`` or ``,`` (``histology+mrna``), or the aliases ``image``
    (histology only), ``omics`` (mrna, methylation, noisy) and ``all`` (the default).
    """
    splits = load_demo_cohort().splits()
    if not modalities:
        return splits
    names: list[str] = []
    for part in modalities.replace(",", "+").split("+"):
        part = part.strip()
        names.extend(_ALIASES.get(part, (part,)) if part else ())
    if not names:
        return splits
    available = splits.train.modality_names
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(
            f"demo:{modalities}: unknown modality {unknown}; the demo cohort has {available} "
            f"(aliases: {', '.join(_ALIASES)})"
        )
    return splits.select(names)


__all__ = [
    "load_demo_splits",
    "DEMO_CHECKPOINTS",
    "DemoCohort",
    "assets_dir",
    "demo_checkpoint",
    "load_demo_cohort",
    "make_demo_cohort",
    "read_demo_cohort",
    "save_demo_cohort",
]
