"""Dataset folders typed into the dashboard: resolved, confined, and versioned without a tree walk.

A dataset spec (``DIR``, ``table:DIR_OR_MANIFEST``, ``mogonet:DIR``...) names a server folder.
Before any of it is read:

1. the folder is resolved and checked against the allowed roots (:mod:`fusioncore.access`);
2. every file the loader will read is resolved (symbolic links included) and must stay inside
   that folder: the data files directly in it, the files a ``fusioncore.json`` manifest names,
   and the image paths of every image table. A manifest cannot make the dashboard read
   ``/home/someone/.pgpass``, and a refusal quotes only the manifest's own entry.

:func:`dataset_version` is the dashboard's cache key: a ``stat`` of the folder's direct data
files and of the files its manifest names, never a walk of the tree, so typing ``/usr`` costs
one directory listing per rerun.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import pandas as pd

from ..access import AccessPolicy, confine
from ..data.errors import DataError
from ..data.readers import TABLE_SUFFIXES, read_table
from ..data.loaders import LOADERS
from ..data.tables import IMAGE_COLUMNS, MANIFEST_NAME, discover

#: Files a loader may read directly in a dataset folder (tables, manifests, CMU's .csd, arrays).
DATA_SUFFIXES = TABLE_SUFFIXES + (".json", ".csd", ".npz")
#: A folder with more entries than this is not a dataset folder (and is not listed further).
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class DatasetSource:
    """A dataset spec resolved for the dashboard.

    kind:  the loader (``table``, ``mogonet``...); path: the resolved folder or manifest (None
    for kinds without a path, e.g. ``demo``); typed: the spec as the user typed it; arg: the
    path part as typed.
    """

    kind: str
    path: Path | None
    typed: str
    arg: str = ""

    @property
    def spec(self) -> str:
        """The spec the loader reads (the resolved path in place of the typed one)."""
        if self.path is None:
            return f"{self.kind}:{self.arg}" if self.arg else self.kind
        return f"{self.kind}:{self.path}"

    @property
    def folder(self) -> Path | None:
        if self.path is None:
            return None
        return self.path.parent if self.path.suffix == ".json" and not self.path.is_dir() else self.path

    def as_typed(self, text: str) -> str:
        """``text`` with the resolved path written back as the user typed it (no symlink targets shown)."""
        if self.path is None:
            return text
        pairs = [(str(self.path), self.arg.rstrip("/") or self.arg)]
        if self.folder != self.path:
            pairs.append((str(self.folder), str(Path(self.arg).parent)))
        for resolved, typed in pairs:
            text = text.replace(resolved, typed)
        return text


def resolve_dataset(spec: str, policy: AccessPolicy) -> DatasetSource:
    """Split ``spec`` into kind and path and resolve the path under ``policy`` (nothing is opened).

    A bare path is the table layout. Raises :class:`~fusioncore.access.AccessError` for a path
    outside the allowed roots, :class:`DataError` for an empty spec.
    """
    text = (spec or "").strip()
    if not text:
        raise DataError("no dataset given: enter a folder (table layout) or a spec like mogonet:/path/to/ROSMAP")
    head, sep, rest = text.partition(":")
    kind, arg = (head.strip().lower(), rest.strip()) if sep and head.strip().lower() in LOADERS else ("table", text)
    if not LOADERS[kind][2]:
        return DatasetSource(kind, None, text, arg)
    if not arg:
        raise DataError(f"data {text!r}: {kind} needs a path, e.g. {kind}:path/to/folder")
    return DatasetSource(kind, policy.resolve(arg, "dataset"), text, arg)


def _direct_files(folder: Path) -> list[os.DirEntry]:
    """The data files directly in ``folder`` (links not yet followed); refuses huge folders."""
    try:
        with os.scandir(folder) as it:
            entries = list(islice(it, MAX_ENTRIES + 1))
    except PermissionError as err:
        raise DataError(f"{folder}: permission denied (the dashboard's account cannot list this folder)") from err
    except OSError as err:
        raise DataError(f"{folder}: cannot be listed ({err.strerror or err})") from err
    if len(entries) > MAX_ENTRIES:
        raise DataError(f"{folder}: more than {MAX_ENTRIES:,} entries; not a dataset folder (expected a folder "
                        "with one table per modality and labels.csv)")
    return [e for e in entries if Path(e.name).suffix.lower() in DATA_SUFFIXES]


def _header(path: Path) -> list[str]:
    """Column names of a table, read from its first line only (empty when unreadable)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return [str(c) for c in pd.read_csv(path, sep=sep, nrows=0, dtype=str).columns]
    except (OSError, ValueError, ImportError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return []  # the loader reports what is wrong with it


def _check_image_table(table: Path, kind: str, folder: Path) -> None:
    """Every path in an image table (or a table that may be one) must stay inside ``folder``."""
    columns = _header(table)
    named = [c for c in columns if c.lower() in IMAGE_COLUMNS]
    if kind != "image" and not named:
        return
    frame = read_table(table)
    for column in named or [str(c) for c in frame.columns[1:]]:
        for i, value in enumerate(frame[column].tolist()):
            if isinstance(value, str) and value.strip():
                confine(value, folder, f"{table.name}, row {i + 2}, column {column!r}", base=table.parent)


def check_confined(source: DatasetSource) -> None:
    """Refuse ``source`` when a file its loader reads would resolve outside its folder (module doc)."""
    path, folder = source.path, source.folder
    if path is None:
        return
    if not path.exists():
        raise DataError(f"{source.arg}: no such folder (expected a {source.kind} dataset folder)")
    if path.is_dir():
        for entry in _direct_files(folder):
            confine(entry.path, folder, entry.name)
    else:
        confine(path, folder, path.name)
    if source.kind != "table":
        return
    manifest = discover(path)
    where = MANIFEST_NAME if (folder / MANIFEST_NAME).is_file() or path.suffix == ".json" else folder.name
    if manifest.labels is not None:
        confine(manifest.labels, folder, f"{where}: labels")
    for mod in manifest.modalities:
        table = confine(mod.path, folder, f"{where}: modalities.{mod.name}")
        if mod.kind in ("image", "auto") and table.is_file():
            _check_image_table(table, mod.kind, folder)


def dataset_version(source: DatasetSource) -> str:
    """A cheap key that changes when a data file directly in the folder or named by its manifest
    changes (size or modification time); no tree walk."""
    folder = source.folder
    if folder is None or not folder.is_dir():
        return "absent"
    digest = hashlib.sha256()
    try:
        files = [Path(e.path) for e in _direct_files(folder)]
    except DataError:
        return "unlisted"
    if (folder / MANIFEST_NAME).is_file() or (source.path and source.path.suffix == ".json"):
        try:
            manifest = discover(source.path)
            files += [m.path for m in manifest.modalities] + ([manifest.labels] if manifest.labels else [])
        except (DataError, OSError, ValueError):
            pass  # the load reports it
    for file in sorted(set(files)):
        if not Path(os.path.realpath(file)).is_relative_to(folder):
            continue  # outside the folder: refused by the load, never looked at here
        try:
            st = file.stat()
            digest.update(f"{file}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{file}\0missing\n".encode())
    return digest.hexdigest()[:16]
