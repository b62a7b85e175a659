"""Initial conditions from one seeded generator: frozen Poisson input and initial weights.

Both backends start from these arrays, so a run is reproducible and GeNN and
PyTorch begin a comparison from identical states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import INPUT_FREQ_HZ, W0, W_MAX, W_MIN, NetworkSize
from .targets import SpikeTrains


@dataclass(frozen=True)
class InitialConditions:
    seed: int
    input_spikes: SpikeTrains       # frozen Poisson input, replayed every trial
    w_input_hidden: np.ndarray      # float32 (num_input, num_hidden)
    w_hidden_output: np.ndarray     # float32 (num_hidden, num_output); feedback is its transpose


def frozen_poisson(rng: np.random.Generator, num_neurons: int, rate_hz: float, duration_ms: float) -> SpikeTrains:
    """Poisson spike trains from exponential inter-spike intervals, cut at ``duration_ms``."""
    isi_ms = 1000.0 / rate_hz
    times, ids = [], []
    for n in range(num_neurons):
        t = isi_ms * rng.exponential()
        while t < duration_ms:
            times.append(t)
            ids.append(n)
            t += isi_ms * rng.exponential()
    return SpikeTrains.from_spikes(times, ids, num_neurons)


def normal_clipped(rng: np.random.Generator, shape, sd: float, low: float = W_MIN, high: float = W_MAX) -> np.ndarray:
    """Normal(0, sd) redrawn until inside [low, high], as GeNN's NormalClipped initialiser."""
    values = rng.normal(0.0, sd, size=shape)
    bad = (values < low) | (values > high)
    while bad.any():
        values[bad] = rng.normal(0.0, sd, size=int(bad.sum()))
        bad = (values < low) | (values > high)
    return values.astype(np.float32)


def make_initial_conditions(size: NetworkSize, seed: int = 0) -> InitialConditions:
    rng = np.random.default_rng(seed)
    inputs = frozen_poisson(rng, size.num_input, INPUT_FREQ_HZ, size.trial_ms)
    w_ih = normal_clipped(rng, (size.num_input, size.num_hidden), W0 / np.sqrt(size.num_input))
    w_ho = normal_clipped(rng, (size.num_hidden, size.num_output), W0 / np.sqrt(size.num_hidden))
    return InitialConditions(seed, inputs, w_ih, w_ho)
