"""Model constants (GeNN units: mV, ms, nA-ish) and network sizes.

Values follow GeNN's superspike demo, which follows Zenke & Ganguli (2018).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import SpikeflopsError

TIMESTEP_MS = 0.1

# Neurons (hidden and output share them)
C_NF = 10.0
TAU_MEM_MS = 10.0
V_REST_MV = -60.0
V_THRESH_MV = -50.0
TAU_REFRAC_MS = 5.0
TAU_SYN_MS = 5.0                 # ExpCurr synapses into hidden and output

# SuperSpike rule
TAU_RISE_MS = 5.0
TAU_DECAY_MS = 10.0
BETA = 1000.0                    # surrogate-derivative steepness (per V, hence the 0.001 in the code)
SIGMA_PRIME_FLOOR_MV = -80.0     # below this voltage the surrogate derivative is zero

# Optimiser (r_max_prop: per-synapse RMSprop / AMSGrad-like)
TAU_RMS_MS = 30000.0
R0 = 0.001 * 1000.0              # learning rate; Auryn's units are 1000x GeNN's
R0_DECAY_EVERY_TRIALS = 400      # r0 drops 10x at this trial (and every multiple)
EPSILON = 1e-32
UPDATE_TIME_MS = 500.0

# Weights (Auryn volts -> GeNN millivolts)
W_MIN = -0.1 * 1000.0
W_MAX = 0.1 * 1000.0
W0 = 0.05 * 1000.0               # initial weight scale: sd = W0 / sqrt(fan-in)

# Error
TAU_AVG_ERR_MS = 10000.0
INPUT_FREQ_HZ = 5.0

_TAU_DECAY_S, _TAU_RISE_S, TAU_AVG_ERR_S = TAU_DECAY_MS / 1000, TAU_RISE_MS / 1000, TAU_AVG_ERR_MS / 1000
# Normalises the squared, double-exponentially filtered spike-train difference (the demo's formula).
SCALE_TR_ERR_FLT = 1.0 / (((_TAU_DECAY_S * _TAU_RISE_S) / (_TAU_DECAY_S - _TAU_RISE_S)) ** 2
                          * (_TAU_DECAY_S / 2 + _TAU_RISE_S / 2
                             - 2 * (_TAU_DECAY_S * _TAU_RISE_S) / (_TAU_DECAY_S + _TAU_RISE_S))) / TAU_AVG_ERR_S


def t_peak_ms(tau_rise: float = TAU_RISE_MS, tau_decay: float = TAU_DECAY_MS) -> float:
    """Time of the peak of the difference-of-exponentials kernel."""
    return (tau_decay * tau_rise) / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)


def kernel_norm_factor() -> float:
    """Scales the error kernel to a peak of one."""
    tp = t_peak_ms()
    return 1.0 / (-math.exp(-tp / TAU_RISE_MS) + math.exp(-tp / TAU_DECAY_MS))


@dataclass(frozen=True)
class NetworkSize:
    name: str
    num_input: int
    num_hidden: int
    num_output: int
    trial_ms: float

    @property
    def trial_timesteps(self) -> int:
        return int(round(self.trial_ms / TIMESTEP_MS))

    @property
    def update_timesteps(self) -> int:
        return int(round(UPDATE_TIME_MS / TIMESTEP_MS))

    def to_dict(self) -> dict:
        return asdict(self)


SIZES = {
    # The demo's network: 200 inputs, 256 hidden, 200 outputs, 1890 ms trials (18,900 steps).
    "full": NetworkSize("full", 200, 256, 200, 1890.0),
    # CPU-sized: same dynamics and time step, fewer neurons and a shorter trial.
    "ci": NetworkSize("ci", 100, 128, 50, 500.0),
}


def size_for_target(max_neuron_id: int, last_spike_s: float) -> NetworkSize | None:
    """The smallest preset whose output layer and trial hold a target of this extent (None: none does)."""
    fitting = [s for s in SIZES.values() if max_neuron_id <= s.num_output and last_spike_s * 1000.0 < s.trial_ms]
    return min(fitting, key=lambda s: (s.num_output, s.trial_ms), default=None)


def describe_sizes() -> str:
    return "; ".join(f"{s.name}: {s.num_output} outputs over {s.trial_ms / 1000:g} s" for s in SIZES.values())


def get_size(name: str) -> NetworkSize:
    try:
        return SIZES[name]
    except KeyError:
        raise SpikeflopsError(f"unknown SuperSpike size {name!r}; choose one of {', '.join(SIZES)}") from None
