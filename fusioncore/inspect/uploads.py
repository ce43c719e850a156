"""Files a dashboard user uploads: checkpoint ``.zip`` archives and samples (CSV tables, images).

Everything uploaded is untrusted. Of a checkpoint archive only ``config.json`` and
``model.safetensors`` are ever written, to a private folder (0700) removed once the model is
loaded; the archive is refused when it is not a zip, when a member names a path outside the
archive ("zip slip": absolute paths, ``..``, links), when a member is encrypted or compressed
with a method Python cannot read (Deflate64), when either file is missing, or when a file
inflates beyond what the model its config describes can need (a zip bomb: the stream stops at
the cap, whatever the archive claims). A corrupt file inside is reported by the checkpoint
loader. Messages name the archive and its members, never a server folder.

Samples: one CSV/TSV per tabular modality (file stem = modality name, first column = sample
id), images as PNG/JPEG/TIFF named after their sample (``S01.png``; ``S01__histology.png`` when
the model has several image modalities) or one single image, and an optional ``labels.csv``
(``sample_id,label``). Tables and images go through the package's readers, which read the
uploaded bytes themselves (nothing is written to disk; every non-numeric cell is reported with
its row and column), are joined by sample id with ``data.assemble`` and matched to the model's
feature names by name with ``align_to_schema`` (missing columns are an error listing them, extra
columns a note).
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np

from ..checkpoint import CONFIG_FILE, MAX_CONFIG_BYTES, WEIGHTS_FILE, CheckpointError, weights_nbytes
from ..config import DataSchema, ModalitySpec
from ..data.align import align_to_schema
from ..data.assemble import assemble
from ..data.dataset import MultimodalDataset
from ..data.errors import DataError
from ..data.images import ImageLoadError, read_image, to_model_input
from ..data.readers import TABLE_SUFFIXES
from ..data.tables import LABEL_STEMS, ModalityFile, read_keyed_table, read_modality_table

#: The most bytes ever written for an uploaded checkpoint's weights, whatever its config says.
MAX_CHECKPOINT_BYTES = 2 * 1024**3
#: Room for the safetensors header (names, shapes, offsets) beyond the tensors' own bytes.
HEADER_SLACK_BYTES = 16 * 1024**2
MAX_CHECKPOINT_FILES = 64
CHUNK_BYTES = 1 << 20
#: Compression methods Python's zipfile decompresses, and names of common ones it does not.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
UNSUPPORTED_ZIP_METHODS = {9: "Deflate64", 98: "PPMd", 99: "WinZip AES encryption", 93: "Zstandard", 95: "xz"}
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


def _readable(info: zipfile.ZipInfo, archive: str) -> zipfile.ZipInfo:
    """``info`` if Python's zipfile can decompress it without a password; else a clear refusal."""
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{archive}: {info.filename} is encrypted (password-protected); zip the checkpoint "
                              "folder without a password")
    if info.compress_type not in ZIP_METHODS:
        method = UNSUPPORTED_ZIP_METHODS.get(info.compress_type, f"method {info.compress_type}")
        raise CheckpointError(f"{archive}: {info.filename} is compressed with {method}, which cannot be read here; "
                              "zip it again with standard Deflate (e.g. `zip -r ckpt.zip ckpt/` or Python's zipfile; "
                              "Windows Explorer uses Deflate64 for large files)")
    return info


