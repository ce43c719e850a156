"""``fusioncore explain slide`` end to end: resumes after a kill (SIGKILL mid-run) with the same
results as an uninterrupted run; resolution flags; progress on stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from slide_helpers import REPO, run_cli, slide_factory, textures, tiny_checkpoint  # noqa: F401  (fixtures)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fusioncore", "explain", "slide", *args]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def _run(*args: str) -> dict:
    """The CLI in a single-threaded subprocess (fast and steady on a shared two-core machine)."""
    proc = subprocess.run(_cli(*args), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_resume_after_a_kill(slide_factory, tiny_checkpoint, tmp_path):  # noqa: F811
    path = slide_factory("resume.tif", (1024, 768), levels=2)
    common = ["--checkpoint", str(tiny_checkpoint), "--slide", str(path), "--min-tissue", "0", "--batch-size", "8",
              "--precision", "fp32", "--quiet"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*common, "--out", str(killed)), cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done_file, deadline, done = killed / "work" / "done.npy", time.time() + 120, 0
    while time.time() < deadline and proc.poll() is None:
        if done_file.is_file():
            try:
                done = int(np.load(done_file).sum())
            except (ValueError, OSError, EOFError):
                done = 0
            if done >= 48:
                break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    total = len(np.load(killed / "work" / "tiles.npy"))
    done = int(np.load(done_file).sum())
    assert 0 < done < total and not (killed / "summary.json").exists()

    resumed = _run(*common, "--out", str(killed))
    assert resumed["run"]["resumed_from"] == done and resumed["run"]["tiles_computed"] == total - done
    fresh = _run(*common, "--out", str(tmp_path / "fresh"))
    assert fresh["run"]["resumed_from"] == 0
    for name in ("cells", "probs", "confidence"):
        np.testing.assert_allclose(np.load(killed / "work" / f"{name}.npy"), np.load(tmp_path / "fresh" / "work" / f"{name}.npy"),
                                   atol=1e-5, rtol=0)
    assert resumed["prediction"]["predicted"] == fresh["prediction"]["predicted"]
    assert resumed["prediction"]["probabilities"] == pytest.approx(fresh["prediction"]["probabilities"], abs=1e-6)
    assert (killed / "regions.csv").read_text() == (tmp_path / "fresh" / "regions.csv").read_text()


def test_resolution_flags_and_progress(slide_factory, tiny_checkpoint, tmp_path):  # noqa: F811
    path = slide_factory("levels.tif", (1024, 768), levels=3, mpp=0.5)
    proc = subprocess.run(_cli("--checkpoint", str(tiny_checkpoint), "--slide", str(path), "--out", str(tmp_path / "a"),
                               "--mpp", "2.0", "--precision", "fp32"),
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["resolution"] == {"downsample": 4.0, "level": 2, "mpp": 2.0, "source": "--mpp 2"}
    assert summary["grid"]["shape"] == [6, 8]  # 1024 x 768 px at 1/4 in 32-px tiles
    assert "tile/s" in proc.stderr and "100%" in proc.stderr  # tqdm's bar with rate and ETA
    out = _run("--checkpoint", str(tiny_checkpoint), "--slide", str(path), "--out", str(tmp_path / "b"), "--level", "1",
               "--quiet", "--precision", "fp32")
    assert out["resolution"]["downsample"] == 2.0 and out["resolution"]["mpp"] == 1.0
    code, _ = run_cli("explain", "slide", "--checkpoint", str(tiny_checkpoint), "--slide", str(path),
                      "--out", str(tmp_path / "c"), "--mpp", "0.1", "--quiet")
    assert code == 2  # finer than level 0: refused, not upsampled
