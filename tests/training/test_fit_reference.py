"""``fit`` gives the numbers the loop gave before it became a run object of small steps.

``fit_reference.json`` was recorded with ``python tests/training/fit_scenarios.py`` on the loop
as it was at commit 5409ed9 (one function of 226 lines). Every scenario must end with the same
history, step losses, selection, class weights and weights. Numbers are compared to 1e-6
relative (a different CPU or thread count may change the last bits of a sum; a changed random
stream, batch order or schedule step changes them by far more); the weights' sha256 was
compared exactly on the machine that recorded them (see the module's docstring).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_scenarios import SCENARIOS, run_scenario  # noqa: E402

REFERENCE = json.loads((Path(__file__).resolve().parent / "fit_reference.json").read_text())


def _assert_close(got, want, where: str) -> None:
    """Recursive comparison: numbers to 1e-6 relative, everything else exactly."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, (int, float)), f"{where}: {got!r} is not a number"
        if math.isnan(want):
            assert math.isnan(got), f"{where}: {got} != nan"
        else:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-9), f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.fixture
def one_thread():
    """The reference was recorded with one torch thread (fit_scenarios.py's main); two threads
    sum in another order, which moved a loss by 1.2e-6 relative in the full suite."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fit_matches_the_recorded_run(name, one_thread):
    got = run_scenario(name)
    want = dict(REFERENCE[name])
    want_weights, got_weights = want.pop("weights"), got.pop("weights")
    _assert_close(json.loads(json.dumps(got)), want, name)  # tuples as lists, as recorded
    _assert_close(got_weights["sum"], want_weights["sum"], f"{name}.weights.sum")
    _assert_close(got_weights["sum_sq"], want_weights["sum_sq"], f"{name}.weights.sum_sq")


def test_the_comparison_catches_a_changed_number():
    """The tolerance is tight enough for a one-in-a-million change to fail it."""
    want = REFERENCE["minibatch_early"]["history"]
    changed = json.loads(json.dumps(want))
    changed[-1]["loss"] *= 1 + 1e-5
    with pytest.raises(AssertionError, match="loss"):
        _assert_close(changed, want, "history")
