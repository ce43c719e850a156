"""``fusioncore explain slide`` (one whole-slide image) and ``fusioncore explain slides`` (a cohort,
one slide per worker under torchrun). Progress bars and ETA go to stderr; the JSON result to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _options(args: argparse.Namespace):
    from ..reports.slide_run import SlideOptions

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    return SlideOptions(mpp=args.mpp, level=args.level, min_tissue=args.min_tissue, batch_size=args.batch_size,
                        precision=args.precision, compile=args.compile, top_k=args.top_k, modality=args.modality)


def _progress_bar(name: str, quiet: bool):
    """A ``progress(done, total)`` drawing a tqdm bar (rate, ETA) on stderr, or None when quiet."""
    if quiet:
        return None
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, unit="tile", desc=name, file=sys.stderr, dynamic_ncols=True,
                       smoothing=0.1)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _load(args: argparse.Namespace, device=None):
    from ..checkpoint import load

    return load(args.checkpoint, device=device or args.device)


def cmd_slide(args: argparse.Namespace) -> dict:
    from ..reports.slide_run import explain_slide

    model = _load(args)
    summary = explain_slide(model, args.slide, args.out, _options(args),
                            progress=_progress_bar(Path(args.slide).name, args.quiet))
    for warning in summary["warnings"]:
        print(f"fusioncore explain slide: warning: {warning}", file=sys.stderr)
    return summary


def cmd_slides(args: argparse.Namespace) -> dict | None:
    from ..reports.slide_cohort import CSV_NAME, cohort_rows, list_slides, run_share, write_cohort_csv
    from ..training.distributed import barrier, distributed_session

    slides = list_slides(args.slides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = _options(args)
    with distributed_session(args.device) as (ctx, device):
        model = _load(args, device)
        ran = run_share(model, slides, out, options, rank=ctx.rank, world=ctx.world_size,
                        progress_for=lambda sid: _progress_bar(f"[{ctx.rank}] {sid}", args.quiet))
        barrier(ctx)
        if not ctx.is_main:
            return None
        path = write_cohort_csv(out / CSV_NAME, cohort_rows(slides, out))
    errors = [r for r in ran if r["status"] == "error"]
    return {"csv": str(path), "slides": len(slides), "processes": ctx.world_size, "rank0": ran,
            "errors_rank0": len(errors)}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output folder (a killed run resumes from it)")
    res = p.add_mutually_exclusive_group()
    res.add_argument("--mpp", type=float, help="run at this many microns per pixel (default: the checkpoint's "
                     "training mpp, else the slide's level 0, stated in the output)")
    res.add_argument("--level", type=int, help="run at this pyramid level of the slide")
    p.add_argument("--min-tissue", type=float, default=0.1, help="smallest tissue fraction of a tile that is inferred")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="fp32",
                   help="bf16 (or auto: bf16 where the CPU/GPU runs it natively) is checked against fp32 on the first "
                   "batch and dropped for fp32 when it differs by more than the tolerance (docs/slides.md)")
    p.add_argument("--compile", action="store_true", help="torch.compile the tile model (slow start, faster tiles)")
    p.add_argument("--top-k", type=int, default=10, help="regions to report")
    p.add_argument("--modality", help="the image modality the slide stands for (default: the model's first image)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_slide(sub) -> None:
    p = sub.add_parser("slide", help="heatmap, regions and slide-level prediction of one whole-slide image")
    _common(p)
    p.add_argument("--slide", required=True, help="slide file (.svs, .ndpi, .mrxs, .scn, pyramidal .tif, ...)")
    p.set_defaults(func=cmd_slide)


def add_slides(sub) -> None:
    p = sub.add_parser("slides", help="a cohort of slides (one per worker under torchrun) into one CSV")
    _common(p)
    p.add_argument("--slides", required=True, help="a folder of slides or a CSV with a 'slide' column")
    p.set_defaults(func=cmd_slides)
