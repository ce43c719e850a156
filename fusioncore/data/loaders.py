"""``KIND:PATH`` data specifications, as the CLI takes them.

``mogonet:DIR`` (MOGONET layout), ``table:DIR_OR_MANIFEST`` (tables keyed by sample id),
``demo`` (the bundled synthetic cohort), ``synthetic-sparse[:N]`` (the sparse 4-modality set
for MCA/Zorro/EAO), ``tcga:DIR`` and ``cmu:DIR`` (the MCA paper's layouts). Each kind is
resolved lazily so that importing fusioncore stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from .dataset import DatasetSplits
from .errors import DataError

# kind -> (module, function, needs a path)
LOADERS: dict[str, tuple[str, str, bool]] = {
    "mogonet": ("fusioncore.data.mogonet", "load_mogonet", True),
    "table": ("fusioncore.data.tables", "load_tables", True),
    "demo": ("fusioncore.demo", "load_demo_splits", False),
    "synthetic-sparse": ("fusioncore.data.synthetic_sparse", "load_synthetic_sparse", False),
    "tcga": ("fusioncore.data.tcga", "load_tcga", True),
    "cmu": ("fusioncore.data.cmu_mosei", "load_cmu_mosei", True),
}


def parse_spec(spec: str) -> tuple[str, str]:
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in LOADERS:
        if Path(spec).is_dir():
            return "table", spec
        raise DataError(f"data {spec!r}: unknown kind {kind!r}; use one of {', '.join(k + ':' for k in LOADERS)}")
    if LOADERS[kind][2] and not arg:
        raise DataError(f"data {spec!r}: {kind} needs a path, e.g. {kind}:path/to/folder")
    return kind, arg


def load_data(spec: str, **options) -> DatasetSplits:
    """Load ``KIND:PATH`` (see module docstring) as train/test splits."""
    kind, arg = parse_spec(spec)
    module, name, needs_path = LOADERS[kind]
    try:
        loader = getattr(import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise DataError(f"data {spec!r}: the {kind} loader is not available in this installation ({err})") from err
    if needs_path:
        return loader(arg, **options)
    return loader(arg, **options) if arg else loader(**options)
