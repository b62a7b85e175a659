"""Largest batch that fits: grow by doubling, then bisect, with OOM detection and clean-up.

The search only sees a ``fits(batch) -> bool`` callable; how a probe runs (in
this process on a GPU, or in a child process under an address-space limit on a
CPU) is the caller's choice. A batch is reported only if a probe of exactly that
size succeeded.
"""

from __future__ import annotations

import gc
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


@dataclass
class SearchResult:
    max_batch: int
    probes: list[Probe] = field(default_factory=list)
    hit_cap: bool = False    # True when the cap fitted: the real maximum may be larger

    def to_dict(self) -> dict:
        return {"max_batch": self.max_batch, "hit_cap": self.hit_cap,
                "probes": [{"batch": p.batch, "fits": p.fits} for p in self.probes]}


def find_max_batch(fits: Callable[[int], bool], cap: int = 4096,
                   progress: Callable[[int, bool], None] | None = None) -> SearchResult:
    """Largest b in 1..cap with fits(b), assuming fitting is monotone in b."""
    if cap < 1:
        raise SpikeflopsError(f"batch cap must be >= 1, got {cap}")
    result = SearchResult(max_batch=0)

    def probe(b: int) -> bool:
        ok = bool(fits(b))
        result.probes.append(Probe(b, ok))
        if progress:
            progress(b, ok)
        return ok

    if not probe(1):
        raise SpikeflopsError("batch 1 does not fit: the model alone needs more memory than is available")
    good, bad = 1, None
    while bad is None:                     # grow
        nxt = min(good * 2, cap)
        if nxt == good:
            result.hit_cap = True
            break
        if probe(nxt):
            good = nxt
        else:
            bad = nxt
    while bad is not None and bad - good > 1:   # bisect: good fits, bad does not
        mid = (good + bad) // 2
        if probe(mid):
            good = mid
        else:
            bad = mid
    result.max_batch = good
    return result
