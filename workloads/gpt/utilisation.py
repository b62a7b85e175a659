"""MFU and the peak it is quoted against, defined once: for one device, and for every rank of a
distributed step (each rank's model FLOPs over its own device's peak). A fraction everywhere; a
percent only where a harness stores it for display."""

from __future__ import annotations

import functools
from typing import Callable

import torch

from ..hardware import Peak, measure_matmul_peak, peak_for
from .steps import DTYPES


@functools.lru_cache(maxsize=None)
def measured_peak(device: str, dtype: str, repeats: int = 10) -> Peak:
    """The matmul peak of this device and dtype, measured once per process."""
    return measure_matmul_peak(torch.device(device), DTYPES[dtype], repeats=repeats)


def reference_peak(device: torch.device | str, dtype: str, measured: Peak | Callable[[], Peak] | None,
                   gpu_override: str | None = None) -> Peak | None:
    """What MFU is quoted against: the datasheet dense peak where the device has one, else the measured
    peak (``measured``: the peak, or a function that measures it only when the datasheet has none)."""
    datasheet = peak_for(torch.device(device), DTYPES[dtype], gpu_override)
    if datasheet is not None:
        return datasheet
    return measured() if callable(measured) else measured


def utilisation(achieved_flops_per_s: float, peak: Peak | float | None) -> float | None:
    """Model FLOP utilisation (PaLM): achieved model FLOP/s over the reference peak, as a fraction."""
    peak_flops = peak.flops_per_s if isinstance(peak, Peak) else peak
    return None if not peak_flops else achieved_flops_per_s / peak_flops
