"""Child process of the CPU max-batch search: one probe under an address-space cap.

argv: ProbeSpec as JSON, batch, memory budget in bytes. Exit 0: it ran;
exit 3: out of memory; anything else: a real failure (message on stderr).
"""

from __future__ import annotations

import json
import resource
import sys

import torch

from ..memory import is_oom_error
from .maxbatch import OOM_EXIT_CODE, ProbeSpec, run_probe


def _address_space_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmSize not found in /proc/self/status")


def main(argv: list[str]) -> int:
    spec = ProbeSpec(**json.loads(argv[0]))
    batch, budget = int(argv[1]), int(argv[2])
    # Start the thread pool and allocator arenas first so they are part of the baseline.
    (torch.randn(64, 64) @ torch.randn(64, 64)).sum().item()
    limit = _address_space_bytes() + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        run_probe(spec, batch, torch.device("cpu"))
    except Exception as exc:  # noqa: BLE001 - classified, not swallowed
        if is_oom_error(exc):
            return OOM_EXIT_CODE
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
