"""Largest batch that fits: grow by doubling, then bisect, with OOM detection and clean-up.

The search only sees a ``fits(batch) -> bool`` callable; how a probe runs (in
this process on a GPU, or in a child process under an address-space limit on a
CPU) is the caller's choice. A batch is reported only if a probe of exactly that
size succeeded.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .errors import SpikeflopsError

# Messages of allocation failures that reach Python as a plain RuntimeError, not an OutOfMemoryError:
# the CPU allocator's c10::Error when malloc fails; cuBLAS failing to allocate its workspace or handle;
# a CUDA launch that hits an out-of-memory error; cuDNN without room for its workspace.
OOM_MESSAGES = (
    "can't allocate memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDA error: out of memory",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
    "CUDA out of memory",
)


def is_oom_error(exc: BaseException) -> bool:
    """True for out-of-memory failures of the CUDA caching allocator, cuBLAS, cuDNN, the CPU allocator or Python."""
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None), MemoryError) if t)
    if isinstance(exc, oom_types):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in OOM_MESSAGES)


def release_memory(device: torch.device | None = None) -> None:
    """Drop everything a probe left behind so the next probe starts from the same state."""
    gc.collect()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


@dataclass
class Probe:
    batch: int
    fits: bool
    seconds: float = 0.0           # how long the probe took (progress estimates only; not recorded)


@dataclass(frozen=True)
class Outlook:
    """Where a search stands after a probe: the largest batch known to fit, the smallest known not to (None
    while growing), and at most how many probes are left."""

    good: int
    bad: int | None
    probes_left: int

    def describe(self, last_seconds: float) -> str:
        if self.probes_left == 0:
            return "done"
        if self.bad is None:
            return (f"growing from {self.good}; at most {self.probes_left} more probes (each larger than "
                    f"the last, which took {last_seconds:.1f} s)")
        plural = "s" if self.probes_left > 1 else ""
        return (f"between {self.good} and {self.bad}: {self.probes_left} more probe{plural}, "
                f"about {self.probes_left * last_seconds:.0f} s")


@dataclass
class SearchResult:
    max_batch: int
    probes: list[Probe] = field(default_factory=list)
    hit_cap: bool = False    # True when the cap fitted: the real maximum may be larger

    def to_dict(self) -> dict:
        return {"max_batch": self.max_batch, "hit_cap": self.hit_cap,
                "probes": [{"batch": p.batch, "fits": p.fits} for p in self.probes]}


def bisect_probes(good: int, bad: int) -> int:
    """Probes a bisection between a fitting ``good`` and a failing ``bad`` takes: ceil(log2(bad - good))."""
    return max(0, (bad - good - 1).bit_length())


def probes_left(good: int, bad: int | None, cap: int) -> int:
    """At most how many probes the search still makes from this state (the worst case over the answers)."""
    if bad is not None:
        return bisect_probes(good, bad)
    worst, size, grown = 0, good, 0
    while size < cap:                    # failing at the k-th doubling leaves a bisection of [prev, next)
        nxt = min(size * 2, cap)
        grown += 1
        worst = max(worst, grown + bisect_probes(size, nxt))
        size = nxt
    return max(worst, grown)


def find_max_batch(fits: Callable[[int], bool], cap: int = 4096,
                   progress: Callable[[Probe, Outlook], None] | None = None) -> SearchResult:
    """Largest b in 1..cap with fits(b), assuming fitting is monotone in b. ``progress`` sees each probe
    and what is left of the search."""
    if cap < 1:
        raise SpikeflopsError(f"batch cap must be >= 1, got {cap}")
    result = SearchResult(max_batch=0)
    good, bad = 0, None

    def probe(b: int) -> bool:
        nonlocal good, bad
        start = time.perf_counter()
        ok = bool(fits(b))
        result.probes.append(Probe(b, ok, time.perf_counter() - start))
        if ok:
            good = b
        else:
            bad = b
        if progress:
            progress(result.probes[-1], Outlook(good, bad, probes_left(good, bad, cap) if good else 0))
        return ok

    if not probe(1):
        raise SpikeflopsError("batch 1 does not fit: the model alone needs more memory than is available")
    while bad is None:                     # grow
        nxt = min(good * 2, cap)
        if nxt == good:
            result.hit_cap = True
            break
        probe(nxt)
    while bad is not None and bad - good > 1:   # bisect: good fits, bad does not
        probe((good + bad) // 2)
    result.max_batch = good
    return result
