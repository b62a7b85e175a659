"""The trial loop both backends share: learning-rate schedule, error metrics, records, time-to-target.

Two error measures per trial:
- ``running_error``: the demo's printed number, a bias-corrected 10 s running mean of the
  squared, double-exponentially filtered (van Rossum) spike-train difference. The value
  recorded after trial k is the one the demo prints at the start of trial k + 1.
- ``trial_error``: the same quantity averaged over this trial alone (same scale).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from . import params as P
from .backend import FLUSH_DENORMALS, Backend
from .params import NetworkSize
from .targets import SpikeTrains


def learning_rate(trial: int) -> float:
    """r0, divided by 10 at trial 400 (and every further 400)."""
    return P.R0 * 0.1 ** (trial // P.R0_DECAY_EVERY_TRIALS)


def running_error(avg_sqr_err_sum: float, num_output: int, elapsed_steps: int) -> float:
    """The demo's error formula from the summed avgSqrErr after ``elapsed_steps`` global steps."""
    time_s = elapsed_steps * P.TIMESTEP_MS / 1000.0
    return (avg_sqr_err_sum / num_output) * P.SCALE_TR_ERR_FLT / (1.0 - math.exp(-time_s / P.TAU_AVG_ERR_S) + 1e-9)


def trial_error(sum_sq_error: float, size: NetworkSize) -> float:
    """Mean over one trial of the filtered squared difference, on the running error's scale."""
    return P.SCALE_TR_ERR_FLT * P.TAU_AVG_ERR_S * sum_sq_error / (size.num_output * size.trial_ms / 1000.0)


@dataclass
class TrialRecord:
    trial: int
    r0: float
    running_error: float
    trial_error: float
    spikes_input: int
    spikes_hidden: int
    spikes_output: int
    spikes_target: int
    wall_s: float
    kernel_s: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingResult:
    backend: str
    device: str
    size: dict
    seed: int
    num_trials: int
    target_error: float
    trials_to_target: int | None          # trials completed when trial_error first fell below target
    seconds_to_target: float | None       # wall seconds (simulation only) until then
    records: list[TrialRecord]
    recorded_spikes: dict = field(default_factory=dict)   # trial -> pop -> (t_ms, ids); not serialised
    flush_denormals: bool = FLUSH_DENORMALS              # every trial ran with denormals flushed to zero

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("recorded_spikes")
        return d


def train(backend: Backend, size: NetworkSize, target: SpikeTrains, num_trials: int, seed: int,
          record_trials=(), target_error: float | None = None,
          progress: Callable[[TrialRecord], None] | None = None) -> TrainingResult:
    """Run ``num_trials`` trials; ``target_error`` defaults to half of trial 0's error."""
    records: list[TrialRecord] = []
    recorded = {}
    trials_to_target = seconds_to_target = None
    elapsed = 0.0
    record_trials = set(record_trials)
    for trial in range(num_trials):
        r0 = learning_rate(trial)
        t0 = time.perf_counter()
        out = backend.run_trial(r0, record=trial in record_trials)
        wall = time.perf_counter() - t0
        elapsed += wall
        rec = TrialRecord(
            trial=trial, r0=r0,
            running_error=running_error(out.avg_sqr_err_sum, size.num_output, (trial + 1) * size.trial_timesteps),
            trial_error=trial_error(out.sum_sq_error, size),
            spikes_input=out.spike_counts["input"], spikes_hidden=out.spike_counts["hidden"],
            spikes_output=out.spike_counts["output"], spikes_target=target.num_spikes,
            wall_s=wall, kernel_s=out.kernel_seconds)
        records.append(rec)
        if out.recorded is not None:
            recorded[trial] = out.recorded
        if target_error is None:
            target_error = 0.5 * rec.trial_error
        elif trials_to_target is None and rec.trial_error < target_error:
            trials_to_target, seconds_to_target = trial + 1, elapsed
        if progress:
            progress(rec)
    return TrainingResult(backend=backend.name, device=backend.device, size=size.to_dict(), seed=seed,
                          num_trials=num_trials, target_error=target_error if target_error is not None else math.nan,
                          trials_to_target=trials_to_target, seconds_to_target=seconds_to_target,
                          records=records, recorded_spikes=recorded)
