"""What the machine was doing while a measurement ran, and the thread count a measurement uses.

On a shared runner a co-tenant can deschedule the benchmark: the wall time grows while the
process's CPU time does not. :class:`LoadProbe` records both (and the load average), so a result
carries the evidence of its own contention and the gate can refuse to judge a contended run
instead of calling it a regression.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LoadRecord:
    wall_s: float
    cpu_s: float                      # this process's CPU time (all its threads) and its finished
                                      # children's, over the same interval
    threads: int                      # intra-op threads the measured work could use
    load_before: float | None         # 1-minute load average, where the OS reports one
    load_after: float | None
    cores: int

    @property
    def cpu_share(self) -> float:
        """CPU time per wall second per usable thread: about 1 for single-threaded work on a quiet machine,
        lower when the process waited for a core. (Multi-threaded work that cannot use all its threads
        also scores below 1; compare shares of the same case, as the gate does.)"""
        if self.wall_s <= 0:
            return float("nan")
        return self.cpu_s / (self.wall_s * max(1, self.threads))

    def to_dict(self) -> dict:
        return {**asdict(self), "cpu_share": self.cpu_share}


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def cpu_seconds() -> float:
    """This process's CPU time plus that of its finished children (a GeNN case's own process, torchrun and
    its ranks): work done in a child is work this measurement got, not time a co-tenant took."""
    try:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime
    except (ImportError, OSError):
        return time.process_time()


class LoadProbe:
    """``with LoadProbe(threads) as probe: ...``; then ``probe.record``."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self.record: LoadRecord | None = None

    def __enter__(self):
        self._load = loadavg()
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.record = LoadRecord(wall_s=time.perf_counter() - self._wall, cpu_s=cpu_seconds() - self._cpu,
                                 threads=self.threads, load_before=self._load, load_after=loadavg(),
                                 cores=os.cpu_count() or 1)
        return False


# Intra-op threads of every CPU measurement. A step of small ops split over several threads waits for
# the slowest thread at every op, and on a shared runner a thread a co-tenant descheduled stalls them
# all (docs/measurements.md: threads). One
# thread is both steadier and comparable between machines with different core counts.
CPU_THREADS = 1


def cpu_threads(device: str) -> int | None:
    """The intra-op thread count a measurement on ``device`` runs with (None: not a CPU, leave it)."""
    return CPU_THREADS if str(device).split(":")[0] == "cpu" else None


@contextlib.contextmanager
def intra_op_threads(n: int | None):
    """Run torch's CPU ops on ``n`` intra-op threads (None: leave as is), restoring the count after."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- one step's wall, on-CPU and blocked time

SCHEDSTAT = "/proc/thread-self/schedstat"      # Linux: on-CPU ns, run-queue wait ns, timeslices


def run_queue_wait_s() -> float | None:
    """Seconds this thread has waited for a CPU (runnable, not running) since it started: what co-tenants
    cost it. None where the kernel does not say (not Linux, or schedstats off)."""
    try:
        with open(SCHEDSTAT) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def blocked_time_unavailable() -> str | None:
    return None if run_queue_wait_s() is not None else f"{SCHEDSTAT} cannot be read here: blocked time left out"


@dataclass
class StepTimes:
    """Per call of a timed step: wall seconds, on-CPU seconds of the step's thread(s), and blocked seconds
    (wall minus on-CPU minus run-queue wait: sleeps, I/O, locks, synchronisation), or no blocked times
    where the run-queue wait is not reported."""

    wall: list[float]
    on_cpu: list[float]
    blocked: list[float]
    python_lines: tuple | None = None        # one traced call's line events: (total, per function)


def time_calls(fn, more) -> StepTimes:
    """Call ``fn`` while ``more(times)`` (the StepTimes so far) says so, timing each call three ways. On-CPU
    time is the calling thread's (``time.thread_time``: exact to the running slice) when torch runs one
    intra-op thread, else the process's (every thread's work, and any spinning of idle pool threads)."""
    import torch

    on_cpu_clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
    out = StepTimes([], [], [])
    waits = run_queue_wait_s() is not None
    while more(out):
        q0 = run_queue_wait_s() if waits else 0.0
        c0, t0 = on_cpu_clock(), time.perf_counter()
        fn()
        wall, on_cpu = time.perf_counter() - t0, on_cpu_clock() - c0
        out.wall.append(wall)
        out.on_cpu.append(on_cpu)
        if waits:
            waited = run_queue_wait_s() - q0
            out.blocked.append(max(0.0, wall - on_cpu - waited))
    return out