def _checkpoint_members(zf: zipfile.ZipFile, archive: str) -> tuple[zipfile.ZipInfo, zipfile.ZipInfo]:
    """The archive's ``config.json`` and the ``model.safetensors`` beside it (at the root or in one folder)."""
    members = [(info, _safe_member(info, archive)) for info in zf.infolist()]
    files = [(info, p) for info, p in members if p is not None]
    if len(files) > MAX_CHECKPOINT_FILES:
        raise CheckpointError(f"{archive}: {len(files)} files; a checkpoint folder has a handful (refused)")
    configs = [(info, p) for info, p in files if p.name == CONFIG_FILE]
    if not configs:
        raise CheckpointError(f"{archive}: no {CONFIG_FILE} inside; a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    if len(configs) > 1:
        raise CheckpointError(f"{archive}: {len(configs)} {CONFIG_FILE} files ({', '.join(str(p) for _, p in configs)}); "
                              "zip one checkpoint folder")
    config, root = configs[0][0], configs[0][1].parent
    weights = [info for info, p in files if p == root / WEIGHTS_FILE]
    if not weights:
        raise CheckpointError(f"{archive}: no {WEIGHTS_FILE} beside {configs[0][1]}; a checkpoint folder needs "
                              f"{CONFIG_FILE} and {WEIGHTS_FILE}")
    return _readable(config, archive), _readable(weights[0], archive)


def _extract_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, cap: int, archive: str) -> int:
    """Stream one member to ``target`` (mode 0600), stopping before more than ``cap`` bytes are written.

    The sizes in a zip's directory are the archive's own claim; only the decompressed stream
    counts, so a member that says 1 kB and inflates to gigabytes stops at ``cap``.
    """
    what = f"{archive}: {info.filename}"
    if info.file_size > cap:
        raise CheckpointError(f"{what} would expand to {info.file_size / 1e6:,.1f} MB, more than the "
                              f"{cap / 1e6:,.1f} MB this checkpoint can need (refused unextracted)")
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(CHUNK_BYTES):
                if written + len(chunk) > cap:
                    raise CheckpointError(f"{what} expands beyond {cap / 1e6:,.1f} MB, more than this checkpoint can "
                                          "need (a zip bomb or a corrupt archive; refused)")
                out.write(chunk)
                written += len(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # CRC mismatch, truncated member
        raise CheckpointError(f"{what} is corrupt ({err})") from err
    return written


def _open_zip(payload: bytes, archive: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(payload))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"{archive}: not a zip archive ({err}); upload a .zip of a checkpoint folder "
                              f"containing {CONFIG_FILE} and {WEIGHTS_FILE}") from err


def _without_folder(err: ValueError, folder: Path, archive: str) -> CheckpointError:
    """``err`` re-worded for the user: the server's extraction folder replaced by the archive name."""
    return CheckpointError(str(err).replace(str(folder) + os.sep, f"{archive}: ").replace(str(folder), archive))


def extract_checkpoint_zip(payload: bytes, dest: str | Path, *, archive_name: str = "upload.zip",
                           max_bytes: int = MAX_CHECKPOINT_BYTES) -> Path:
    """Extract a zipped checkpoint's ``config.json`` and ``model.safetensors`` into ``dest``; return it.

    Nothing else in the archive is written. ``config.json`` is extracted first (at most
    :data:`~fusioncore.checkpoint.MAX_CONFIG_BYTES`) and validated; the model it describes is
    sized without allocating it, and the weights are then streamed with a cap of the bytes
    that model needs (plus its header), never more than ``max_bytes``.
    """
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _open_zip(payload, archive_name) as zf:
        config, weights = _checkpoint_members(zf, archive_name)
        _extract_capped(zf, config, out / CONFIG_FILE, MAX_CONFIG_BYTES, archive_name)
        try:
            need = weights_nbytes(out)
        except CheckpointError as err:
            raise _without_folder(err, out, archive_name) from err
        cap = min(max_bytes, need + HEADER_SLACK_BYTES)
        _extract_capped(zf, weights, out / WEIGHTS_FILE, cap, archive_name)
    return out


def load_checkpoint_zip(payload: bytes, workdir: str | Path | None = None, *, archive_name: str = "upload.zip",
                        device=None):
    """Extract and load an uploaded checkpoint; every failure is a :class:`CheckpointError`.

    The two files go to a fresh private folder (0700) under ``workdir`` (the system's temporary
    folder by default) that is removed as soon as the model is in memory, loaded or not.
    Messages name the archive, never the server folder.
    """
    from ..checkpoint import load

    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="fc-checkpoint-", dir=workdir) as tmp:
        folder = Path(tmp)
        extract_checkpoint_zip(payload, folder, archive_name=archive_name)
        try:
            model = load(folder, device=device)
        except CheckpointError as err:
            raise _without_folder(err, folder, archive_name) from err
    model.checkpoint_path = None  # the extraction folder is gone; provenance names the upload
    return model


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


def _sort_uploads(schema: DataSchema, files: Sequence[tuple[str, bytes]]):
    """(tables, images, labels file or None) of the uploads; one error listing every unusable file."""
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
    return tables, images, labels_file


