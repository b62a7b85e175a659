"""What every SuperSpike backend offers the shared trial loop."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

TORCH_PHASES = ("step", "gradient_learn")   # the torch backend's phase timers (synchronised)

# Every trial runs with denormal floats flushed to zero (FTZ/DAZ in the stepping thread), on both backends,
# so they stay one program in floating point. GeNN's generated code is compiled with -ffast-math but its
# runner library is linked without it, so FTZ was never switched on: on an Intel CPU the decaying traces
# sank into denormals and each full trial cost more than the last (docs/measurements.md: denormals).
# A labelled choice: flushed and unflushed runs round differently.
FLUSH_DENORMALS = True


@contextlib.contextmanager
def denormals_flushed(enabled: bool = FLUSH_DENORMALS):
    """Flush denormals to zero in this thread for the block (x86 MXCSR FTZ/DAZ, through torch); yields
    whether the CPU honours it. GPU kernels are not affected."""
    if not enabled:
        yield False
        return
    import torch

    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        torch.set_flush_denormal(False)

@dataclass
class TrialOutput:
    """What one trial produced, before the trial loop turns it into error metrics."""

    spike_counts: dict[str, int]            # per population, this trial
    sum_sq_error: float                     # sum over output neurons and steps of errTilda^2 * dt [s]
    avg_sqr_err_sum: float                  # sum over output neurons of the running avgSqrErr at trial end
    kernel_seconds: dict[str, float]        # this trial's time per kernel (GeNN) or phase (PyTorch)
    recorded: dict[str, tuple[np.ndarray, np.ndarray]] | None = field(default=None)  # pop -> (t_ms, ids)


class Backend(Protocol):
    name: str          # "genn" or "torch"
    device: str        # "cpu" / "cuda" (torch) or GeNN's backend name

    def run_trial(self, r0: float, record: bool = False) -> TrialOutput:
        """Simulate one trial (weights update every UPDATE_TIME_MS of global time) at learning rate r0."""
        ...
