"""Device-synchronised timing: warm-up outside the timed region, repeats, median and spread.

On CUDA each repeat is bracketed by CUDA events and the device is synchronised
once at the end; on a CPU ``time.perf_counter`` is used. GPU work is
asynchronous, so a wall clock without synchronisation measures launch time only.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch


def synchronize(device: torch.device | str | None) -> None:
    """Wait for all queued work on ``device`` (a no-op on CPUs)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class TimingStats:
    """Seconds per call over ``repeats`` timed calls."""

    samples: tuple[float, ...]
    median: float
    mean: float
    stdev: float
    minimum: float
    maximum: float
    q25: float
    q75: float

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25

    @property
    def repeats(self) -> int:
        return len(self.samples)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["samples"] = list(self.samples)
        d["iqr"] = self.iqr
        return d

    @classmethod
    def from_samples(cls, samples) -> "TimingStats":
        samples = tuple(float(s) for s in samples)
        if not samples:
            raise ValueError("no timing samples")
        if len(samples) >= 2:
            q25, _, q75 = statistics.quantiles(samples, n=4, method="inclusive")
        else:
            q25 = q75 = samples[0]
        return cls(samples=samples, median=statistics.median(samples), mean=statistics.fmean(samples),
                   stdev=statistics.stdev(samples) if len(samples) > 1 else 0.0,
                   minimum=min(samples), maximum=max(samples), q25=q25, q75=q75)


def measure(fn: Callable[[], object], device: torch.device | str | None = None, warmup: int = 2,
            repeats: int = 10) -> TimingStats:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for _ in range(warmup):
        fn()
    synchronize(device)
    if device is not None and torch.device(device).type == "cuda":
        device = torch.device(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(repeats)]
        # Events go on the stream of the device being timed: on cuda:1 the current stream of the
        # current device (cuda:0) would see none of the work.
        with torch.cuda.device(device):
            stream = torch.cuda.current_stream(device)
            for start, end in events:
                start.record(stream)
                fn()
                end.record(stream)
        torch.cuda.synchronize(device)
        samples = [start.elapsed_time(end) / 1e3 for start, end in events]
    else:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    return TimingStats.from_samples(samples)


class Stopwatch:
    """Accumulates device-synchronised seconds per named phase (e.g. a training step's parts)."""

    def __init__(self, device: torch.device | str | None = None):
        self.device = device
        self.totals: dict[str, float] = {}

    def time(self, phase: str, fn: Callable[[], object]):
        synchronize(self.device)
        t0 = time.perf_counter()
        result = fn()
        synchronize(self.device)
        self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - t0
        return result

    def reset(self) -> None:
        self.totals.clear()
