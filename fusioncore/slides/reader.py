"""Open whole-slide images: OpenSlide first, tiffslide (tifffile) for the pyramidal TIFFs it cannot read.

A :class:`Slide` exposes what every later step needs — level dimensions and downsamples, microns
per pixel, objective power — and reads regions as ``(h, w, 3)`` uint8 RGB composited over white
(glass), whatever the backend: OpenSlide returns transparent pixels outside a slide's scanned
area and tiffslide pads with black, and neither should reach a model as tissue.

The backends:

* **OpenSlide** (the ``openslide-python`` + ``openslide-bin`` wheels: no system library) reads
  Aperio ``.svs``, Hamamatsu ``.ndpi``, MIRAX ``.mrxs``, Leica ``.scn``, Philips, Ventana, DICOM
  and generic tiled TIFFs whose pyramid levels are successive directories.
* **tiffslide** reads plain TIFFs OpenSlide cannot: pyramids stored in SubIFDs (the OME-TIFF
  layout tifffile writes), stripped TIFFs. It is chosen when OpenSlide does not recognise a TIFF,
  or when it finds more pyramid levels in it than OpenSlide does.

:class:`Slide` also answers the OpenSlide API (``read_region`` returning RGBA, ``properties``,
``get_best_level_for_downsample``), so :class:`openslide.deepzoom.DeepZoomGenerator` cuts viewer
tiles from either backend.

Refused with a :class:`SlideError` naming the file: a missing file, a format neither backend
reads, and a truncated or corrupt file — every tile of a TIFF-based slide must lie inside the
file, and a probe read of the smallest level must decode — so a bad slide fails when it is
opened, not an hour into a run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: File suffixes the dashboard's upload accepts (what the two backends read).
SLIDE_SUFFIXES = ("svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif", "dcm")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class SlideError(ValueError):
    """A slide that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class SlideInfo:
    """What a slide says about itself (JSON-ready).

    ``mpp`` is ``(x, y)`` microns per level-0 pixel, None when the file does not say it.
    """

    path: str
    backend: str
    vendor: str | None
    dimensions: tuple[int, int]
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: tuple[float, float] | None
    objective_power: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "backend": self.backend,
            "vendor": self.vendor,
            "dimensions": list(self.dimensions),
            "level_dimensions": [list(d) for d in self.level_dimensions],
            "level_downsamples": list(self.level_downsamples),
            "mpp": list(self.mpp) if self.mpp else None,
            "objective_power": self.objective_power,
        }


