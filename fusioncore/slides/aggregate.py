"""From per-tile results to the slide: prediction, confidence, map statistics, top-k regions, the cell map.

**Slide-level prediction.** The slide's class probabilities are the mean of its tissue tiles'
probabilities, each tile weighted by its tissue fraction (a tile half on glass counts half); the
predicted class is their argmax. Beside it: the share of tiles that predict each class (votes)
and the spread of tile probabilities (5th/25th/50th/75th/95th percentiles, standard deviation),
so a slide whose tiles disagree is visible as such. The image modality's confidence is
aggregated the same way; the model's other modalities were absent in every tile and have none.

**Regions.** A tile's score is the mean of its map; the top-k regions are the k highest-scoring
tiles, each suppressing its neighbours within ``spacing`` tiles (so the list is not k adjacent
tiles of one hot spot), reported in level-0 px.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .store import TileStore
from .stream import SlidePlan

PERCENTILES = (5, 25, 50, 75, 95)
CHUNK = 65_536


def spread(values: np.ndarray) -> dict[str, float | None]:
    """Percentiles, mean and standard deviation of the finite ``values`` (None when there are none)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {f"p{q}": None for q in PERCENTILES} | {"mean": None, "std": None}
    qs = np.percentile(finite, PERCENTILES)
    return {f"p{q}": float(v) for q, v in zip(PERCENTILES, qs)} | {"mean": float(finite.mean()),
                                                                  "std": float(finite.std())}


def tile_scores(store: TileStore) -> np.ndarray:
    """``(n,)`` mean map per tile (NaN for a tile not yet computed), read in chunks."""
    out = np.empty(store.n, dtype=np.float32)
    for s in range(0, store.n, CHUNK):
        cells = store.read("cells", s, s + CHUNK)
        out[s : s + len(cells)] = cells.reshape(len(cells), -1).mean(axis=1)
    return out


@dataclass(frozen=True)
class SlidePrediction:
    """The slide-level result (see the module docstring for how it is aggregated)."""

    classes: list[str]
    predicted: str | None
    probabilities: dict[str, float]
    votes: dict[str, float]
    probability_spread: dict[str, dict]
    confidence: dict[str, dict | None]
    map_spread: dict
    n_tiles: int
    aggregation: str

    def as_dict(self) -> dict:
        return asdict(self)


AGGREGATION = ("slide probabilities = mean of the tissue tiles' class probabilities weighted by each tile's tissue "
               "fraction; predicted class = their argmax; confidence = the same weighted mean of the tiles' image "
               "confidence")


def predict_slide(store: TileStore, classes: list[str], modality: str, absent: list[str]) -> SlidePrediction:
    """Aggregate the store's tiles into a :class:`SlidePrediction`."""
    probs, conf = store.read("probs"), store.read("confidence")
    weight = store.read("tissue").astype(np.float64)
    n = len(probs)
    if n == 0:
        return SlidePrediction(list(classes), None, {}, {}, {}, {modality: None, **{m: None for m in absent}},
                               spread(np.zeros(0)), 0, AGGREGATION + " (no tissue tiles: nothing to aggregate)")
    w = weight / weight.sum() if weight.sum() > 0 else np.full(n, 1.0 / n)
    mean = (probs.astype(np.float64) * w[:, None]).sum(axis=0)
    votes = np.bincount(probs.argmax(axis=1), minlength=len(classes)) / n
    finite = np.isfinite(conf)
    image_conf = None
    if finite.any():
        wc = w[finite] / w[finite].sum() if w[finite].sum() > 0 else np.full(int(finite.sum()), 1.0 / finite.sum())
        image_conf = {"weighted_mean": float((conf[finite] * wc).sum()), **spread(conf)}
    return SlidePrediction(
        classes=list(classes),
        predicted=classes[int(np.argmax(mean))],
        probabilities={c: float(p) for c, p in zip(classes, mean)},
        votes={c: float(v) for c, v in zip(classes, votes)},
        probability_spread={c: spread(probs[:, k]) for k, c in enumerate(classes)},
        confidence={modality: image_conf, **{m: None for m in absent}},
        map_spread=spread(tile_scores(store)),
        n_tiles=n,
        aggregation=AGGREGATION,
    )


@dataclass(frozen=True)
class Region:
    """One top-k region: a model tile, in level-0 px (``x, y, width, height``)."""

    rank: int
    row: int
    col: int
    x: int
    y: int
    width: int
    height: int
    score: float
    predicted: str
    probability: float
    confidence: float | None
    tissue: float


def top_regions(plan: SlidePlan, store: TileStore, classes: list[str], k: int = 10, spacing: int = 1) -> list[Region]:
    """The ``k`` best tiles by mean map, a chosen tile suppressing tiles within ``spacing`` rows/cols."""
    if k < 0 or spacing < 0:
        raise ValueError(f"k and spacing must be >= 0, got {k} and {spacing}")
    scores = tile_scores(store)
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    rc = plan.tiles
    chosen: list[int] = []
    taken: set[tuple[int, int]] = set()
    for i in order:
        if len(chosen) >= k or not np.isfinite(scores[i]):
            break
        r, c = int(rc[i, 0]), int(rc[i, 1])
        if (r, c) in taken:
            continue
        chosen.append(int(i))
        taken.update((r + dr, c + dc) for dr in range(-spacing, spacing + 1) for dc in range(-spacing, spacing + 1))
    w, h = plan.grid.footprint
    regions = []
    for rank, i in enumerate(chosen, start=1):
        probs = store.read("probs", i, i + 1)[0]
        conf = float(store.read("confidence", i, i + 1)[0])
        x, y = plan.grid.origin(np.array([rc[i, 0]]), np.array([rc[i, 1]]))
        regions.append(Region(rank, int(rc[i, 0]), int(rc[i, 1]), int(x[0]), int(y[0]), int(round(w)), int(round(h)),
                              float(scores[i]), classes[int(np.argmax(probs))], float(probs.max()),
                              conf if np.isfinite(conf) else None, float(plan.fraction[i])))
    return regions


def cell_map(plan: SlidePlan, store: TileStore) -> np.ndarray:
    """The whole slide's map as uint8 ``(H / D, W / D)`` (one px per model patch, ``D`` =
    ``grid.cell_downsample`` level-0 px), cropped to the slide: ``0`` where no tissue tile was
    inferred, else ``1 + round(254 * map)`` (so ``map = (value - 1) / 254``, within 0.002)."""
    grid = plan.grid
    ch, cw = grid.cells_per_tile
    rows, cols = grid.cell_shape
    out = np.zeros((rows, cols), dtype=np.uint8)
    for s in range(0, store.n, CHUNK):
        cells = store.read("cells", s, s + CHUNK)
        rc = plan.tiles[s : s + len(cells)]
        q = np.where(np.isfinite(cells), 1 + np.rint(np.clip(cells, 0.0, 1.0) * 254), 0).astype(np.uint8)
        for (r, c), block in zip(rc, q):
            out[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = block
    w0, h0 = grid.slide_size
    d = grid.cell_downsample
    return out[: int(np.ceil(h0 / d - 1e-9)), : int(np.ceil(w0 / d - 1e-9))]


def decode_cells(values: np.ndarray) -> np.ndarray:
    """The inverse of :func:`cell_map`'s encoding: float32 map, NaN where ``value == 0``."""
    values = np.asarray(values)
    return np.where(values > 0, (values.astype(np.float32) - 1) / 254, np.nan).astype(np.float32)
