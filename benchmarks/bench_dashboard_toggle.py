"""Time the dashboard's sample view re-render after a modality toggle (server side, AppTest).

    python benchmarks/bench_dashboard_toggle.py [--model mmdynamics_image_omics] [--samples 5] [--json out.json]

Opens the app on the bundled demo (``fusioncore/assets/demo/``, or ``$FUSIONCORE_ASSETS``), then for each
of ``--samples`` samples switches every modality off and on again, timing each script run
(``AppTest.run()``: widgets -> library -> figures, i.e. everything except the browser drawing),
in wall-clock and in process CPU time (robust to other load on the machine).
A toggle that reaches a presence pattern not seen before is a *cold* render (a forward pass
and new figures); returning to a seen pattern is *warm* (cached explanation and figures).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mmdynamics_image_omics")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "dashboard.py"), default_timeout=300).run()
    at.selectbox(key="demo_model").set_value(args.model).run()
    if at.exception or at.error:
        print("app did not start:", [e.value for e in at.error], at.exception, file=sys.stderr)
        return 1
    ids = at.selectbox(key="sample").options[: args.samples]
    cold, warm, cold_cpu, warm_cpu = [], [], [], []
    for sid in ids:
        at.selectbox(key="sample").set_value(sid).run()
        toggles = [t.key for t in at.toggle if t.key.startswith("toggle_")]
        for key in toggles:
            for value, bucket, cpu in ((False, cold, cold_cpu), (True, warm, warm_cpu)):
                at.toggle(key=key).set_value(value)
                t0, c0 = time.perf_counter(), time.process_time()
                at.run()
                bucket.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                assert not at.exception, at.exception
    result = {
        "model": args.model, "samples": len(ids), "torch_threads": torch.get_num_threads(),
        "cold_ms": {"n": len(cold), "median": statistics.median(cold), "p90": percentile(cold, 0.9)},
        "warm_ms": {"n": len(warm), "median": statistics.median(warm), "p90": percentile(warm, 0.9)},
        # CPU seconds of the whole process (all threads): what the render costs, whatever else
        # the machine is doing; on an idle 2-core machine the wall time is between cpu/2 and cpu.
        "cold_cpu_ms": {"median": statistics.median(cold_cpu), "p90": percentile(cold_cpu, 0.9)},
        "warm_cpu_ms": {"median": statistics.median(warm_cpu), "p90": percentile(warm_cpu, 0.9)},
        "load_average_1min": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
