"""Shared asv settings, parameter values and the checks that skip a case this machine or profile can't run.

asv starts one process per benchmark and parameter combination, so the checks here
decide what to skip *before* torch is imported: a skipped case costs a Python start,
not a torch import. Thin adapters only: all model code lives in ``workloads``.
"""

from __future__ import annotations

import glob
import os
import sys

from workloads.gpt.config import SIZES
from workloads.profiles import PROFILES, get_profile

PROFILE = get_profile()            # SPIKEFLOPS_PROFILE=ci|regular|full
DEVICES = ["cpu", "cuda"]
DTYPES = ["float32", "bfloat16"]
# every GPT size any profile measures, in SIZES order: the same list on every machine and profile
GPT_SIZES = [s for s in SIZES if any(s in p.gpt_sizes for p in PROFILES.values())]


class Benchmark:
    """Pins asv's knobs for every suite: one process, few repeats, timeouts that fit GPU runs."""

    timeout = 1800
    processes = 1
    repeat = (1, 5, 60.0)
    number = 1
    warmup_time = 0.0
    rounds = 1


def cuda_available() -> bool:
    """torch.cuda.is_available(), answered without importing torch where no GPU device node exists."""
    if sys.platform.startswith("linux") and not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd")):
        return False
    import torch

    return torch.cuda.is_available()


def require_device(device: str, dtype: str = "float32") -> None:
    """Skip (NotImplementedError) what this machine can't run; CPU cases are float32 only."""
    if device == "cpu" and dtype != "float32":
        raise NotImplementedError("CPU runs are float32 only")
    if device not in PROFILE.devices:
        raise NotImplementedError(f"the {PROFILE.name} profile measures {', '.join(PROFILE.devices)} only")
    if device == "cuda" and not cuda_available():
        raise NotImplementedError("no CUDA device on this machine")


def require_in_profile(condition: bool, why: str) -> None:
    if not condition:
        raise NotImplementedError(f"not in the {PROFILE.name} profile: {why}")


def runnable_devices() -> list[str]:
    return [d for d in DEVICES if d in PROFILE.devices and (d == "cpu" or cuda_available())]


def default_dtype(device: str) -> str:
    return "bfloat16" if device == "cuda" else "float32"


def sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
