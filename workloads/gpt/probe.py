"""Helper process of the CPU max-batch search: forks one child per probe, each under an address-space cap.

Reads one JSON request per line on stdin ({"case": GPTCase fields, "batch", "budget"})
and answers one JSON line: {"code": 0 (it ran) | 3 (out of memory) | 1 (a real failure),
"error": message, "used": the most address space the probe took above its baseline (bytes,
when it ran)}. This process imports torch but runs no torch op, so it holds no
thread pool and forking it is safe; each child is a fresh copy of the same state,
so every probe starts from the same address-space baseline.
"""

from __future__ import annotations

import json
import os
import resource
import sys

import torch

from ..load import CPU_THREADS
from ..memory import is_oom_error
from .maxbatch import OOM_EXIT_CODE
from .workload import DoesNotFit, GPTCase, prepare


def _address_space_bytes(field: str = "VmSize") -> int:
    """This process's address space now (VmSize) or at its largest so far (VmPeak), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def cap_address_space(budget: int) -> int:
    """Let this process grow by ``budget`` bytes from here: the CPU allocator then fails as a GPU runs out.
    Returns the baseline the budget is counted from."""
    # Start the thread pool and allocator arenas first so they are part of the baseline.
    (torch.randn(64, 64) @ torch.randn(64, 64)).sum().item()
    baseline = _address_space_bytes()
    limit = baseline + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return baseline


def _child(case: GPTCase, budget: int, report_fd: int) -> int:
    # on the CPU measurements' thread count: a probe's answer then does not depend on the core count (each
    # intra-op thread brings its own stack and scratch), and a busy co-tenant cannot stall it at every op
    torch.set_num_threads(CPU_THREADS)
    try:
        baseline = cap_address_space(budget)
    except (ValueError, OSError, OverflowError) as exc:      # above the hard limit, or past what the OS takes
        os.write(report_fd, f"cannot cap this process's address space {budget} bytes above its size: {exc} "
                            "(a smaller --memory-limit, or raise `ulimit -v`)".encode()[:2000])
        return 1
    try:
        prepare(case, warmup=0)        # not closed: the process ends next, and freeing would only cost time
    except DoesNotFit:
        return OOM_EXIT_CODE
    except BaseException as exc:  # noqa: BLE001 - classified and reported to the parent, never swallowed
        if is_oom_error(exc):
            return OOM_EXIT_CODE
        os.write(report_fd, f"{type(exc).__name__}: {exc}".splitlines()[0].encode()[:2000])
        return 1
    # what the probe took against its budget: VmPeak is the largest the capped quantity has been
    os.write(report_fd, str(_address_space_bytes("VmPeak") - baseline).encode())
    return 0


def serve(stdin=sys.stdin, stdout=sys.stdout) -> int:
    for line in stdin:
        request = json.loads(line)
        case = GPTCase(**{**request["case"], "batch": int(request["batch"])})
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the child: one probe, then exit without cleanup
            os.close(read_fd)
            code = 1
            try:
                code = _child(case, int(request["budget"]), write_fd)
            finally:
                os._exit(code)
        os.close(write_fd)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as f:
            error = f.read().decode(errors="replace")
        code = os.waitstatus_to_exitcode(status)
        used = int(error) if code == 0 and error.isdigit() else None
        if code == 0:
            error = ""
        elif code < 0:
            error = error or f"killed by signal {-code}"
        stdout.write(json.dumps({"code": code, "error": error, "used": used}) + "\n")
        stdout.flush()
    return 0


def preload() -> None:
    """Import, once and before any fork, what a probe's first training step imports (the optimizer pulls in
    torch._dynamo, and with it sympy: about a second). Imports only: no op runs, no thread pool starts, so
    forking stays safe and every child still starts from the same address-space baseline."""
    import gc

    import torch._dynamo  # noqa: F401

    # what is imported now is every child's too: a child's gc.collect (an OOM path frees memory) need not
    # walk it, nor touch its pages and copy them
    gc.freeze()


if __name__ == "__main__":
    preload()
    sys.exit(serve())
