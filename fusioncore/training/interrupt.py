"""Ctrl-C during training: finish the optimiser step, keep the training state, then stop.

A KeyboardInterrupt raised wherever the signal lands can leave an optimiser step half applied
(some parameters updated, others not), so the state written after it would not resume the
run it came from. While :class:`StepEndInterrupt` is active, the first Ctrl-C is only noted;
the training loop looks at :attr:`StepEndInterrupt.requested` when a step ends, writes the
training state there and raises :class:`TrainingInterrupted`, which says where the state is.
A second Ctrl-C interrupts at once (a step that hangs can still be left).

It is active only where it can work: in the main thread (Python delivers signals there) and
when Python's own SIGINT handler is in place (a host that installed its own keeps it).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C after the state of optimiser step ``global_step`` was written to
    ``state_dir`` (resuming from it continues the run exactly)."""

    def __init__(self, state_dir: Path, global_step: int, total_steps: int) -> None:
        super().__init__(f"stopped after optimiser step {global_step} of {total_steps}; "
                         f"the training state is kept in {state_dir}")
        self.state_dir = Path(state_dir)
        self.global_step = global_step
        self.total_steps = total_steps


class StepEndInterrupt:
    """Context manager deferring the first Ctrl-C to the end of the current step (module doc).

    ``enabled=False`` (no state folder to keep the state in, or a sharded run whose ranks would
    have to agree on the step) leaves Ctrl-C as it is: an immediate KeyboardInterrupt.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requested = False
        self.active = False
        self._previous = None

    def __enter__(self) -> "StepEndInterrupt":
        self.requested = False
        if (self.enabled and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._note)
            self.active = True
        return self

    def _note(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("Ctrl-C: stopping when this optimiser step ends and keeping the training state "
              "(press Ctrl-C again to stop at once, without it)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> bool:
        if self.active:
            signal.signal(signal.SIGINT, self._previous)
            self.active = False
        return False


__all__ = ["StepEndInterrupt", "TrainingInterrupted"]
