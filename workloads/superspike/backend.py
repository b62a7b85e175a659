"""What every SuperSpike backend offers the shared trial loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

TORCH_PHASES = ("step", "gradient_learn")   # the torch backend's phase timers (synchronised)

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
