"""Launch the distributed GPT step with torchrun on this host, and read back its record.

``torchrun --standalone`` (PyTorch's own launcher and rendezvous) starts one process per
rank; this module only builds its command line, waits, and turns what went wrong into one
line: a failing rank's own message, an out-of-memory rank (the max-batch search's "no"), a
port already in use. Whatever happens, no rank outlives the launch: each launch tags its
processes and any survivor is killed.

Multi-node runs are launched by hand (see docs/scaling.md): ``torchrun --nnodes=2 --node-rank=R
--rdzv-backend=c10d --rdzv-endpoint=HOST:PORT -m workloads.gpt.scale_rank --case ...``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

from ..errors import SpikeflopsError
from ..isolate import GroupProcess, private_temp_env
from ..memory import SearchResult, find_max_batch
from .scale import ScaleCase, ScaleRecord, world_sizes
from .scale_rank import ERROR_MARK, OOM_MARK

LAUNCH_TAG = "SPIKEFLOPS_LAUNCH_ID"


class RankOutOfMemory(SpikeflopsError):
    """A rank ran out of memory (a max-batch probe's "does not fit")."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def threads_per_rank(device: str, largest_world: int) -> int:
    """CPU ranks split the cores between them (oversubscribed ranks would time each other's waits).

    Every world of one scaling table gets the share of its largest world, the one-rank baseline
    included: a rank is then the same "device" at every size, and weak scaling compares like with like.
    """
    if device == "cuda":
        return 1
    return max(1, (os.cpu_count() or 1) // largest_world)


def _command(case: ScaleCase, out: str | None, port: int | None, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={case.world_size}",
           "--max-restarts=0"]
    if port is None:
        cmd.append("--standalone")             # c10d rendezvous on a free localhost port
    else:
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}"]
    cmd += ["-m", "workloads.gpt.scale_rank", "--case", json.dumps(case.to_dict())]
    if out:
        cmd += ["--out", out]
    return cmd + extra


def tagged_processes(tag: str | None = None) -> list[int]:
    """Pids of live processes whose environment carries this launch's tag, or any launch's (Linux)."""
    pids, needle = [], f"{LAUNCH_TAG}={tag or ''}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if any(v.startswith(needle) if tag is None else v == needle for v in f.read().split(b"\0")):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _kill_tagged(tag: str) -> None:
    if not os.path.isdir("/proc"):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = tagged_processes(tag)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        time.sleep(1.0)


def _rank_failure(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if ERROR_MARK in line or OOM_MARK in line:
            return line.split(ERROR_MARK if ERROR_MARK in line else OOM_MARK, 1)[1].strip()
    return None


@dataclass
class Launch:
    """What one torchrun launch did."""

    case: ScaleCase
    seconds: float
    record: ScaleRecord | None = None


def launch(case: ScaleCase, port: int | None = None, warmup: int = 2, repeats: int = 5,
           timeout: float = 1800.0, probe: bool = False, cpu_memory_budget: int | None = None,
           fail_on_rank: int | None = None, threads: int | None = None, baseline: bool = True) -> Launch:
    """Run ``case`` on ``case.world_size`` local ranks; return rank 0's record (None for a probe). ``baseline``:
    the record's scaling efficiency is against rank 0 alone, timed first in this launch."""
    if port is not None and port_in_use(port):
        raise SpikeflopsError(f"port {port} is already in use on this host: pick another --port, or leave it "
                              "out to let torchrun find a free one")
    if case.device == "cuda":
        import torch

        have = torch.cuda.device_count()
        if have < case.world_size:
            raise SpikeflopsError(f"{case.world_size} ranks need {case.world_size} GPUs; this machine has {have}")
    extra = ["--warmup", str(warmup), "--repeats", str(repeats)]
    if probe:
        extra.append("--probe")
    elif baseline:
        extra.append("--baseline")
    if cpu_memory_budget:
        extra += ["--cpu-memory-budget", str(int(cpu_memory_budget))]
    if fail_on_rank is not None:
        extra += ["--fail-on-rank", str(fail_on_rank)]
    tag = uuid.uuid4().hex
    threads = threads or threads_per_rank(case.device, case.world_size)
    env = {**os.environ, LAUNCH_TAG: tag, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="spikeflops-scale-") as tmp:
        out = None if probe else os.path.join(tmp, "record.json")
        env = private_temp_env(tmp, env)       # torchrun's log folders go with this one, even when stopped
        cmd = _command(case, out, port, extra)
        start = time.perf_counter()
        # its own group, guarded: torchrun and its ranks end with this process, even one killed by SIGKILL
        proc = GroupProcess(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SpikeflopsError(f"{case.label()}: no result after {timeout:.0f} s; every rank was stopped") \
                from None
        except BaseException:
            proc.send_signal(signal.SIGTERM)       # torchrun stops its ranks on SIGTERM
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            _kill_tagged(tag)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            why = _rank_failure(stderr)
            if OOM_MARK in stderr:
                raise RankOutOfMemory(f"{case.label()} does not fit: {why}")
            if why is None:
                tail = [ln for ln in stderr.splitlines() if ln.strip() and "USDT:" not in ln]
                why = tail[-1].strip() if tail else f"torchrun exited with {proc.returncode}"
                if "EADDRINUSE" in stderr or "address already in use" in stderr.lower():
                    why = f"the rendezvous port is in use ({why})"
            raise SpikeflopsError(f"{case.label()} failed: {why}")
        record = None
        if out:
            with open(out) as f:
                record = ScaleRecord.from_dict(json.load(f))
    return Launch(case=case, seconds=seconds, record=record)


def measure_scaling(case: ScaleCase, nproc: int | None = None, port: int | None = None, warmup: int = 2,
                    repeats: int = 5, progress=None, worlds: list[int] | None = None) -> list[ScaleRecord]:
    """``case`` on each world size of a scaling table up to ``nproc`` (default: its world size; ``worlds``:
    only these), one launch each, every rank on the threads of the largest world.

    Each record's efficiency is against rank 0 alone, timed in the same launch (never a remembered number).
    """
    records, sizes = [], world_sizes(nproc or case.world_size)
    threads = threads_per_rank(case.device, sizes[-1])
    for n in worlds or sizes:
        one = launch(case.with_(world_size=n), port=port, warmup=warmup, repeats=repeats, threads=threads)
        records.append(one.record)
        if progress:
            progress(one)
    return records


def max_local_batch(case: ScaleCase, cpu_memory_budget: int | None = None, cap: int = 4096,
                    progress=None) -> SearchResult:
    """Largest local batch of ``case`` whose training step runs on every rank (one launch per probe).

    On a CPU each rank's address space is capped at its baseline plus ``cpu_memory_budget``;
    on GPUs each rank has its whole device.
    """
    if case.device == "cpu" and not cpu_memory_budget:
        raise SpikeflopsError("on a CPU the max-batch search needs a memory budget per rank (e.g. 1GiB)")

    def fits(batch: int) -> bool:
        try:
            launch(case.with_(local_batch=batch), probe=True, cpu_memory_budget=cpu_memory_budget)
            return True
        except RankOutOfMemory:
            return False

    return find_max_batch(fits, cap=cap, progress=progress)