def _read_labels(labels_file: tuple[str, bytes]) -> dict[str, str]:
    """Sample id -> label of an uploaded ``labels.csv`` (the ``label`` column, else the second)."""
    frame, ids, key = read_keyed_table(Path(Path(labels_file[0]).name), None, data=labels_file[1])
    if frame.shape[1] == 0:
        raise DataError(f"{labels_file[0]}: only a sample-id column ({key!r}); a labels table needs two columns, "
                        "e.g. sample_id,label")
    col = "label" if "label" in frame.columns else frame.columns[0]
    return {sid: str(v).strip() for sid, v in zip(ids, frame[col].tolist())}


def _read_tables(tables: list[tuple[str, bytes]]):
    """``(spec, sample id -> row, values)`` of each uploaded table, read from its bytes."""
    return [read_modality_table(ModalityFile(Path(fname).stem, Path(Path(fname).name), "tabular", data=payload), None)
            for fname, payload in tables]


def _read_images(schema: DataSchema, assigned, sample_ids: list[str], max_pixels: int):
    """``(spec, sample ids, (r, C, H, W) inputs)`` per image modality with uploads; one error
    listing every bad image."""
    read, bad = [], []
    for mspec in _image_spec(schema):
        mine = {s: item for (m, s), item in assigned.items() if m == mspec.name}
        if not mine:
            continue
        c, h, w = mspec.shape
        ids, values = [], []
        for sid in (s for s in sample_ids if s in mine):
            fname, payload = mine[sid]
            try:
                values.append(to_model_input(read_image(payload, max_pixels=max_pixels, name=fname).pixels, (h, w)))
                ids.append(sid)
            except ImageLoadError as err:
                bad.append(f"{fname}: {str(err).replace(str(Path(fname)) + ': ', '', 1)}")
        read.append((ModalitySpec(mspec.name, "image", (c, h, w)), ids,
                     np.stack(values) if values else np.zeros((0, c, h, w), dtype=np.float32)))
    if bad:
        raise ImageLoadError("uploaded image(s) cannot be used (expected PNG, JPEG or TIFF):\n  " + "\n  ".join(bad))
    return read


def _label_indices(label_map: dict[str, str], fname: str, sample_ids: list[str], classes) -> np.ndarray:
    missing = [s for s in sample_ids if s not in label_map]
    unknown = sorted({v for v in label_map.values() if v not in classes})
    if unknown:
        raise DataError(f"{fname}: label(s) {unknown} are not classes of the model ({list(classes)})")
    if missing:
        raise DataError(f"{fname}: no label for sample(s) {missing[:10]}")
    return np.array([classes.index(label_map[s]) for s in sample_ids], dtype=np.int64)


def read_uploaded_samples(schema: DataSchema, files: Sequence[tuple[str, bytes]], *,
                          max_pixels: int = UPLOAD_MAX_PIXELS) -> MultimodalDataset:
    """Uploaded ``(file name, bytes)`` pairs as a dataset in ``schema`` (the model's).

    The package's readers read the bytes themselves (nothing is written to disk). Raises
    :class:`~fusioncore.data.errors.DataError` / :class:`ImageLoadError` (both ``ValueError``)
    naming the uploaded file, row and column, or the missing/unknown modality.
    """
    if not files:
        raise DataError("no files uploaded: upload one CSV per tabular modality and/or images")
    tables, images, labels_file = _sort_uploads(schema, files)
    read = _read_tables(tables)
    label_map = None if labels_file is None else _read_labels(labels_file)
    table_ids = list(dict.fromkeys(s for _, rows, _ in read for s in rows))
    assigned = _assign_images(images, schema, table_ids)
    sample_ids = list(dict.fromkeys(table_ids + [s for (_, s) in assigned]))
    keyed = [(spec, rows, values) for spec, rows, values in read] + _read_images(schema, assigned, sample_ids, max_pixels)
    features, present = assemble(sample_ids, [(spec.name, rows, values) for spec, rows, values in keyed])
    labels = None if label_map is None else _label_indices(label_map, labels_file[0], sample_ids, schema.classes)
    data = MultimodalDataset(
        schema=DataSchema(tuple(spec for spec, _, _ in keyed), schema.classes),
        features=features,
        present=present,
        labels=labels,
        sample_ids=tuple(sample_ids),
        source="uploaded samples",
    )
    return align_to_schema(data, schema)
