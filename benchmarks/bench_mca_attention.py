"""Forward throughput and peak memory of block-sparse MCA vs the dense masked reference.

The paper's scale by default (spec §1a/§1b): D 512, 5 layers, 8 heads x 64, tabular token
counts 800/198/800/662 (TCGA), 8 fusion tokens x 11 channels = 88, batch 8. Each
(implementation, missing rate) runs in a fresh subprocess, so its peak memory is its own:
on CPU the increase of the process's peak resident set size over the resident size just
before the forward passes; on CUDA ``torch.cuda.max_memory_allocated`` minus the memory held
before them. Missing modalities are drawn per sample with a seeded predrop
(``fusioncore.data.predrop``); the same pattern is used for both implementations.

    python benchmarks/bench_mca_attention.py                        # paper scale, CPU
    python benchmarks/bench_mca_attention.py --device cuda --repeats 10
    python benchmarks/bench_mca_attention.py --batch 2 --dim 128    # quick look

Prints a Markdown table (and writes ``--json`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def _rss_bytes() -> int:
    """Current resident set size (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def run_one(args: argparse.Namespace) -> dict:
    """One measurement in this process: build, run ``warmup`` + ``repeats`` forwards, report."""
    import numpy as np
    import torch

    from fusioncore.config import DataSchema, ModalitySpec
    from fusioncore.data.predrop import predrop
    from fusioncore.layers.reference import dense_forward
    from fusioncore.registry import create_model
    from fusioncore.types import Batch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    counts = [int(c) for c in args.tokens.split(",")]
    schema = DataSchema(tuple(ModalitySpec(f"m{i}", "tabular", (n,)) for i, n in enumerate(counts)), ("a", "b"))
    model = create_model(
        args.method, schema, dim=args.dim, depth=args.depth, heads=args.heads, dim_head=args.dim_head,
        tokens_per_channel=args.tokens_per_channel,
    ).to(device).eval()
    g = torch.Generator().manual_seed(1)
    inputs = {f"m{i}": torch.randn(args.batch, n, generator=g).to(device) for i, n in enumerate(counts)}
    present = predrop(np.ones((args.batch, len(counts)), bool), args.missing, seed=args.seed)
    batch = Batch(inputs, torch.from_numpy(present).to(device))
    fn = (lambda: model(batch)) if args.impl == "sparse" else (lambda: dense_forward(model, batch))
    present_tokens = int(sum(present[:, i].sum() * n for i, n in enumerate(counts)) + args.batch * model.layout.n_fusion)
    total_tokens = args.batch * (sum(counts) + model.layout.n_fusion)
    with torch.inference_mode():
        base = _rss_bytes()  # CPU: before any forward; the child runs with a fixed mmap threshold,
        for _ in range(args.warmup):  # so freed large tensors leave the RSS and every forward peaks alike
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        times, cpu_times = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated() - base
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    sec = float(np.median(times))
    return {
        "impl": args.impl, "missing": args.missing, "batch": args.batch, "seconds": sec,
        "cpu_seconds": float(np.median(cpu_times)),
        "samples_per_s": args.batch / sec, "peak_mib": max(peak, 0) / 2**20,
        "present_token_fraction": present_tokens / total_tokens, "present": present.tolist(),
        "device": str(device), "threads": torch.get_num_threads(),
    }


def parity(args: argparse.Namespace) -> float:
    """Largest |sparse - dense| over all embeddings and logits at the benchmark's shapes (batch 2)."""
    import numpy as np
    import torch

    from fusioncore.config import DataSchema, ModalitySpec
    from fusioncore.data.predrop import predrop
    from fusioncore.layers.reference import dense_forward
    from fusioncore.registry import create_model
    from fusioncore.types import Batch

    torch.manual_seed(0)
    counts = [int(c) for c in args.tokens.split(",")]
    schema = DataSchema(tuple(ModalitySpec(f"m{i}", "tabular", (n,)) for i, n in enumerate(counts)), ("a", "b"))
    model = create_model(
        args.method, schema, dim=args.dim, depth=args.depth, heads=args.heads, dim_head=args.dim_head,
        tokens_per_channel=args.tokens_per_channel,
    ).to(args.device).eval()
    inputs = {f"m{i}": torch.randn(2, n).to(args.device) for i, n in enumerate(counts)}
    present = torch.from_numpy(predrop(np.ones((2, len(counts)), bool), 0.4, seed=3)).to(args.device)
    batch = Batch(inputs, present)
    with torch.inference_mode():
        out, ref = model(batch), dense_forward(model, batch)
    errs = [(out.embeddings[k] - ref[k]).abs().max().item() for k in out.embeddings]
    return max(errs + [(out.logits - ref["logits"]).abs().max().item()])


def _child(base: list[str], impl: str, missing: float, env: dict) -> dict:
    """Run one measurement in a fresh process (so its peak memory is its own)."""
    cmd = [sys.executable, __file__, *base, "--_child", impl, str(missing)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="mca", choices=["mca", "zorro"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--dim-head", type=int, default=64)
    p.add_argument("--tokens", default="800,198,800,662", help="tokens per modality, comma-separated")
    p.add_argument("--tokens-per-channel", type=int, default=8)
    p.add_argument("--missing", type=float, nargs="+", default=[0.0, 0.4, 0.8])
    p.add_argument("--dense-missing", type=float, nargs="*", default=None, help="missing rates for the dense reference (default: the first)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--skip-parity", action="store_true")
    p.add_argument("--json", default="")
    p.add_argument("--_child", nargs=2, metavar=("IMPL", "MISSING"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        args.impl, args.missing = args._child[0], float(args._child[1])
        print(json.dumps(run_one(args)))
        return 0
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    dense_missing = args.dense_missing if args.dense_missing is not None else args.missing[:1]
    jobs = [("dense", m) for m in dense_missing] + [("sparse", m) for m in args.missing]
    results = []
    for impl, miss in jobs:
        r = _child(base, impl, miss, dict(os.environ))
        if not args.device.startswith("cuda"):
            # Peak memory from a second process in which every buffer over 1 MiB is its own
            # mapping, returned to the OS when freed, so the peak RSS tracks live tensors rather
            # than the allocator's cache. Not used for timing: mapping fresh pages for every large
            # tensor costs 10-20 % of the time, which is not what a user's process pays.
            mem_env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1048576")
            r["peak_mib_default_allocator"] = r["peak_mib"]
            r["peak_mib"] = _child([*base, "--repeats", "1", "--warmup", "0"], impl, miss, mem_env)["peak_mib"]
        results.append(r)
        print(f"# {impl} missing={miss}: {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU, {r['peak_mib']:.0f} MiB",
              file=sys.stderr, flush=True)
    err = None if args.skip_parity else parity(args)
    dense0 = results[0]
    print(f"device {dense0['device']} ({dense0['threads']} threads), method {args.method}, batch {args.batch}, "
          f"D {args.dim}, {args.depth} layers, {args.heads}x{args.dim_head} heads, tokens {args.tokens} + "
          f"{args.tokens_per_channel} x channels fusion; median of {args.repeats} after {args.warmup} warm-up")
    print("\nthroughput = batch / median wall time per forward (the speed-up); CPU time shown to check that the"
          " cores were not shared; peak memory from a separate process (see _child)")
    print("\n| implementation | missing p | present tokens | wall s / forward | CPU s / forward | samples / s | peak MiB | speed-up vs dense | CPU-time ratio | memory vs dense |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['impl']} | {r['missing']:.1f} | {r['present_token_fraction']:.2f} | {r['seconds']:.2f} | "
              f"{r['cpu_seconds']:.2f} | {args.batch / r['seconds']:.3f} | {r['peak_mib']:.0f} | "
              f"{dense0['seconds'] / r['seconds']:.2f}x | {dense0['cpu_seconds'] / r['cpu_seconds']:.2f}x | "
              f"{r['peak_mib'] / max(dense0['peak_mib'], 1e-9):.3f} |")
    if err is not None:
        print(f"\nparity (batch 2, p=0.4): max |sparse - dense| over embeddings and logits = {err:.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": {k: v for k, v in vars(args).items() if not k.startswith("_")}, "results": results, "parity": err}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
