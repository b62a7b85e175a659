"""Run profiles: one environment variable picks how big every benchmark is.

``SPIKEFLOPS_PROFILE=ci`` (CPU-sized, minutes; also measures the GPU where there
is one), ``regular`` (a GPU runner's nightly run, GPU only) or ``full`` (the
seeds' full sizes, GPU only). Both harnesses and the CLI's
quick run read the same profile so their numbers line up.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import SpikeflopsError

PROFILE_ENV_VAR = "SPIKEFLOPS_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    gpt_sizes: tuple[str, ...]          # GPT presets measured by time/track benchmarks
    gpt_batch: int                       # batch for the timed forward / train step
    gpt_context: int | None              # context length override (None: the preset's)
    gpt_repeats: int                     # timed repeats per measurement
    gpt_memory_limit_bytes: int          # max-batch budget on a CPU (GPU uses the device)
    superspike_size: str                 # SuperSpike preset (see superspike.params.SIZES)
    superspike_trials: int               # trials per convergence run
    superspike_timing_trials: int        # trials per timed SuperSpike run
    superspike_seeds: tuple[int, ...]    # seeds of the convergence runs (the gate compares across them)
    devices: tuple[str, ...]             # devices the harnesses measure (where this machine has them)


PROFILES = {
    "ci": Profile("ci", gpt_sizes=("gpt-nano",), gpt_batch=4, gpt_context=None, gpt_repeats=5,
                  gpt_memory_limit_bytes=256 * 2**20, superspike_size="ci",
                  superspike_trials=6, superspike_timing_trials=5,
                  superspike_seeds=(0, 1, 2), devices=("cpu", "cuda")),
    "regular": Profile("regular", gpt_sizes=("gpt-small",), gpt_batch=8, gpt_context=None,
                       gpt_repeats=10, gpt_memory_limit_bytes=8 * 2**30,
                       superspike_size="full", superspike_trials=60, superspike_timing_trials=3,
                       superspike_seeds=(0, 1, 2), devices=("cuda",)),
    "full": Profile("full", gpt_sizes=("gpt-small", "gpt-medium", "gpt-large", "gpt-xl"),
                    gpt_batch=16, gpt_context=None, gpt_repeats=20,
                    gpt_memory_limit_bytes=16 * 2**30, superspike_size="full",
                    superspike_trials=600, superspike_timing_trials=5,
                    superspike_seeds=(0, 1, 2), devices=("cuda",)),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else the one in ``SPIKEFLOPS_PROFILE``, else ``ci``."""
    name = name or os.environ.get(PROFILE_ENV_VAR) or "ci"
    try:
        return PROFILES[name]
    except KeyError:
        raise SpikeflopsError(
            f"unknown profile {name!r} (from {PROFILE_ENV_VAR}); choose one of {', '.join(PROFILES)}"
        ) from None


def asv_bench_regex(profile: Profile, has_cuda: bool) -> str:
    """An ``asv run -b`` pattern that selects the parameter combinations this profile runs on this machine.

    asv starts a process for every parameter combination it is asked to run, even one that
    will be skipped; combinations left out by ``-b`` cost nothing (asv records them as n/a).
    asv matches against ``name('param', 'param', ...)``, so excluded values are matched quoted.
    """
    from .gpt.config import SIZES

    excluded = [s for s in SIZES if s not in profile.gpt_sizes]
    excluded += [d for d in ("cpu", "cuda") if d not in profile.devices or (d == "cuda" and not has_cuda)]
    if not excluded:
        return "."
    return "^(?!.*'(" + "|".join(re.escape(e) for e in excluded) + ")')"
