"""Where the dashboard's models and cohorts come from: the bundled demo and dataset folders.

The bundled demo lives in ``fusioncore/assets/demo/`` (``fusioncore.demo``); the dashboard shows its
held-out test split, so the numbers a user sees are not training-set numbers. A dataset folder
(or a ``KIND:PATH`` spec such as ``mogonet:DIR``) is checked against the allowed roots and
confined to its folder (:mod:`.folders`), loaded with ``fusioncore.data.loaders.load_data``,
and its splits are shown together, tagged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..data.dataset import DatasetSplits, MultimodalDataset
from ..data.errors import DataError
from ..access import AccessPolicy
from ..data.loaders import load_data
from ..demo import DEMO_CHECKPOINTS, demo_dir, load_demo_cohort
from .folders import DatasetSource, check_confined, resolve_dataset

DEMO_LABELS = {
    "mmdynamics_image_omics": "MM-dynamics, image + omics (demo)",
    "mmstatic_image_omics": "MM-static, image + omics (demo)",
    "mmdynamics_omics": "MM-dynamics, omics only (demo)",
    "mca_image_omics": "MCA, image patches + omics (demo, attention)",
    "zorro_image_omics": "Zorro, image patches + omics (demo, attention)",
    "eao_image_omics": "EAO, image patches + omics (demo, attention)",
    "hybrid_image_omics": "Hybrid transformer, image patches + omics (demo, attention)",
}


@dataclass(frozen=True)
class DemoAssets:
    """The bundled demo checkpoints that exist (name -> folder) and whether the cohort file does."""

    folder: Path
    checkpoints: dict[str, Path]
    has_cohort: bool

    @property
    def available(self) -> bool:
        return bool(self.checkpoints)

    def label(self, name: str) -> str:
        return DEMO_LABELS.get(name, name)


def demo_assets() -> DemoAssets:
    """The demo checkpoints found under ``fusioncore/assets/demo/`` (``$FUSIONCORE_ASSETS`` overrides)."""
    folder = demo_dir()
    found = {n: folder / n for n in DEMO_CHECKPOINTS
             if (folder / n / "config.json").is_file() and (folder / n / "model.safetensors").is_file()}
    return DemoAssets(folder=folder, checkpoints=found, has_cohort=(folder / "cohort.npz").is_file())


def demo_cohort(folder: str | Path | None = None) -> tuple[MultimodalDataset, tuple[str, ...]]:
    """The demo cohort's held-out test split and its split tags (``folder``: the demo assets
    folder, by default :func:`demo_assets`' one)."""
    cohort = load_demo_cohort(folder=folder)
    test = cohort.data.subset(cohort.test_index)
    test = replace(test, source=f"demo cohort, test split ({len(test)} of {len(cohort.data)} samples)")
    return test, ("test",) * len(test)


def combine_splits(splits: DatasetSplits) -> tuple[MultimodalDataset, tuple[str, ...]]:
    """Train, test and (optional) validation splits as one dataset plus a split tag per sample."""
    parts = [("train", splits.train), ("test", splits.test)] + ([("val", splits.val)] if splits.val is not None else [])
    first = parts[0][1]
    for tag, part in parts[1:]:
        if part.schema != first.schema:
            raise DataError(f"{part.source or tag}: the {tag} split has another schema than the train split")
    labels = None
    if all(p.labels is not None for _, p in parts):
        labels = np.concatenate([p.labels for _, p in parts])
    data = MultimodalDataset(
        schema=first.schema,
        features={n: np.concatenate([p.features[n] for _, p in parts]) for n in first.modality_names},
        present=np.concatenate([p.present for _, p in parts]),
        labels=labels,
        sample_ids=tuple(s for _, p in parts for s in p.sample_ids),
        source=first.source,
        notes=tuple(dict.fromkeys(n for _, p in parts for n in p.notes)),
        warnings=tuple(dict.fromkeys(w for _, p in parts for w in p.warnings)),
        padding=None if first.padding is None else {
            k: np.concatenate([p.padding[k] for _, p in parts]) for k in first.padding
        },
    )
    tags = tuple(tag for tag, p in parts for _ in range(len(p)))
    return data, tags


def load_cohort(spec: str, policy: AccessPolicy | None = None) -> tuple[MultimodalDataset, tuple[str, ...]]:
    """A dataset folder or ``KIND:PATH`` spec as one cohort (all splits, tagged).

    The path is checked against ``policy`` (default: any folder, as for a local dashboard) and
    every file the loader will read must stay inside the folder (:mod:`.folders`). Messages
    name the folder as typed, never where its links lead.
    """
    source = resolve_dataset(spec, policy or AccessPolicy((), "local"))
    return load_resolved(source)


def load_resolved(source: DatasetSource) -> tuple[MultimodalDataset, tuple[str, ...]]:
    """:func:`load_cohort` for a spec already resolved with :func:`~.folders.resolve_dataset`."""
    try:
        check_confined(source)
        data, tags = combine_splits(load_data(source.spec))
    except ValueError as err:
        err.args = (source.as_typed(str(err)),)
        raise
    return replace(data, source=source.as_typed(data.source or source.typed)), tags
