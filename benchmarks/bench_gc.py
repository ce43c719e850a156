"""The full garbage collection Streamlit runs after every script run, before and after freezing.

    python benchmarks/bench_gc.py [--repeats 5] [--json out.json]

Streamlit calls ``gc.collect(2)`` after every script run (``runner.postScriptGC``). In the
dashboard's server, by then, torch, the U-Net's libraries, Streamlit, plotly and the default demo
model are loaded. This script loads the same things in one process, then times a full collection
before and after ``gc.freeze()`` (what ``app/gc_freeze.py`` does once per server). The two
results are printed side by side. Each side is the median of ``--repeats`` collections, with the
number of objects a collection walks (``len(gc.get_objects())``).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path


def load_server_objects() -> str:
    """What the dashboard's server holds after its warm start: its imports and the default model."""
    import plotly.graph_objects  # noqa: F401
    import streamlit  # noqa: F401

    import fusioncore
    from fusioncore.inspect import demo_assets

    assets = demo_assets()
    if not assets.available:
        raise SystemExit("the bundled demo checkpoints are missing: python scripts/build_assets.py")
    path = next(iter(assets.checkpoints.values()))
    fusioncore.load(path)
    return path.name


def full_collections(repeats: int) -> dict:
    """Median seconds of ``repeats`` full collections, and the objects each one walks."""
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gc.collect(2)
        seconds.append(time.perf_counter() - t0)
    return {"seconds_median": statistics.median(seconds), "objects_walked": len(gc.get_objects())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="full collections timed on each side")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    model = load_server_objects()
    before = full_collections(args.repeats)
    gc.freeze()
    after = full_collections(args.repeats)
    result = {"model": model, "repeats": args.repeats, "before_freeze": before, "after_freeze": after,
              "frozen_objects": gc.get_freeze_count()}
    print("| | objects walked | full collection (median) |\n|---|---|---|")
    for side in ("before_freeze", "after_freeze"):
        r = result[side]
        print(f"| {side.replace('_', ' ')} | {r['objects_walked']:,} | {r['seconds_median'] * 1000:.3f} ms |")
    print(f"frozen: {result['frozen_objects']:,} objects")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
