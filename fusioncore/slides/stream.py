"""Stream a slide's tissue tiles through a model, batch by batch, into a resumable :class:`TileStore`.

Order: tiles are read in blocks of ``block x block`` grid positions (one region read per block
instead of one per tile; a 512 x 512-px region for the demo's 64-px tiles) and inferred in that
order, which is also the row order of the store. A reader thread decodes the next batches while
the model runs on this one (a bounded queue of ``prefetch`` batches), so reading costs little wall
time. Memory held at any time: ``prefetch + 1`` batches of tiles, one block, the tissue mask and
the ``(n, 2)`` tile list — not the slide, not the map.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from .grid import SlideGrid, choose_resolution, tissue_tiles
from .infer import SlideModel
from .reader import Slide
from .store import TileStore
from .tissue import TissueMask, tissue_mask

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SlidePlan:
    """What a run computes: the grid, the tissue mask, and the tissue tiles in processing order."""

    grid: SlideGrid
    tissue: TissueMask
    tiles: np.ndarray  # (n, 2) int32 row, col
    fraction: np.ndarray  # (n,) float32 tissue fraction
    min_tissue: float
    block: int


@dataclass(frozen=True)
class RunStats:
    """Timings of one (possibly resumed) run: tiles computed now, of ``total``."""

    computed: int
    total: int
    resumed_from: int
    seconds: float
    read_wait_s: float
    tile_px: int

    @property
    def megapixels_per_s(self) -> float:
        """Tissue megapixels per second at the model's input resolution."""
        return self.computed * self.tile_px / 1e6 / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict:
        return {"tiles_computed": self.computed, "tiles_total": self.total, "resumed_from": self.resumed_from,
                "seconds": round(self.seconds, 3), "read_wait_s": round(self.read_wait_s, 3),
                "tissue_megapixels_per_s": round(self.megapixels_per_s, 4)}


def plan_slide(slide: Slide, model: SlideModel, *, mpp: float | None = None, level: int | None = None,
               model_mpp: float | None = None, min_tissue: float = 0.1, block: int = 8,
               tissue: TissueMask | None = None) -> SlidePlan:
    """Resolution, grid and tissue tiles (block order) for ``model`` on ``slide``."""
    resolution = choose_resolution(slide.info, mpp=mpp, level=level, model_mpp=model_mpp)
    grid = SlideGrid(slide.dimensions, resolution, model.tile, model.cell)
    tissue = tissue if tissue is not None else tissue_mask(slide)
    rc, fraction = tissue_tiles(grid, tissue, min_tissue)
    order = np.lexsort((rc[:, 1], rc[:, 0], rc[:, 1] // block, rc[:, 0] // block))
    return SlidePlan(grid, tissue, rc[order], fraction[order], float(min_tissue), int(block))


class BlockReader:
    """Tiles of a grid cut from block-sized region reads (the last block read is kept)."""

    def __init__(self, slide: Slide, grid: SlideGrid, block: int) -> None:
        self.slide, self.grid, self.block = slide, grid, block
        self._key: tuple[int, int] | None = None
        self._pixels: np.ndarray | None = None

    def _read_block(self, br: int, bc: int) -> np.ndarray:
        g, k = self.grid, self.block
        rows, cols = g.shape
        nr, nc = min(k, rows - br * k), min(k, cols - bc * k)
        h, w = g.tile[0] * nr, g.tile[1] * nc
        x0, y0 = (int(v[0]) for v in g.origin(np.array([br * k]), np.array([bc * k])))
        level = g.resolution.level
        scale = g.downsample / self.slide.level_downsamples[level]
        size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        pixels = self.slide.read_rgb((x0, y0), level, size)
        if size != (w, h):
            pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR))
        return pixels

    def tiles(self, rc: np.ndarray) -> np.ndarray:
        """uint8 ``(len(rc), h, w, 3)`` for grid positions ``rc`` ``(n, 2)``."""
        h, w = self.grid.tile
        out = np.empty((len(rc), h, w, 3), dtype=np.uint8)
        for i, (r, c) in enumerate(rc):
            key = (int(r) // self.block, int(c) // self.block)
            if key != self._key:
                self._pixels, self._key = self._read_block(*key), key
            y, x = (int(r) % self.block) * h, (int(c) % self.block) * w
            out[i] = self._pixels[y : y + h, x : x + w]
        return out


def batches(pending: np.ndarray, batch_size: int) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` ranges of consecutive pending rows, at most ``batch_size`` long."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if not len(pending):
        return
    breaks = np.flatnonzero(np.diff(pending) != 1) + 1
    for run in np.split(pending, breaks):
        for start in range(0, len(run), batch_size):
            part = run[start : start + batch_size]
            yield int(part[0]), int(part[-1]) + 1


def _prefetch(reader: BlockReader, tiles: np.ndarray, ranges: list[tuple[int, int]], depth: int,
              stop: threading.Event) -> queue.Queue:
    """A queue filled by a thread with ``(start, stop, pixels)`` per range, then None (or an exception)."""
    out: queue.Queue = queue.Queue(maxsize=max(1, depth))

    def work() -> None:
        try:
            for start, end in ranges:
                if stop.is_set():
                    return
                out.put((start, end, reader.tiles(tiles[start:end])))
            out.put(None)
        except BaseException as err:  # noqa: BLE001 -- handed to the consumer, which re-raises it
            out.put(err)

    threading.Thread(target=work, name="fusioncore-slide-reader", daemon=True).start()
    return out


def run_tiles(slide: Slide, model: SlideModel, plan: SlidePlan, store: TileStore, *, batch_size: int = 128,
              prefetch: int = 2, progress: Progress | None = None) -> RunStats:
    """Infer every pending tile of ``store`` and write its results; returns the timings."""
    pending = store.pending()
    total, done = store.n, store.n - len(pending)
    ranges = list(batches(pending, batch_size))
    stop = threading.Event()
    feed = _prefetch(BlockReader(slide, plan.grid, plan.block), plan.tiles, ranges, prefetch, stop)
    start_t, wait, computed = time.perf_counter(), 0.0, 0
    if progress is not None:
        progress(done, total)
    try:
        while True:
            t0 = time.perf_counter()
            item = feed.get()
            wait += time.perf_counter() - t0
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            start, end, pixels = item
            store.write(start, model(pixels))
            computed += end - start
            if progress is not None:
                progress(done + computed, total)
    finally:
        stop.set()
    return RunStats(computed, total, done, time.perf_counter() - start_t, wait, model.tile[0] * model.tile[1])
