"""Largest GPT batch that runs one step of a case's mode (a no-grad forward, or a full training step).

On a GPU each probe runs in this process and everything it allocated is freed
before the next; a memory cap (``memory_limit_bytes``) is a per-process memory
fraction, restored when the search ends. On a CPU there is no allocator limit to
hit, so each probe runs in a child whose address space is capped at its baseline
plus the budget: the CPU allocator then fails the way a GPU runs out, and a
child's leftovers can't shrink the next probe. The children are forked from one
helper process that has imported torch but run nothing (so forking is safe), which
saves a torch import per probe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, replace

import torch

from ..errors import SpikeflopsError
from ..memory import ProbeAnswer, SearchResult, find_max_batch, release_memory
from .case import GPTCase

OOM_EXIT_CODE = 3

# One malloc arena and a fixed mmap threshold: glibc's per-thread arenas and its adaptive
# threshold otherwise move a probe's address-space use by tens of MB from run to run.
DETERMINISTIC_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONHASHSEED": "0"}


def _in_process_fits(case):
    """A probe in this process (a GPU's); a fitting one says the most the caching allocator held (the
    quantity a memory fraction caps), each probe starting from freed memory and fresh peak statistics."""
    from .workload import DoesNotFit, prepare

    device = case.torch_device
    on_gpu = device.type == "cuda"

    def fits(batch: int) -> ProbeAnswer:
        release_memory(device)
        try:
            with prepare(replace(case, batch=batch), warmup=0):
                return ProbeAnswer(True, torch.cuda.max_memory_reserved(device) if on_gpu else None)
        except DoesNotFit:
            return ProbeAnswer(False)
        finally:
            release_memory(device)
    return fits


def _device_budget(device, memory_limit_bytes: int | None) -> int:
    """What a GPU probe may take: the cap, else what is free on the device plus what this process holds."""
    if memory_limit_bytes is not None:
        return memory_limit_bytes
    release_memory(device)
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device)


class ProbeServer:
    """A helper process that forks one child per CPU probe (see workloads.gpt.probe)."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "workloads.gpt.probe"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **DETERMINISTIC_MALLOC})

    def probe(self, case, batch: int, budget: int) -> ProbeAnswer:
        self.proc.stdin.write(json.dumps({"case": asdict(case), "batch": batch, "budget": budget}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = (self.proc.stderr.read().strip().splitlines() or ["(no output)"])[-1]
            raise SpikeflopsError(f"the max-batch probe helper died: {err}")
        reply = json.loads(line)
        if reply["code"] == 0:
            return ProbeAnswer(True, reply.get("used"))
        if reply["code"] == OOM_EXIT_CODE:
            return ProbeAnswer(False)
        raise SpikeflopsError(f"probe at batch {batch} crashed (exit {reply['code']}): {reply['error']}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def search_max_batch(case, memory_limit_bytes: int | None = None, cap: int = 4096,
                     progress=None) -> SearchResult:
    """Grow-then-bisect search over ``case``'s batch; on a CPU ``memory_limit_bytes`` is required."""
    device = case.torch_device
    if device.type == "cuda":
        budget = _device_budget(device, memory_limit_bytes)
        if memory_limit_bytes is None:
            return find_max_batch(_in_process_fits(case), cap=cap, progress=progress, budget_bytes=budget)
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory_limit_bytes / total), device)
        try:
            return find_max_batch(_in_process_fits(case), cap=cap, progress=progress, budget_bytes=budget)
        finally:                                 # the rest of the process must not keep the cap
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    if memory_limit_bytes is None:
        raise SpikeflopsError("on a CPU the max-batch search needs a memory budget (--memory-limit, e.g. 4GiB)")
    if memory_limit_bytes <= 0:
        raise SpikeflopsError(f"memory budget must be > 0 bytes, got {memory_limit_bytes}")
    if not sys.platform.startswith("linux"):
        raise SpikeflopsError("the CPU max-batch search needs Linux (it caps a child's address space)")
    server = ProbeServer()
    try:
        return find_max_batch(lambda b: server.probe(case, b, memory_limit_bytes), cap=cap, progress=progress,
                              budget_bytes=memory_limit_bytes)
    finally:
        server.close()


@dataclass(frozen=True)
class MaxBatchRecord:
    case: GPTCase
    max_batch: int
    hit_cap: bool                            # the cap fitted: the true maximum may be larger
    memory_limit_bytes: int | None           # the budget (CPU) or cap (GPU); None: the whole device
    probes: tuple[tuple[int, bool], ...]

    def to_dict(self) -> dict:
        return {"case": self.case.to_dict(), "max_batch": self.max_batch, "hit_cap": self.hit_cap,
                "memory_limit_bytes": self.memory_limit_bytes,
                "probes": [{"batch": b, "fits": f} for b, f in self.probes]}


def measure_max_batch(case: GPTCase, memory_limit_bytes: int | None = None, cap: int = 4096,
                      progress=None) -> MaxBatchRecord:
    """Largest batch of ``case`` (its batch field is ignored) that runs one step of its mode."""
    result = search_max_batch(case, memory_limit_bytes, cap=cap, progress=progress)
    return MaxBatchRecord(case=case, max_batch=result.max_batch, hit_cap=result.hit_cap,
                          memory_limit_bytes=memory_limit_bytes,
                          probes=tuple((p.batch, p.fits) for p in result.probes))
