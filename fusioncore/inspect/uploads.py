"""Files a dashboard user uploads: checkpoint ``.zip`` archives and samples (CSV tables, images).

Everything uploaded is untrusted. A checkpoint archive is refused when it is not a zip, when a
member would land outside the extraction folder ("zip slip": absolute paths, ``..``, links),
when it would expand beyond :data:`MAX_CHECKPOINT_BYTES`, or when ``config.json`` /
``model.safetensors`` is missing; a corrupt file inside is reported by the checkpoint loader.

Samples: one CSV/TSV per tabular modality (file stem = modality name, first column = sample
id), images as PNG/JPEG/TIFF named after their sample (``S01.png``; ``S01__histology.png`` when
the model has several image modalities) or one single image, and an optional ``labels.csv``
(``sample_id,label``). Tables go through the package's readers (every non-numeric cell is
reported with its row and column) and are matched to the model's feature names by name with
``align_to_schema`` (missing columns are an error listing them, extra columns a note).
"""

from __future__ import annotations

import io
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np

from ..checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError
from ..config import DataSchema, ModalitySpec
from ..data.align import align_to_schema
from ..data.dataset import MultimodalDataset
from ..data.errors import DataError
from ..data.images import ImageLoadError, read_image, to_model_input
from ..data.readers import TABLE_SUFFIXES
from ..data.tables import LABEL_STEMS, ModalityFile, _keyed, read_modality_table

MAX_CHECKPOINT_BYTES = 2 * 1024**3
MAX_CHECKPOINT_FILES = 64
#: Uploaded images above this size are refused (a tile the model sees is 64 x 64; whole slides
#: belong in a dataset folder, not an upload).
UPLOAD_MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


# -- checkpoint archives ------------------------------------------------------------------------


