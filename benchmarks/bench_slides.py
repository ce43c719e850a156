"""Slide heatmaps: speed of the tile model, end-to-end tissue MP/s, peak memory by slide size, viewer tile latency.

One command (docs/benchmarks.md, section "Slides"):

    python benchmarks/bench_slides.py --out /tmp/fusioncore-bench-slides

1. *Tile model variants* on real tissue tiles of CMU-1-Small-Region.svs (the bundled Image
   MM-dynamics): float32 NCHW (the in-memory path's layout), channels-last, bf16 autocast, bf16
   weights (+ ``torch.compile`` with ``--compile``), and the gate alone; tiles/s, MP/s and the
   largest difference from float32 NCHW on the map and on the class probabilities.
2. *End to end* on the real slide: today's in-memory tiled map of the whole image against
   ``explain slide`` (tissue tiles only, streamed, all files written).
3. *Peak RSS* of ``explain slide`` in a fresh process per slide, on generated pyramidal JPEG slides
   of 8k^2, 20k^2 and 60k^2 px (tissue islands from the real H&E tiles): with the real model on the
   smallest, and with a constant-output tile model on all three (the pipeline's own memory: reading,
   tissue mask, tile store, heatmap.tif; the model's memory does not depend on the slide's size).
4. *Viewer tiles*: median and 95th percentile time to cut a Deep Zoom tile from the slide and from
   its heatmap.tif (what the tile route does per request).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "he_tiles"
CMU = SHARED / "region" / "CMU-1-Small-Region.svs"
DEMO = REPO / "fusioncore" / "assets" / "demo" / "mmdynamics_image_omics"


def tissue_tiles(n: int) -> np.ndarray:
    """``n`` real tissue tiles (64 px, level 0) of the CMU slide, in processing order."""
    from fusioncore.checkpoint import load
    from fusioncore.slides import open_slide
    from fusioncore.slides.infer import SlideModel
    from fusioncore.slides.stream import BlockReader, plan_slide

    with open_slide(CMU) as slide:
        plan = plan_slide(slide, SlideModel(load(DEMO)), min_tissue=0.5)
        return BlockReader(slide, plan.grid, plan.block).tiles(plan.tiles[:n])


def bench_variants(tiles: np.ndarray, batch: int, use_compile: bool) -> list[dict]:
    from fusioncore.checkpoint import load
    from fusioncore.slides.infer import _TileNet

    model = load(DEMO)
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float().div(255)
    nchw = x.contiguous()
    ref = _TileNet(model, "histology").eval()
    gate = model.branches["histology"].informativeness

    def run(fn, data, dtype=torch.float32):
        outs = []
        with torch.inference_mode():
            for s in range(0, len(data), batch):
                outs.append(fn(data[s : s + batch].to(dtype)))
        return outs

    def full(net):
        return lambda d: tuple(t.float() for t in net(d))

    from fusioncore.slides.infer import SlideModel

    cl = _TileNet(copy.deepcopy(model), "histology").eval().to(memory_format=torch.channels_last)
    variants = [("fp32 NCHW (in-memory path layout)", full(ref), nchw, torch.float32, False),
                ("fp32 channels-last", full(cl), x, torch.float32, False),
                ("fp32 channels-last + folded batch norm (explain slide's default)",
                 full(SlideModel(model, precision="fp32")._net), x, torch.float32, False)]  # noqa: SLF001

    def autocast(net):
        def f(d):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return tuple(t.float() for t in net(d))
        return f

    variants.append(("bf16 autocast, channels-last", autocast(cl), x, torch.float32, False))
    bf = _TileNet(copy.deepcopy(model), "histology").eval().to(memory_format=torch.channels_last).to(torch.bfloat16)
    variants.append(("bf16 weights, channels-last", full(bf), x, torch.bfloat16, False))
    if use_compile:
        compiled = torch.compile(bf, options={"freezing": True})
        variants.append(("bf16 weights + torch.compile", full(compiled), x, torch.bfloat16, False))
    variants.append(("gate only (map, no prediction), fp32 channels-last", lambda d: (gate(d).float(),), x,
                     torch.float32, True))
    base = None
    rows = []
    for name, fn, data, dtype, map_only in variants:
        run(fn, data[:batch], dtype)  # warm-up (and compilation)
        t0 = time.perf_counter()
        outs = run(fn, data, dtype)
        dt = time.perf_counter() - t0
        heat = torch.cat([o[0] for o in outs])
        probs = None if map_only else torch.softmax(torch.cat([o[1] for o in outs]), -1)
        if base is None:
            base = (heat, probs)
        rows.append({"variant": name, "tiles_per_s": len(data) / dt, "megapixels_per_s": len(data) * 4096 / dt / 1e6,
                     "max_abs_diff_map": float((heat - base[0]).abs().max()),
                     "max_abs_diff_probs": None if probs is None else float((probs - base[1]).abs().max())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_end_to_end(out: Path) -> dict:
    from fusioncore.checkpoint import load
    from fusioncore.data.images import read_image
    from fusioncore.explain.heatmap import model_map_fn, tiled_map
    from fusioncore.reports.slide_run import SlideOptions, explain_slide

    model = load(DEMO)
    pixels = read_image(SHARED / "region" / "CMU-1-Small-Region_level0.png").pixels
    map_fn, size, _ = model_map_fn(model)
    t0 = time.perf_counter()
    tiled_map(pixels, map_fn, model_size=size, batch_size=64, device="cpu")
    in_memory = time.perf_counter() - t0
    summary = explain_slide(model, CMU, out / "cmu", SlideOptions())
    run = summary["run"]
    return {"in_memory_whole_image_s": in_memory, "in_memory_megapixels_per_s": pixels.shape[0] * pixels.shape[1] / in_memory / 1e6,
            "slide_tissue_tiles": summary["tissue"]["tiles"], "slide_tiles_s": run["seconds"],
            "slide_tissue_megapixels_per_s": run["tissue_megapixels_per_s"], "slide_write_s": run["write_s"]}


class ConstantTiles:
    """A tile model with the demo's tile size and constant outputs: the pipeline's memory, not a model's."""

    tile, cell, classes, modality, absent, requested, check = (64, 64), 8, ["a", "b", "c"], "histology", [], "fp32", None

    def __call__(self, tiles):
        from fusioncore.slides.infer import TileOutputs

        n = len(tiles)
        return TileOutputs(np.full((n, 8, 8), 0.5, np.float32), np.full((n, 3), 1 / 3, np.float32), np.ones(n, np.float32))

    def describe(self) -> dict:
        return {"model": "constant outputs (memory of the pipeline only)"}


