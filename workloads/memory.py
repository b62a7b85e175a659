"""Largest batch that fits: grow by doubling, then bisect (or aim, see below), with OOM detection and clean-up.

The search only sees a ``fits(batch)`` callable returning a bool or a :class:`ProbeAnswer`;
how a probe runs (in this process on a GPU, or in a child process under an address-space
limit on a CPU) is the caller's choice. A batch is reported only if a probe of exactly that
size succeeded and one of the next size failed (or it is the cap).

Aimed search: when the caller knows the memory budget and its fitting probes say how much
they used, memory grows linearly enough with the batch (gpt-nano on a CPU: 8.2 MiB + 1.13
MiB per sequence, within a sequence from 1 to 230) that the line through the two largest
fitting probes points at the boundary. The search then probes there and gallops (1, 2, 4
... away) until it has the boundary between two probes, and bisects what is left: the same
answer, proved by the same two probes, in about half the probes of a bisection, and the
ones it saves are the largest, slowest ones. A wrong line costs probes, never the answer.
"""

from __future__ import annotations

import functools
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


@dataclass(frozen=True)
class ProbeAnswer:
    """What a probe says: whether the batch fitted and, if it did and the prober can tell, the most memory
    it used against the search's budget (bytes)."""

    fits: bool
    used_bytes: int | None = None

    def __bool__(self) -> bool:
        return self.fits


@dataclass
class Probe:
    batch: int
    fits: bool
    seconds: float = 0.0           # how long the probe took (progress estimates only; not recorded)
    used_bytes: int | None = None  # memory the probe used, where the prober said (aims the search)


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


# ---- the aimed search's worst cases, in offsets from what is known (so they memoise across searches)

def _bits(n: int) -> int:
    return max(0, n).bit_length()      # probes a bisection of n unknown batches takes


@functools.lru_cache(maxsize=None)
def _gallop_left(unknown: int, step: int) -> int:
    """Probes left galloping from a decided batch with ``unknown`` undecided batches beyond it (up from a
    fitting one, or down from a failing one: the count is the same either way), the next probe ``step``
    away, then bisecting."""
    if unknown <= 0:
        return 0
    x = min(step, unknown)
    return 1 + max(_bits(x - 1), _gallop_left(unknown - x, 2 * step))


@functools.lru_cache(maxsize=None)
def _aim_left(unknown: int, furthest: int) -> int:
    """Probes left after aiming anywhere among the first ``furthest`` of ``unknown`` undecided batches."""
    if unknown <= 0 or furthest <= 0:
        return 0
    # aiming at the j-th: 1 + max(up over unknown - j, down over j - 1); both grow with their span, so the
    # worst aim is the nearest (the longest gallop up) or the furthest (the longest gallop down)
    return 1 + max(_gallop_left(unknown - 1, 1), _gallop_left(min(furthest, unknown) - 1, 1))


def _aimed_growth_left(good: int, cap: int) -> int:
    """At most how many probes an aimed search still makes while it is growing from ``good``: it may double
    again, or aim below the next doubling (then gallop as far as the cap), or bisect below a failed doubling."""
    if good >= cap:
        return 0
    nxt = min(2 * good, cap)
    below = nxt - good - 1                             # undecided batches under the next doubling
    doubled = 1 + max(0 if nxt == cap else _aimed_growth_left(nxt, cap), _aim_left(below, below), _bits(below))
    return max(doubled, _aim_left(cap - good, below))


def aim(probes: list[Probe], budget: int, good: int, bad: int | None, cap: int) -> int | None:
    """The batch the line through the two largest fitting probes that said what they used reaches the budget
    at, kept inside (good, bad) and the cap; None when there is no such line (fewer points, a flat one)."""
    points = sorted({p.batch: p.used_bytes for p in probes if p.fits and p.used_bytes is not None}.items())
    if len(points) < 2:
        return None
    (b1, u1), (b2, u2) = points[-2], points[-1]
    if u2 <= u1:
        return None
    guess = b2 + int((budget - u2) * (b2 - b1) // (u2 - u1))
    return max(good + 1, min(guess, (bad - 1) if bad is not None else cap))


def find_max_batch(fits: Callable[[int], "bool | ProbeAnswer"], cap: int = 4096,
                   progress: Callable[[Probe, Outlook], None] | None = None,
                   budget_bytes: int | None = None) -> SearchResult:
    """Largest b in 1..cap with fits(b), assuming fitting is monotone in b. ``progress`` sees each probe
    and what is left of the search. With ``budget_bytes`` and probes that say what they used, the search
    aims (see the module's doc); without, it doubles and bisects."""
    if cap < 1:
        raise SpikeflopsError(f"batch cap must be >= 1, got {cap}")
    result = SearchResult(max_batch=0)
    aimed = budget_bytes is not None
    good, bad = 0, None
    phase, gallop_up, step = "grow", None, 1      # gallop_up: the aim fitted (None until it answers)

    def still_left() -> int:
        """At most how many probes the search makes after the one it just made."""
        if not good:
            return 0
        if not aimed:
            return probes_left(good, bad, cap)
        undecided = (bad - 1 if bad is not None else cap) - good
        if phase == "grow":
            return (_aimed_growth_left(good, cap) if bad is None
                    else max(_bits(undecided), _aim_left(undecided, undecided)))
        if phase == "gallop":
            up = result.probes[-1].fits if gallop_up is None else gallop_up
            if result.probes[-1].fits == up:          # still galloping the same way
                return _gallop_left(undecided, step)
        return _bits(undecided)                       # bracketed: a bisection

    def probe(b: int) -> bool:
        nonlocal good, bad
        start = time.perf_counter()
        answer = fits(b)
        ok, used = (answer.fits, answer.used_bytes) if isinstance(answer, ProbeAnswer) else (bool(answer), None)
        result.probes.append(Probe(b, ok, time.perf_counter() - start, used if ok else None))
        if ok:
            good = b
        else:
            bad = b
        if progress:
            progress(result.probes[-1], Outlook(good, bad, still_left()))
        return ok

    if not probe(1):
        raise SpikeflopsError("batch 1 does not fit: the model alone needs more memory than is available")
    target = None
    while bad is None:                     # grow, until the line puts the boundary below the next doubling
        nxt = min(good * 2, cap)
        if nxt == good:
            result.hit_cap = True
            break
        target = aim(result.probes, budget_bytes, good, bad, cap) if aimed else None
        if target is not None and target < nxt:
            break
        target = None
        probe(nxt)
    if aimed and target is None and bad is not None and bad - good > 1:
        target = aim(result.probes, budget_bytes, good, bad, cap)
    if target is not None:                 # aim, then gallop away from the aim until the boundary is bracketed
        phase = "gallop"
        gallop_up = probe(target)
        while True:
            top = bad - 1 if bad is not None else cap
            if (good >= top) if gallop_up else (bad - good <= 1):
                break
            nxt = min(good + step, top) if gallop_up else max(bad - step, good + 1)
            step *= 2                      # the step after this probe, for the outlook it reports
            if probe(nxt) != gallop_up:
                break
        result.hit_cap = bad is None
    phase = "bisect"
    while bad is not None and bad - good > 1:   # bisect: good fits, bad does not
        probe((good + bad) // 2)
    result.max_batch = good
    return result
