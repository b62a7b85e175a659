"""Shared asv settings and the profile gate. Thin adapters only: all model code lives in `workloads`."""

from __future__ import annotations

import torch

from workloads.profiles import get_profile

PROFILE = get_profile()            # SPIKEFLOPS_PROFILE=ci|regular|full
DEVICES = ["cpu", "cuda"]
DTYPES = ["float32", "bfloat16"]


class Benchmark:
    """Pins asv's knobs for every suite: one process, few repeats, timeouts that fit GPU runs."""

    timeout = 1800
    processes = 1
    repeat = (1, 5, 60.0)
    number = 1
    warmup_time = 0.0
    rounds = 1


def require_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("no CUDA device on this machine")
    return torch.device(device)


def require_in_profile(condition: bool, why: str) -> None:
    if not condition:
        raise NotImplementedError(f"not in the {PROFILE.name} profile: {why}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