def _safe_member(info: zipfile.ZipInfo, archive: str) -> PurePosixPath | None:
    """The member's relative path, None for folders/metadata; raise for unsafe entries."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise CheckpointError(f"{archive}: member {info.filename!r} points outside the archive folder (refused)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise CheckpointError(f"{archive}: member {info.filename!r} is a symbolic link (refused)")
    if info.is_dir() or path.parts[:1] == ("__MACOSX",) or path.name.startswith("._") or path.name == ".DS_Store":
        return None
    return path


def extract_checkpoint_zip(payload: bytes, dest: str | Path, *, archive_name: str = "upload.zip",
                           max_bytes: int = MAX_CHECKPOINT_BYTES) -> Path:
    """Extract a zipped checkpoint folder into ``dest``; return the folder holding ``config.json``.

    The archive may hold the two files at its root or inside one folder. Nothing is written
    until every member has been checked.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as err:
        raise CheckpointError(f"{archive_name}: not a zip archive ({err}); upload a .zip of a checkpoint folder "
                              f"containing {CONFIG_FILE} and {WEIGHTS_FILE}") from err
    with zf:
        members = [(info, _safe_member(info, archive_name)) for info in zf.infolist()]
        files = [(info, p) for info, p in members if p is not None]
        if len(files) > MAX_CHECKPOINT_FILES:
            raise CheckpointError(f"{archive_name}: {len(files)} files; a checkpoint folder has a handful (refused)")
        total = sum(info.file_size for info, _ in files)
        if total > max_bytes:
            raise CheckpointError(f"{archive_name}: expands to {total / 1e9:.2f} GB, above the {max_bytes / 1e9:.2f} GB limit")
        configs = [p for _, p in files if p.name == CONFIG_FILE]
        if not configs:
            raise CheckpointError(f"{archive_name}: no {CONFIG_FILE} inside; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        if len(configs) > 1:
            raise CheckpointError(f"{archive_name}: {len(configs)} {CONFIG_FILE} files ({', '.join(map(str, configs))}); zip one checkpoint folder")
        root = configs[0].parent
        if not any(p == root / WEIGHTS_FILE for _, p in files):
            raise CheckpointError(f"{archive_name}: no {WEIGHTS_FILE} beside {configs[0]}; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
        for info, path in files:
            target = out.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as err:  # CRC mismatch, truncated member
                raise CheckpointError(f"{archive_name}: member {info.filename!r} is corrupt ({err})") from err
            target.write_bytes(data)
    return out.joinpath(*root.parts) if root.parts else out


def load_checkpoint_zip(payload: bytes, dest: str | Path, *, archive_name: str = "upload.zip", device=None):
    """Extract and load an uploaded checkpoint; every failure is a :class:`CheckpointError`."""
    from ..checkpoint import load

    folder = extract_checkpoint_zip(payload, dest, archive_name=archive_name)
    try:
        return load(folder, device=device)
    except CheckpointError as err:
        raise CheckpointError(f"{archive_name}: {str(err).replace(str(folder) + '/', '')}") from err


# -- uploaded samples -----------------------------------------------------------------------------


def _image_spec(schema: DataSchema) -> list[ModalitySpec]:
    return [m for m in schema.modalities if m.kind == "image"]


def _assign_images(images: list[tuple[str, bytes]], schema: DataSchema, table_ids: list[str]) -> dict[tuple[str, str], tuple[str, bytes]]:
    """(modality, sample id) -> (file name, bytes) following the naming rules of the module doc."""
    specs = _image_spec(schema)
    if images and not specs:
        raise DataError(f"images uploaded ({', '.join(n for n, _ in images)}) but the model has no image modality "
                        f"(its modalities: {', '.join(schema.modality_names)})")
    out: dict[tuple[str, str], tuple[str, bytes]] = {}
    names = [m.name for m in specs]
    for fname, payload in images:
        stem = Path(fname).stem
        sid, _, mod = stem.rpartition("__")
        if not sid or mod not in names:
            sid, mod = stem, names[0] if len(names) == 1 else ""
        if not mod:
            raise DataError(f"{fname}: the model has several image modalities ({', '.join(names)}); "
                            f"name images <sample>__<modality>.png, e.g. S01__{names[0]}.png")
        out[(mod, sid)] = (fname, payload)
    if len(images) == 1 and table_ids and not any(s in table_ids for (_, s) in out):
        (mod, sid), item = next(iter(out.items()))
        if len(table_ids) != 1:
            raise DataError(f"{item[0]}: a single image is matched to a sample by its file name, and {sid!r} is none of "
                            f"the uploaded sample ids ({', '.join(table_ids[:10])}); rename it to <sample id>.png")
        out = {(mod, table_ids[0]): item}
    return out


def read_uploaded_samples(schema: DataSchema, files: Sequence[tuple[str, bytes]], *,
                          max_pixels: int = UPLOAD_MAX_PIXELS, workdir: str | Path | None = None) -> MultimodalDataset:
    """Uploaded ``(file name, bytes)`` pairs as a dataset in ``schema`` (the model's).

    Raises :class:`~fusioncore.data.errors.DataError` / :class:`ImageLoadError` (both
    ``ValueError``) naming the file, row and column, or the missing/unknown modality.
    """
    if not files:
        raise DataError("no files uploaded: upload one CSV per tabular modality and/or images")
    tabular = {m.name: m for m in schema.modalities if m.kind == "tabular"}
    tables, images, labels_file, problems = [], [], None, []
    for fname, payload in files:
        suffix = Path(fname).suffix.lower()
        stem = Path(fname).stem
        if suffix in IMAGE_SUFFIXES:
            images.append((fname, payload))
        elif suffix in TABLE_SUFFIXES:
            if stem.lower() in LABEL_STEMS:
                labels_file = (fname, payload)
            elif stem in tabular:
                tables.append((fname, payload))
            else:
                problems.append(f"{fname}: {stem!r} is not a tabular modality of the model "
                                f"(expected one of: {', '.join(tabular) or 'none'}; name the file <modality>.csv)")
        else:
            problems.append(f"{fname}: unsupported file type {suffix or '(none)'}; expected .csv/.tsv tables or PNG/JPEG/TIFF images")
    if problems:
        raise DataError("some uploaded files cannot be used", problems)
    with tempfile.TemporaryDirectory(prefix="fc-upload-", dir=workdir) as tmp:
        folder = Path(tmp)
        read = []
        for fname, payload in tables:
            path = folder / Path(fname).name
            path.write_bytes(payload)
            spec, rows, values = read_modality_table(ModalityFile(Path(fname).stem, path, "tabular"), None)
            read.append((spec, rows, values))
        label_map = None
        if labels_file is not None:
            path = folder / Path(labels_file[0]).name
            path.write_bytes(labels_file[1])
            frame, ids, _ = _keyed(path, None)
            col = "label" if "label" in frame.columns else frame.columns[0]
            label_map = {sid: str(v).strip() for sid, v in zip(ids, frame[col].tolist())}
        table_ids = list(dict.fromkeys(s for _, rows, _ in read for s in rows))
        assigned = _assign_images(images, schema, table_ids)
        sample_ids = list(dict.fromkeys(table_ids + [s for (_, s) in assigned]))
        n = len(sample_ids)
        specs, features, present = [], {}, []
        for spec, rows, values in read:
            out = np.zeros((n, *spec.shape), dtype=np.float32)
            here = np.zeros(n, dtype=bool)
            for i, sid in enumerate(sample_ids):
                if sid in rows:
                    out[i], here[i] = values[rows[sid]], True
            specs.append(spec)
            features[spec.name] = out
            present.append(here)
        bad = []
        for mspec in _image_spec(schema):
            mine = {s: item for (m, s), item in assigned.items() if m == mspec.name}
            if not mine:
                continue
            c, h, w = mspec.shape
            out = np.zeros((n, c, h, w), dtype=np.float32)
            here = np.zeros(n, dtype=bool)
            for i, sid in enumerate(sample_ids):
                if sid not in mine:
                    continue
                fname, payload = mine[sid]
                path = folder / f"img-{i}{Path(fname).suffix.lower()}"
                path.write_bytes(payload)
                try:
                    out[i] = to_model_input(read_image(path, max_pixels=max_pixels).pixels, (h, w))
                    here[i] = True
                except ImageLoadError as err:
                    bad.append(f"{fname}: {str(err).replace(str(path) + ': ', '')}")
            specs.append(ModalitySpec(mspec.name, "image", (c, h, w)))
            features[mspec.name] = out
            present.append(here)
        if bad:
            raise ImageLoadError("uploaded image(s) cannot be used (expected PNG, JPEG or TIFF):\n  " + "\n  ".join(bad))
    labels, classes = None, schema.classes
    if label_map is not None:
        missing = [s for s in sample_ids if s not in label_map]
        unknown = sorted({v for v in label_map.values() if v not in classes})
        if unknown:
            raise DataError(f"{labels_file[0]}: label(s) {unknown} are not classes of the model ({list(classes)})")
        if missing:
            raise DataError(f"{labels_file[0]}: no label for sample(s) {missing[:10]}")
        labels = np.array([classes.index(label_map[s]) for s in sample_ids], dtype=np.int64)
    data = MultimodalDataset(
        schema=DataSchema(tuple(specs), classes),
        features=features,
        present=np.stack(present, axis=1) if present else np.zeros((n, 0), dtype=bool),
        labels=labels,
        sample_ids=tuple(sample_ids),
        source="uploaded samples",
    )
    return align_to_schema(data, schema)
