"""The MCA attention benchmark script runs end to end at a tiny scale and reports what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mca_attention_benchmark_tiny_run(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "bench_mca_attention.py"),
        "--batch", "2", "--dim", "16", "--depth", "1", "--heads", "2", "--dim-head", "8",
        "--tokens", "12,5,9", "--tokens-per-channel", "2", "--missing", "0", "0.5",
        "--warmup", "0", "--repeats", "1", "--threads", "1", "--json", str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "| sparse | 0.5 |" in done.stdout and "speed-up vs dense" in done.stdout
    report = json.loads(out.read_text())
    impls = [(r["impl"], r["missing"]) for r in report["results"]]
    assert impls == [("dense", 0.0), ("sparse", 0.0), ("sparse", 0.5)]
    assert report["parity"] < 1e-4
    for r in report["results"]:
        assert r["seconds"] > 0 and r["peak_mib"] >= 0 and "peak_mib_default_allocator" in r
    fractions = [r["present_token_fraction"] for r in report["results"]]
    assert fractions[0] == fractions[1] == 1.0 and fractions[2] < 1.0


def test_gc_benchmark_reports_both_sides(tmp_path):
    import pytest

    from fusioncore.inspect import demo_assets

    if not demo_assets().available:
        pytest.skip("the bundled demo checkpoints are not built")
    out = tmp_path / "gc.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gc.py"), "--repeats", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "| before freeze |" in done.stdout and "| after freeze |" in done.stdout
    report = json.loads(out.read_text())
    assert report["frozen_objects"] > 100_000  # torch, the U-Net's libraries and the model
    assert report["after_freeze"]["objects_walked"] < report["before_freeze"]["objects_walked"] / 100
