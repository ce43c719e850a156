"""Whole-image heatmap throughput and memory: tiled inference + stitching on big images.

    python benchmarks/bench_heatmap_tiling.py --sizes 2048 8192 [--gate smp] [--device auto] [--json out.json]

Each size runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. The image is
built by tiling a real H&E tile from ``../shared/data/he_tiles`` (or a synthetic demo tile when
that folder is absent) up to ``size x size`` RGB uint8, and held in memory as the caller would.
Reported: megapixels per second of ``tiled_map`` (inference + stitching, no file I/O), peak RSS,
the RSS before the call (model + image), and the growth during the call next to the size of the
output map itself — the only buffer that should grow with the area.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HE_TILE = ROOT.parent / "shared" / "data" / "he_tiles" / "cmu1_small_region_crop_x1024_y768_512.png"


def _rss_mb() -> float:
    """Current resident set size (MB) from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def run_one(size: int, gate: str, device: str, batch: int, overlap: int, threads: int) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    import fusioncore as fc
    from fusioncore.config import DataSchema, ModalitySpec
    from fusioncore.device import describe_device, select_device
    from fusioncore.explain.heatmap import model_map_fn, plan_tiles, tiled_map

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if HE_TILE.is_file():
        from fusioncore.data.images import read_image

        base, source = read_image(HE_TILE).pixels, HE_TILE.name
    else:
        from fusioncore.data.synthetic_cohort import render_tile

        base, source = render_tile(np.random.default_rng(0), 0, np.eye(8, dtype=bool)), "synthetic demo tile"
    reps = -(-size // base.shape[0])
    image = np.tile(base, (reps, reps, 1))[:size, :size].copy()
    schema = DataSchema((ModalitySpec("he", "image", (3, 64, 64)),), ("a", "b"))
    model = fc.create_model("mmdynamics", schema, image_gate=gate, hidden_dim=64, image_hidden_dim=64)
    dev = select_device(device)
    model = model.to(dev).eval()
    map_fn, msize, _ = model_map_fn(model)
    tiled_map(image[:256, :256], map_fn, model_size=msize, batch_size=batch, overlap=overlap, device=dev)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = _rss_mb()
    t0 = time.perf_counter()
    heat = tiled_map(image, map_fn, model_size=msize, batch_size=batch, overlap=overlap, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB -> MB on Linux
    plan = plan_tiles(size, size, 64, overlap)
    return {
        "size": size,
        "megapixels": size * size / 1e6,
        "tiles": plan.n_tiles,
        "gate": gate,
        "device": describe_device(dev),
        "threads": threads,
        "batch_size": batch,
        "overlap": overlap,
        "seconds": round(seconds, 2),
        "megapixels_per_s": round(size * size / 1e6 / seconds, 3),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "growth_mb": round(peak - before, 1),
        "image_mb": round(image.nbytes / 1e6, 1),
        "map_mb": round(heat.nbytes / 1e6, 1),
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 1e6, 1) if dev.type == "cuda" else None,
        "source": source,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--gate", choices=["smp", "paper"], default="smp")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.gate, args.device, args.batch_size, args.overlap, args.threads)))
        return 0
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--gate", args.gate, "--device", args.device,
               "--batch-size", str(args.batch_size), "--overlap", str(args.overlap), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