class Slide:
    """An open slide (use as a context manager, or call :meth:`close`)."""

    def __init__(self, path: Path, handle: Any, backend: str) -> None:
        self.path = path
        self._handle = handle
        self.backend = backend
        prefix = "openslide" if backend == "openslide" else "tiffslide"
        self._prefix = prefix
        self.properties = dict(handle.properties)
        self.level_dimensions = tuple((int(w), int(h)) for w, h in handle.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in handle.level_downsamples)
        self.info = SlideInfo(
            path=str(path),
            backend=backend,
            vendor=self.properties.get(f"{prefix}.vendor"),
            dimensions=self.level_dimensions[0],
            level_dimensions=self.level_dimensions,
            level_downsamples=self.level_downsamples,
            mpp=_mpp(self.properties, prefix),
            objective_power=_float(self.properties.get(f"{prefix}.objective-power")),
        )

    # -- the OpenSlide API (what DeepZoomGenerator uses) --------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    @property
    def color_profile(self):
        return getattr(self._handle, "color_profile", None)

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """The level with the largest downsample not above ``downsample`` (level 0 below 1)."""
        best = 0
        for level, d in enumerate(self.level_downsamples):
            if d <= downsample + 1e-9:
                best = level
        return best

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> Image.Image:
        """RGBA region (OpenSlide's API): ``location`` in level-0 px, ``size`` in level px."""
        rgb = self.read_rgb(location, level, size)
        return Image.fromarray(rgb).convert("RGBA")

    @property
    def openslide_api(self):
        """An object with OpenSlide's API for :class:`openslide.deepzoom.DeepZoomGenerator`: the
        OpenSlide handle itself when that is the backend (no conversions per viewer tile), else this."""
        return self._handle if self.backend == "openslide" else self

    # -- what fusioncore uses -----------------------------------------------------------------
    def read_rgb(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """``(h, w, 3)`` uint8 of the ``size = (w, h)`` region at ``level`` whose top-left is
        ``location`` (level-0 px); what lies outside the slide or its scanned area is white."""
        w, h = int(size[0]), int(size[1])
        if not 0 <= level < self.level_count:
            raise SlideError(f"{self.path}: level {level} does not exist (levels 0-{self.level_count - 1})")
        ds = self.level_downsamples[level]
        lw, lh = self.level_dimensions[level]
        x0, y0 = int(location[0]), int(location[1])
        # the part of the request inside the level, in level px
        lx0, ly0 = max(0, int(np.floor(x0 / ds))), max(0, int(np.floor(y0 / ds)))
        ox, oy = lx0 - int(np.floor(x0 / ds)), ly0 - int(np.floor(y0 / ds))
        rw, rh = min(w - ox, lw - lx0), min(h - oy, lh - ly0)
        out = np.full((h, w, 3), 255, dtype=np.uint8)
        if rw <= 0 or rh <= 0:
            return out
        origin = (int(round(lx0 * ds)) if ox else x0, int(round(ly0 * ds)) if oy else y0)
        try:
            region = self._handle.read_region(origin, level, (rw, rh))
        except Exception as err:  # noqa: BLE001 -- backends raise their own types; name the file
            raise SlideError(f"{self.path}: cannot read the region at {origin} (level {level}, {rw} x {rh} px): "
                             f"{err}. The file may be truncated or corrupt.") from err
        out[oy : oy + rh, ox : ox + rw] = _on_white(region)
        return out

    def thumbnail(self, max_side: int, block: int = 128) -> tuple[np.ndarray, float]:
        """``(pixels, downsample)``: the whole slide with its longest side <= ``max_side``.

        Read from the smallest level that is still at least that large, ``block`` output px at a
        time (box-filtered), so a slide without a pyramid never has a whole level in memory.
        """
        w0, h0 = self.dimensions
        level = self.get_best_level_for_downsample(max(max(w0, h0) / max_side, 1.0))
        lw, lh = self.level_dimensions[level]
        scale = max(1.0, max(lw, lh) / max_side)
        tw, th = max(1, round(lw / scale)), max(1, round(lh / scale))
        sx, sy = lw / tw, lh / th
        ds = self.level_downsamples[level]
        out = np.empty((th, tw, 3), dtype=np.uint8)
        for r0 in range(0, th, block):
            r1 = min(th, r0 + block)
            y0, y1 = int(np.floor(r0 * sy)), min(lh, int(np.ceil(r1 * sy)))
            for c0 in range(0, tw, block):
                c1 = min(tw, c0 + block)
                x0, x1 = int(np.floor(c0 * sx)), min(lw, int(np.ceil(c1 * sx)))
                region = self.read_rgb((int(round(x0 * ds)), int(round(y0 * ds))), level, (x1 - x0, y1 - y0))
                if region.shape[:2] != (r1 - r0, c1 - c0):
                    region = np.asarray(Image.fromarray(region).resize((c1 - c0, r1 - r0), Image.Resampling.BOX))
                out[r0:r1, c0:c1] = region
        return out, float(w0 / tw)

    def identity(self) -> dict[str, Any]:
        """Name, size, modification time and a hash of the first and last MiB: enough to tell
        whether a resumed run is looking at the same file, without reading gigabytes."""
        st = self.path.stat()
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            digest.update(fh.read(1 << 20))
            if st.st_size > 1 << 20:
                fh.seek(max(0, st.st_size - (1 << 20)))
                digest.update(fh.read(1 << 20))
        return {"name": self.path.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": digest.hexdigest()}

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Slide({str(self.path)!r}, backend={self.backend!r}, dimensions={self.dimensions})"


def _on_white(region: Image.Image) -> np.ndarray:
    """A backend's region as RGB over white (alpha 0 = not scanned = glass)."""
    if region.mode == "RGBA":
        white = Image.new("RGBA", region.size, (255, 255, 255, 255))
        region = Image.alpha_composite(white, region)
    return np.asarray(region.convert("RGB"), dtype=np.uint8)


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) and out > 0 else None


def _mpp(props: dict[str, str], prefix: str) -> tuple[float, float] | None:
    """Microns per pixel from the backend's property, else the TIFF resolution tags."""
    x, y = _float(props.get(f"{prefix}.mpp-x")), _float(props.get(f"{prefix}.mpp-y"))
    if x is None:
        unit = str(props.get("tiff.ResolutionUnit", "")).lower()
        per = {"centimeter": 1e4, "inch": 25400.0}.get(unit)
        xres, yres = _float(props.get("tiff.XResolution")), _float(props.get("tiff.YResolution"))
        if per and xres:
            x, y = per / xres, per / (yres or xres)
    if x is None:
        return None
    return float(x), float(y or x)


@contextmanager
def _quiet_tifffile():
    """tifffile logs a warning for each bad offset it meets; we raise one clear error instead."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in TIFF_MAGIC


def _tiff_levels(path: Path) -> int:
    """How many pyramid levels tifffile (tiffslide) finds in a TIFF (0 when it cannot read it)."""
    import tifffile

    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            return len(tif.series[0].levels) if tif.series else 0
    except Exception:  # noqa: BLE001 -- any failure means "tifffile cannot read this"
        return 0


def check_tiff_complete(path: Path) -> None:
    """Refuse a TIFF whose tiles or strips point past the end of the file (a truncated copy)."""
    import tifffile

    size = path.stat().st_size
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            if len(tif.pages) == 0:
                raise SlideError(f"{path}: truncated or corrupt: the TIFF header points to no readable image "
                                 f"directory ({size:,} bytes)")
            for index, page in enumerate(tif.pages):
                offsets = np.asarray(page.dataoffsets, dtype=np.int64)
                counts = np.asarray(page.databytecounts, dtype=np.int64)
                if offsets.size and int((offsets + counts).max()) > size:
                    missing = int(((offsets + counts) > size).sum())
                    raise SlideError(f"{path}: truncated: {missing} of {offsets.size} tiles of image {index} "
                                     f"lie past the end of the file ({size:,} bytes)")
    except SlideError:
        raise
    except Exception as err:  # noqa: BLE001 -- tifffile's own errors: name the file
        raise SlideError(f"{path}: not a readable TIFF: {err}") from err


def _open_backend(path: Path) -> tuple[Any, str]:
    import openslide

    fmt = openslide.OpenSlide.detect_format(str(path))
    tiff = _is_tiff(path)
    if fmt is not None:
        try:
            handle = openslide.OpenSlide(str(path))
        except openslide.OpenSlideError as err:
            raise SlideError(f"{path}: OpenSlide recognises it as {fmt} but cannot open it: {err}. "
                             "The file may be truncated or corrupt.") from err
        if not tiff or _tiff_levels(path) <= handle.level_count:
            return handle, "openslide"
        handle.close()  # a pyramid in SubIFDs: OpenSlide sees only its first level
    if tiff:
        import tiffslide

        try:
            return tiffslide.TiffSlide(str(path)), "tiffslide"
        except Exception as err:  # noqa: BLE001 -- tiffslide/tifffile raise many types
            raise SlideError(f"{path}: a TIFF neither OpenSlide nor tifffile can read as a slide: {err}") from err
    raise SlideError(f"{path}: not a slide format OpenSlide reads (Aperio .svs, Hamamatsu .ndpi, MIRAX .mrxs, "
                     "Leica .scn, Philips/Ventana/generic tiled TIFF, DICOM) nor a TIFF")


def open_slide(path: str | os.PathLike) -> Slide:
    """Open ``path`` with the backend that reads it best; refuse bad files with a :class:`SlideError`."""
    path = Path(path)
    if not path.is_file():
        raise SlideError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise SlideError(f"{path}: the file is empty")
    if _is_tiff(path):
        check_tiff_complete(path)
    handle, backend = _open_backend(path)
    try:
        slide = Slide(path, handle, backend)
    except Exception as err:  # noqa: BLE001 -- tiffslide parses lazily: its errors surface here
        handle.close()
        raise SlideError(f"{path}: cannot read the slide's levels or properties: {err}. "
                         "The file may be truncated or corrupt.") from err
    level = slide.level_count - 1
    lw, lh = slide.level_dimensions[level]
    try:
        slide.read_rgb((0, 0), level, (min(lw, 64), min(lh, 64)))  # a probe: does it decode at all?
    except SlideError:
        slide.close()
        raise
    return slide
