"""Safe image loading for the image modality (PNG, JPEG, TIFF).

Every image the package reads goes through :func:`read_image`, which

* accepts PNG, JPEG and TIFF only, and says so when given anything else (a text file, a GIF);
* refuses truncated or corrupt files and decompression bombs (a tiny file that claims a huge
  canvas) before decoding them;
* converts to 8-bit RGB and *states* the conversion (grayscale replicated to three channels,
  alpha composited over white, 16-bit rescaled), so nothing is silently reinterpreted;
* turns the image upright as its EXIF orientation tag says (a phone or scanner photo stored
  sideways), and says so;
* reads the first frame of a multi-page TIFF or an animated PNG and says that it did
  (:attr:`LoadedImage.frames`; :func:`load_image_column` reports the rows).

Images become model inputs with :func:`to_model_input` (:data:`INPUT_RULE`: scaled with
Pillow's bilinear filter to cover the model's ``H x W`` keeping the aspect ratio, centre-cropped,
``[0, 1]`` float32, channels first) — §5b's ``Resize(64) + ToTensor`` for square tiles, and no
squashing for the others. :func:`load_image_column` loads a whole table column at once and
reports *every* bad row in one error.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .readers import read_table, source_bytes

SUPPORTED_FORMATS = ("PNG", "JPEG", "TIFF")
#: Largest canvas accepted by default: 144 megapixels (an 8k x 8k tile is 67 MP). Larger files
#: are refused as possible decompression bombs unless the caller raises ``max_pixels``.
DEFAULT_MAX_PIXELS = 12_000 * 12_000
#: Pillow's own decompression-bomb guard set to the same figure, so that every image Pillow opens
#: in this process warns at the documented limit rather than at Pillow's default 89.5 MP.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
GRAY_VALUE = 0.5
#: How :func:`to_model_input` brings an image to the model's input size (shown to users).
INPUT_RULE = ("scaled (bilinear, aspect ratio kept) until it covers the model's input size, then centre-cropped; "
              "never squashed")


class ImageLoadError(ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``pixels`` ``(H, W, 3)`` uint8 RGB, plus what was done to get there."""

    pixels: np.ndarray
    source_format: str
    source_mode: str
    conversion: str  # human sentence, e.g. "RGBA -> RGB: alpha composited over white"
    frames: int = 1  # frames in the file (multi-page TIFF, animated PNG); only the first is used


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, str]:
    """Convert any Pillow mode to ``(H, W, 3)`` uint8 RGB and describe the conversion."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8), "RGB (no conversion)"
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
        rgba = img.convert("RGBA")
        if has_alpha:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
            return np.asarray(rgb, dtype=np.uint8), f"{mode} -> RGB: alpha composited over white"
        return np.asarray(rgba.convert("RGB"), dtype=np.uint8), f"{mode} -> RGB: palette expanded"
    if mode in ("L", "1"):
        gray = np.asarray(img.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), f"{mode} (grayscale) -> RGB: replicated to 3 channels"
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return (
            np.repeat(gray[..., None], 3, axis=2),
            f"{mode} (grayscale, >8-bit) -> RGB: scaled by 255/{top:g} and replicated to 3 channels",
        )
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB"), dtype=np.uint8), f"{mode} -> RGB: colour space converted by Pillow"
    raise ImageLoadError(f"image mode {mode!r} is not supported (expected RGB, RGBA, grayscale or palette)")


def _check_file(path: Path) -> None:
    try:
        path.stat()
    except PermissionError as err:
        raise ImageLoadError(f"{path}: permission denied (this user may not open a folder on its path)") from err
    except OSError as err:
        raise ImageLoadError(f"{path}: no such file") from err
    if not path.is_file():
        raise ImageLoadError(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise ImageLoadError(f"{path}: permission denied (this user may not read this file)")


def read_image(source, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | Path | None = None) -> LoadedImage:
    """Decode an image to 8-bit RGB, refusing non-images, truncated files and bombs.

    ``source``: a path, or the image's bytes / a binary file-like object (an upload: nothing is
    written to disk) named ``name`` in the messages. Raises :class:`ImageLoadError` (a
    ``ValueError``) naming the file and the reason.
    """
    path, data = source_bytes(source, name)
    if data is None:
        _check_file(path)
    try:
        with warnings.catch_warnings():
            # above Pillow's guard only when the caller raised max_pixels on purpose
            warnings.simplefilter("error" if max_pixels <= Image.MAX_IMAGE_PIXELS else "ignore", Image.DecompressionBombWarning)
            with Image.open(path if data is None else io.BytesIO(data)) as img:
                fmt = img.format or "unknown"
                if fmt not in SUPPORTED_FORMATS:
                    raise ImageLoadError(
                        f"{path}: {fmt} images are not supported; use PNG, JPEG or TIFF"
                    )
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLoadError(
                        f"{path}: {w}x{h} = {w * h / 1e6:.1f} megapixels exceeds the limit of "
                        f"{max_pixels / 1e6:.1f} MP (possible decompression bomb); raise max_pixels if it is genuine"
                    )
                if w == 0 or h == 0:
                    raise ImageLoadError(f"{path}: empty image ({w}x{h})")
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                frames = int(getattr(img, "n_frames", 1) or 1)
                img.load()
                mode = img.mode
                upright = ImageOps.exif_transpose(img)
                turned = upright is not img and img.getexif().get(0x0112, 1) not in (1, None)
                pixels, note = _to_rgb(upright)
                if turned:
                    note += f"; turned upright as its EXIF orientation ({img.getexif().get(0x0112)}) says"
                if frames > 1:
                    note += f"; the first of its {frames} frames used"
    except ImageLoadError:
        raise
    except PermissionError as err:
        raise ImageLoadError(f"{path}: permission denied (this user may not read this file)") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(f"{path}: refused as a possible decompression bomb ({err})") from err
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{path}: not an image file (expected PNG, JPEG or TIFF)") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageLoadError(f"{path}: truncated or corrupt image ({err})") from err
    return LoadedImage(pixels=pixels, source_format=fmt, source_mode=mode, conversion=note, frames=frames)


def to_model_input(pixels: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(3, h, w)`` float32 in [0, 1] for a model input ``size=(h, w)``.

    The rule (:data:`INPUT_RULE`): scale bilinearly, keeping the aspect ratio, until the image
    covers ``size``, then crop the centre — never squash. A square image into a square input is
    a plain resize (as before the rule was stated); a 1000 x 500 image into 64 x 64 becomes
    128 x 64 and keeps its central 64 columns.
    """
    if size is not None and tuple(pixels.shape[:2]) != tuple(size):
        h, w = pixels.shape[:2]
        out_h, out_w = int(size[0]), int(size[1])
        scale = max(out_h / h, out_w / w)
        new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
        img = Image.fromarray(pixels).resize((new_w, new_h), Image.Resampling.BILINEAR)
        top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
        pixels = np.asarray(img, dtype=np.uint8)[top : top + out_h, left : left + out_w]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def load_image(path: str | Path, size: tuple[int, int] | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One image file -> ``(3, H, W)`` float32 in [0, 1] (resized to ``size`` when given)."""
    return to_model_input(read_image(path, max_pixels=max_pixels).pixels, size)


def _folder_of(table_path: str | Path) -> Path:
    table_path = Path(table_path)
    return table_path if table_path.is_dir() else table_path.parent


def load_image_column(
    table_path: str | Path,
    sample_ids: Sequence[str],
    paths: Sequence[object],
    size: tuple[int, int] = (64, 64),
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    report: list[str] | None = None,
    warn: list[str] | None = None,
) -> np.ndarray:
    """Load the image of every row of a table: ``(N, 3, H, W)`` float32 in [0, 1].

    ``paths[i]`` is the image of ``sample_ids[i]``, relative to the folder of ``table_path``
    (or absolute). Every row is tried; if any fails, ONE :class:`ImageLoadError` lists every
    bad row (row number counted from 1 after the header, sample id, path, reason), so a user
    fixes the whole table in one pass. What a user should know about the images that loaded
    is appended to ``report`` (EXIF rotations: the dataset's notes) and ``warn`` (multi-frame
    files of which only the first frame was used: the dataset's warnings).
    """
    if len(sample_ids) != len(paths):
        raise ValueError(f"{table_path}: {len(sample_ids)} sample ids but {len(paths)} image paths")
    folder = _folder_of(table_path)
    h, w = (int(s) for s in size)
    out = np.zeros((len(paths), 3, h, w), dtype=np.float32)
    bad: list[str] = []
    multi: list[str] = []
    turned: list[str] = []
    for i, (sid, raw) in enumerate(zip(sample_ids, paths)):
        where = f"row {i + 1} (sample {sid!r}, path {raw!r})"
        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or not str(raw).strip():
            bad.append(f"{where}: empty image path")
            continue
        file = Path(str(raw).strip())
        file = file if file.is_absolute() else folder / file
        try:
            loaded = read_image(file, max_pixels=max_pixels)
            out[i] = to_model_input(loaded.pixels, (h, w))
        except ImageLoadError as err:
            bad.append(f"{where}: {str(err).replace(str(file) + ': ', '')}")
            continue
        if loaded.frames > 1:
            multi.append(f"row {i + 1} ({loaded.frames} frames)")
        if "EXIF orientation" in loaded.conversion:
            turned.append(f"row {i + 1}")
    if bad:
        raise ImageLoadError(
            f"{table_path}: {len(bad)} of {len(paths)} image(s) could not be loaded "
            f"(paths are relative to {folder}):\n  " + "\n  ".join(bad)
        )
    name = Path(table_path).name
    if multi and warn is not None:
        warn.append(f"{name}: {len(multi)} image(s) have several frames (multi-page TIFF or animated PNG); only the "
                      f"first frame of each was used: {', '.join(multi[:10])}{' ...' if len(multi) > 10 else ''}")
    if turned and report is not None:
        report.append(f"{name}: {len(turned)} image(s) turned upright as their EXIF orientation says: "
                      f"{', '.join(turned[:10])}{' ...' if len(turned) > 10 else ''}")
    return out


def load_image_table(
    table_path: str | Path,
    *,
    id_column: str | None = None,
    path_column: str | None = None,
    size: tuple[int, int] = (64, 64),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[tuple[str, ...], np.ndarray]:
    """Read a CSV/TSV mapping sample id -> image path; return ``(sample_ids, (N, 3, H, W))``.

    Defaults: the first column holds sample ids; the path column is the one named ``path`` or
    ``image`` (or the only other column).
    """
    table_path = Path(table_path)
    table = read_table(table_path)  # the package's one table reader: separator, encoding, file errors
    if table.shape[1] < 2:
        raise ValueError(f"{table_path}: an image table needs a sample-id column and a path column, got {list(table.columns)}")
    id_column = id_column or table.columns[0]
    if path_column is None:
        named = [c for c in table.columns if c.strip().lower() in ("path", "image", "file", "image_path")]
        others = [c for c in table.columns if c != id_column]
        if named:
            path_column = named[0]
        elif len(others) == 1:
            path_column = others[0]
        else:
            raise ValueError(f"{table_path}: cannot tell which column holds image paths; name it 'path' or 'image'")
    for col in (id_column, path_column):
        if col not in table.columns:
            raise ValueError(f"{table_path}: no column {col!r}; columns are {list(table.columns)}")
    ids = tuple(str(s) for s in table[id_column])
    dup = sorted({s for s in ids if ids.count(s) > 1})
    if dup:
        raise ValueError(f"{table_path}: duplicate sample ids in column {id_column!r}: {dup[:10]}")
    return ids, load_image_column(table_path, ids, list(table[path_column]), size, max_pixels=max_pixels)


def mask_images(data, value: float = GRAY_VALUE, modalities: Sequence[str] | None = None):
    """The same :class:`MultimodalDataset` with every image replaced by a constant gray image.

    This is the paper's "image masked at test time" (§5a, second table of §5c): the image is
    still *present* (the model sees it and weights it), but it carries no information. Only
    image modalities (or the named ``modalities``) change; presence flags are kept.
    """
    names = [m.name for m in data.schema.modalities if m.kind == "image"] if modalities is None else list(modalities)
    if not names:
        raise ValueError(f"{data.source or 'dataset'}: no image modality to mask (modalities: {data.modality_names})")
    features = dict(data.features)
    for name in names:
        if data.schema.modality(name).kind != "image":
            raise ValueError(f"modality {name!r} is {data.schema.modality(name).kind}, not an image; cannot gray-mask it")
        features[name] = np.full_like(data.features[name], np.float32(value))
    return replace(data, features=features, notes=tuple(data.notes) + (f"images {names} masked to gray {value}",))
