"""`spikeflops keep`: the deliberate step that puts local results into the committed history.

asv (`asv run`) and pytest-benchmark (`--benchmark-save`) write into ignored folders (asv.conf.json's
``results_dir``, ``spikeflops-out/pytest-benchmark``), so a run never dirties the checkout. This command
copies what they saved into ``results/asv`` and ``results/pytest-benchmark``, to be committed.
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import sys
from pathlib import Path

from workloads.errors import SpikeflopsError

COMMITTED = Path("results")
LOCAL_PYTEST_BENCHMARK = Path("spikeflops-out") / "pytest-benchmark"
_NUMBERED = re.compile(r"^(\d{4})_(.+\.json)$")


def add_parser(subparsers) -> None:
    k = subparsers.add_parser(
        "keep", help="copy local asv and pytest-benchmark results into results/, to be committed",
        description="asv and pytest-benchmark save into ignored folders; this copies their saved runs into "
                    "results/asv and results/pytest-benchmark (new files only; a run already there is left as "
                    "it is), then says what to commit.")
    k.add_argument("--config", default="asv.conf.json", help="asv configuration (default: asv.conf.json)")
    k.add_argument("--machine", default=None, help="only this machine's results")
    k.add_argument("--dry-run", action="store_true", help="say what would be copied, copy nothing")
    k.set_defaults(func=cmd_keep)


def cmd_keep(args) -> int:
    from .dashboard.publish import read_config

    config = Path(args.config)
    root = config.resolve().parent
    local_asv = root / read_config(config).get("results_dir", ".asv/results")
    plan = asv_plan(local_asv, root / COMMITTED / "asv", args.machine)
    plan += pytest_benchmark_plan(root / LOCAL_PYTEST_BENCHMARK, root / COMMITTED / "pytest-benchmark", args.machine)
    if not plan:
        raise SpikeflopsError(f"nothing new to keep in {local_asv} or {root / LOCAL_PYTEST_BENCHMARK}"
                              + (f" for machine {args.machine!r}" if args.machine else ""))
    for src, dst in plan:
        print(f"{'would copy' if args.dry_run else 'copied'} {src.relative_to(root)} -> {dst.relative_to(root)}")
        if not args.dry_run:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    if not args.dry_run:
        print(f"spikeflops keep: {len(plan)} file{'s' if len(plan) != 1 else ''} in results/; commit them with "
              "`git add results && git commit`", file=sys.stderr)
    return 0


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