def child(args) -> None:
    """One ``explain slide`` in this process; prints its peak RSS (run in a fresh process per slide)."""
    from fusioncore.checkpoint import load
    from fusioncore.reports.slide_run import SlideOptions, explain_slide

    model = load(DEMO)
    slide_model = ConstantTiles() if args.constant else None
    t0 = time.perf_counter()
    summary = explain_slide(model, args.slide, args.out, SlideOptions(), slide_model=slide_model)
    print(json.dumps({"tiles": summary["tissue"]["tiles"], "seconds": time.perf_counter() - t0,
                      "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``, which a
    child started by fork + exec inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_memory(out: Path, sizes: list[int]) -> list[dict]:
    from PIL import Image

    from fusioncore.slides.synthetic import write_test_slide

    textures = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(SHARED.glob("histolab_tissue*.png"))]
    rows = []
    for size in sizes:
        path = out / f"slide_{size}.tif"
        if not path.exists():
            t0 = time.perf_counter()
            write_test_slide(path, (size, size), textures, levels=max(3, int(np.log2(size / 1024)) + 1), mpp=0.25,
                             n_islands=6, seed=size)
            print(f"wrote {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        modes = ["constant", "model"] if size == min(sizes) else ["constant"]
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", "--slide", str(path), "--out", str(out / f"run_{size}_{mode}")]
            cmd += ["--constant"] if mode == "constant" else []
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = {"slide_px": f"{size} x {size}", "tile_model": mode, **json.loads(proc.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def bench_tiles(out: Path, n: int = 200) -> dict:
    from fusioncore.slides.deepzoom import SlideLayers

    summary = json.loads((out / "cmu" / "summary.json").read_text())
    layers = SlideLayers.open(CMU, out / "cmu" / "heatmap.tif", summary["grid"]["cell_downsample"])
    rng = np.random.default_rng(0)
    result = {}
    for layer in ("slide", "heatmap"):
        gen = layers._generator(layer)  # noqa: SLF001 -- the benchmark times the tile route's own call
        times = []
        for _ in range(n):
            level = int(rng.integers(max(0, gen.level_count - 4), gen.level_count))
            cols, rows = gen.level_tiles[level]
            t0 = time.perf_counter()
            layers.tile(layer, level, int(rng.integers(cols)), int(rng.integers(rows)), "magma")
            times.append((time.perf_counter() - t0) * 1000)
        result[layer] = {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}
    layers.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/fusioncore-bench-slides"))
    p.add_argument("--tiles", type=int, default=512, help="real tissue tiles for the variant timings")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--sizes", type=int, nargs="*", default=[8192, 20000, 60000])
    p.add_argument("--compile", action="store_true", help="also time bf16 + torch.compile (minutes to compile)")
    p.add_argument("--parts", nargs="*", default=["variants", "end_to_end", "memory"],
                   help="which parts to run (viewer tiles run with end_to_end, which writes their heatmap)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--constant", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--slide", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if not CMU.is_file():
        sys.exit(f"the real slide is needed: {CMU}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if "variants" in args.parts:
        report["variants"] = bench_variants(tissue_tiles(args.tiles), args.batch_size, args.compile)
    if "end_to_end" in args.parts:
        report["end_to_end"] = bench_end_to_end(args.out)
        print(json.dumps(report["end_to_end"]), flush=True)
        report["viewer_tiles"] = bench_tiles(args.out)
        print(json.dumps(report["viewer_tiles"]), flush=True)
    if "memory" in args.parts:
        report["memory"] = bench_memory(args.out, args.sizes)
    (args.out / "bench_slides.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
