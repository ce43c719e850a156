"""The per-tile results of a slide run, on disk, written batch by batch so a killed run resumes.

A run folder's ``work/`` holds ``plan.json`` (what is being computed: slide identity, model,
resolution, grid, tissue settings) and one ``.npy`` file per quantity, one row per tissue tile in
processing order:

* ``tiles.npy`` ``(n, 2)`` int32 grid row/col, ``tissue.npy`` ``(n,)`` tissue fraction;
* ``cells.npy`` ``(n, h/p, w/p)`` float32 mean map per model patch, ``probs.npy`` ``(n, K)``,
  ``confidence.npy`` ``(n,)``;
* ``done.npy`` ``(n,)`` uint8, set only after a batch's results are flushed.

A batch is written (and handed to the operating system), then marked done; a run killed in between recomputes that batch, so
writes are idempotent and a resumed run gives the same numbers. Files are written and read with
plain positioned I/O (not memory maps), so a run's resident memory does not grow with the slide.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .reader import SlideError

FORMAT = 1
ARRAYS = ("tiles", "tissue", "cells", "probs", "confidence", "done")


class TileStore:
    """Rows of per-tile results in ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path, plan: dict[str, Any]) -> None:
        self.folder = folder
        self.plan = plan
        self._meta = {name: _header(folder / f"{name}.npy") for name in ARRAYS}

    @property
    def n(self) -> int:
        return int(self._meta["done"][0][0])

    @classmethod
    def open(cls, folder: str | Path, plan: dict[str, Any], tiles: np.ndarray, tissue: np.ndarray,
             cells: tuple[int, int], n_classes: int) -> "TileStore":
        """The store for ``plan``: resumed when ``folder`` holds the same plan, created when empty;
        a different plan there is refused (never overwritten: it is someone's finished work)."""
        folder = Path(folder)
        plan = {"format": FORMAT, **plan}
        existing = folder / "plan.json"
        if existing.is_file():
            old = json.loads(existing.read_text())
            if old != json.loads(json.dumps(plan)):
                changed = sorted(k for k in set(old) | set(plan) if old.get(k) != json.loads(json.dumps(plan.get(k))))
                raise SlideError(f"{folder}: holds a run with other settings ({', '.join(changed)} differ); "
                                 "use another --out folder, or delete this one to start again")
            return cls(folder, plan)
        folder.mkdir(parents=True, exist_ok=True)
        n = len(tiles)
        np.save(folder / "tiles.npy", tiles.astype(np.int32))
        np.save(folder / "tissue.npy", tissue.astype(np.float32))
        for name, shape in (("cells", (n, *cells)), ("probs", (n, n_classes)), ("confidence", (n,))):
            _create(folder / f"{name}.npy", shape, np.float32, fill=np.nan)
        _create(folder / "done.npy", (n,), np.uint8, fill=0)
        tmp = folder / "plan.json.tmp"
        tmp.write_text(json.dumps(plan, indent=1))
        os.replace(tmp, existing)  # the plan appears last: a folder with a plan is complete
        return cls(folder, plan)

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``[start, stop)`` of one array."""
        shape, dtype, offset = self._meta[name]
        stop = shape[0] if stop is None else min(stop, shape[0])
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        count = max(0, stop - start)
        with open(self.folder / f"{name}.npy", "rb") as fh:
            fh.seek(offset + start * row)
            data = np.frombuffer(fh.read(count * row), dtype=dtype)
        return data.reshape((count, *shape[1:]))

    def pending(self) -> np.ndarray:
        """Indices of the tiles not yet done (ascending)."""
        return np.flatnonzero(self.read("done") == 0)

    def write(self, start: int, outputs) -> None:
        """Store a batch of :class:`~fusioncore.slides.infer.TileOutputs` at rows ``[start, start + B)``,
        then mark those rows done."""
        b = len(outputs.probs)
        for name, values in (("cells", outputs.cells), ("probs", outputs.probs), ("confidence", outputs.confidence)):
            self._write(name, start, np.ascontiguousarray(values, dtype=np.float32))
        self._write("done", start, np.ones(b, dtype=np.uint8))

    def _write(self, name: str, start: int, values: np.ndarray) -> None:
        shape, dtype, offset = self._meta[name]
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        with open(self.folder / f"{name}.npy", "r+b") as fh:
            fh.seek(offset + start * row)
            fh.write(values.astype(dtype, copy=False).tobytes())  # closed = handed to the OS: survives a kill


def _create(path: Path, shape: tuple[int, ...], dtype, fill) -> None:
    """An ``.npy`` file of ``shape`` filled with ``fill``, written in chunks (never whole in memory)."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    header = mm.offset
    del mm
    row = int(np.prod(shape[1:], dtype=np.int64))
    chunk = np.full(max(1, (1 << 22) // max(row, 1)) * row, fill, dtype=dtype).tobytes()
    total = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    with open(path, "r+b") as fh:
        fh.seek(header)
        written = 0
        while written < total:
            part = chunk[: total - written]
            fh.write(part)
            written += len(part)


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
        return tuple(shape), np.dtype(dtype), fh.tell()
