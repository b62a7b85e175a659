"""Largest GPT batch that runs a no-grad forward pass, or a full training step.

On a GPU each probe runs in this process and everything it allocated is freed
before the next. On a CPU there is no allocator limit to hit, so each probe runs
in a child process whose address space is capped at its baseline plus the
memory budget (``--memory-limit``): the CPU allocator then fails the way a GPU
runs out, and a child's leftovers can't shrink the next probe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from ..errors import SpikeflopsError
from ..memory import SearchResult, find_max_batch, is_oom_error, release_memory
from .config import get_config
from .fast import build_model
from .steps import make_forward, make_optimizer, make_train_step, parse_dtype, random_tokens

MODES = ("forward", "train")
OOM_EXIT_CODE = 3


@dataclass(frozen=True)
class ProbeSpec:
    size: str
    variant: str = "book"
    dtype: str = "bfloat16"
    mode: str = "train"
    context_length: int | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise SpikeflopsError(f"unknown mode {self.mode!r}; choose forward or train")
        get_config(self.size, self.context_length)   # validates size and context early
        parse_dtype(self.dtype)


def run_probe(spec: ProbeSpec, batch: int, device: torch.device) -> None:
    """Build a fresh model and run one step of ``spec.mode`` at ``batch``; raises on OOM."""
    cfg = get_config(spec.size, spec.context_length)
    model = build_model(cfg, spec.variant, device=device, dtype=parse_dtype(spec.dtype))
    inputs, targets = random_tokens(cfg.vocab_size, batch, cfg.context_length, device)
    if spec.mode == "forward":
        make_forward(model, inputs)()
    else:
        make_train_step(model, make_optimizer(model), inputs, targets)()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _in_process_fits(spec: ProbeSpec, device: torch.device):
    def fits(batch: int) -> bool:
        try:
            run_probe(spec, batch, device)
            return True
        except Exception as exc:  # noqa: BLE001 - only OOM is swallowed, everything else re-raised
            if not is_oom_error(exc):
                raise
            return False
        finally:
            release_memory(device)
    return fits


# One malloc arena and a fixed mmap threshold: glibc's per-thread arenas and its adaptive
# threshold otherwise move a probe's address-space use by tens of MB from run to run.
_DETERMINISTIC_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONHASHSEED": "0"}


def _subprocess_fits(spec: ProbeSpec, memory_limit_bytes: int):
    def fits(batch: int) -> bool:
        cmd = [sys.executable, "-m", "workloads.gpt.probe", json.dumps(asdict(spec)), str(batch),
               str(memory_limit_bytes)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **_DETERMINISTIC_MALLOC})
        if proc.returncode == 0:
            return True
        if proc.returncode == OOM_EXIT_CODE:
            return False
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SpikeflopsError(f"probe at batch {batch} crashed (exit {proc.returncode}): {last}")
    return fits


def search_max_batch(spec: ProbeSpec, device: torch.device, memory_limit_bytes: int | None = None,
                     cap: int = 4096, progress=None) -> SearchResult:
    """Grow-then-bisect search; on a CPU ``memory_limit_bytes`` is required."""
    if device.type == "cuda":
        if memory_limit_bytes is not None:
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, memory_limit_bytes / total), device)
        fits = _in_process_fits(spec, device)
    else:
        if memory_limit_bytes is None:
            raise SpikeflopsError("on a CPU the max-batch search needs a memory budget (--memory-limit, e.g. 4GiB)")
        if not sys.platform.startswith("linux"):
            raise SpikeflopsError("the CPU max-batch search needs Linux (it caps a child's address space)")
        fits = _subprocess_fits(spec, memory_limit_bytes)
    return find_max_batch(fits, cap=cap, progress=progress)


def parse_bytes(text: str) -> int:
    """'4GiB', '512MiB', '2G', '1000000' -> bytes."""
    units = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
             "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}
    s = text.strip().lower()
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num):].strip()
    try:
        value = float(num)
    except ValueError:
        raise SpikeflopsError(f"cannot read memory size {text!r} (try 4GiB or 512MiB)") from None
    if unit not in units or value <= 0:
        raise SpikeflopsError(f"cannot read memory size {text!r} (try 4GiB or 512MiB)")
    return int(value * units[unit])
