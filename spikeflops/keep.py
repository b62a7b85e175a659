"""Which local harness results are new to the committed history, and where each goes.

asv (`asv run`) and pytest-benchmark (`--benchmark-save`) write into ignored folders (asv.conf.json's
``results_dir``, ``spikeflops-out/pytest-benchmark``), so a run never dirties the checkout; `spikeflops
keep` copies what these plans name into ``results/asv`` and ``results/pytest-benchmark``, to be committed.
"""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

COMMITTED = Path("results")
LOCAL_PYTEST_BENCHMARK = Path("spikeflops-out") / "pytest-benchmark"
_NUMBERED = re.compile(r"^(\d{4})_(.+\.json)$")


def asv_plan(local: Path, committed: Path, machine: str | None) -> list[tuple[Path, Path]]:
    """(source, destination) of every asv file to copy: each machine's machine.json and result files that
    are not in the history yet, and the benchmark index when it changed."""
    plan = []
    if not local.is_dir():
        return plan
    for folder in sorted(p for p in local.iterdir() if p.is_dir()):
        if machine and folder.name != machine:
            continue
        for src in sorted(folder.glob("*.json")):
            dst = committed / folder.name / src.name
            if not dst.exists() or (src.name == "machine.json" and not filecmp.cmp(src, dst, shallow=False)):
                plan.append((src, dst))
    index = local / "benchmarks.json"
    if plan and index.is_file() and not _same_json(index, committed / "benchmarks.json"):
        plan.append((index, committed / "benchmarks.json"))
    return plan


def pytest_benchmark_plan(local: Path, committed: Path, machine: str | None) -> list[tuple[Path, Path]]:
    """Saved pytest-benchmark runs (``NNNN_<name>.json`` under <machine>/<platform>/) not in the history
    yet, numbered on after the committed runs of their folder (pytest-benchmark reads them in that order)."""
    plan = []
    if not local.is_dir():
        return plan
    for src in sorted(local.glob("*/*/*.json")):
        rel = src.relative_to(local)
        if machine and rel.parts[0] != machine:
            continue
        match = _NUMBERED.match(src.name)
        if not match:
            continue
        folder = committed / rel.parent
        taken = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if any(_NUMBERED.match(t.name) and _NUMBERED.match(t.name).group(2) == match.group(2)
               and filecmp.cmp(src, t, shallow=False) for t in taken):
            continue
        numbers = [int(_NUMBERED.match(t.name).group(1)) for t in taken if _NUMBERED.match(t.name)]
        numbers += [int(_NUMBERED.match(d.name).group(1)) for _, d in plan if d.parent == folder]
        plan.append((src, folder / f"{max(numbers, default=0) + 1:04d}_{match.group(2)}"))
    return plan


def _same_json(a: Path, b: Path) -> bool:
    try:
        return json.loads(a.read_text()) == json.loads(b.read_text())
    except (OSError, ValueError):
        return False
