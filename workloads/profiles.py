"""Run profiles: how hard every harness works per case. One environment variable picks one.

``SPIKEFLOPS_PROFILE=ci`` (CPU-sized, minutes; also measures the GPU where there is one),
``regular`` (a GPU runner's nightly run), ``full`` (the reference documents' full sizes) or ``counted``
(instructions per step under valgrind: the cases whose counts gate a change on a shared CPU runner).
Which cases a profile runs is said by each workload's table lines; this module only names
the profiles and their effort knobs. No torch here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import SpikeflopsError

PROFILE_ENV_VAR = "SPIKEFLOPS_PROFILE"
PROFILE_NAMES = ("ci", "regular", "full", "counted")


@dataclass(frozen=True)
class Profile:
    """How hard each harness works per case in a profile (the cases themselves are in the tables)."""

    name: str
    gpt_repeats: int                     # timed steps per GPT measurement
    superspike_timing_trials: int        # timed trials per SuperSpike timing
    cpu_memory_limit_bytes: int          # max-batch budget on a CPU (a GPU uses the whole device)
    # `spikeflops run` times a timed family's calls until it has its rounds AND this many seconds of them
    # (capped at 50x the rounds): five 30 ms steps are one co-tenant's hiccup, a second of them is a median
    timing_budget_s: float = 1.0
    # sized for a GPU runner: its CPU rows (an operator count of gpt-small at batch 8) would exhaust a CPU
    # machine's memory (docs/measurements.md), so without a GPU the profile runs nothing and says why
    needs_gpu: bool = False


PROFILES = {
    "ci": Profile("ci", gpt_repeats=5, superspike_timing_trials=5, cpu_memory_limit_bytes=256 * 2**20,
                  timing_budget_s=1.0),
    "regular": Profile("regular", gpt_repeats=10, superspike_timing_trials=3, cpu_memory_limit_bytes=8 * 2**30,
                       timing_budget_s=2.0, needs_gpu=True),
    "full": Profile("full", gpt_repeats=20, superspike_timing_trials=5, cpu_memory_limit_bytes=16 * 2**30,
                    timing_budget_s=5.0, needs_gpu=True),
    # instruction counts under valgrind, on a CPU: minutes of valgrind, so a profile of their own (CI counts
    # the base and the head of a pull request with it); the timing knobs do not apply
    "counted": Profile("counted", gpt_repeats=1, superspike_timing_trials=1, cpu_memory_limit_bytes=256 * 2**20,
                       timing_budget_s=0.0),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else the one in ``SPIKEFLOPS_PROFILE``, else ``ci``."""
    name = name or os.environ.get(PROFILE_ENV_VAR) or "ci"
    try:
        return PROFILES[name]
    except KeyError:
        raise SpikeflopsError(f"unknown profile {name!r} (from {PROFILE_ENV_VAR}); "
                              f"choose one of {', '.join(PROFILES)}") from None
