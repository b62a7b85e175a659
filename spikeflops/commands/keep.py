"""`spikeflops keep`: copy local asv and pytest-benchmark runs into results/, the one deliberate step that
adds results to the committed history."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from workloads.errors import SpikeflopsError


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
    from ..dashboard.publish import read_config
    from ..keep import COMMITTED, LOCAL_PYTEST_BENCHMARK, asv_plan, pytest_benchmark_plan

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
