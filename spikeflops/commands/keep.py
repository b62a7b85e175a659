"""`spikeflops keep`: copy local asv and pytest-benchmark runs into results/, the one deliberate step that
adds results to the committed history."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.errors import SpikeflopsError


def add_parser(subparsers) -> None:
    k = subparsers.add_parser(
        "keep", help="copy local asv and pytest-benchmark results into results/, to be committed",
        description="asv and pytest-benchmark save into ignored folders; this copies their saved runs into "
                    "results/asv and results/pytest-benchmark (new files only), then says what to commit. "
                    "Refused: links, files that are not the harness's results, runs of a contended machine "
                    "(unless --allow-contended). The committed machine.json of a machine is never rewritten.")
    k.add_argument("--config", default="asv.conf.json", help="asv configuration (default: asv.conf.json)")
    k.add_argument("--machine", default=None, help="only this machine's results")
    k.add_argument("--dry-run", action="store_true", help="say what would be copied, copy nothing")
    k.add_argument("--allow-contended", action="store_true",
                   help="keep runs whose process got less CPU than the gate's contention floor too (their "
                        "timings are not what the machine does; the gate will say so again)")
    k.set_defaults(func=cmd_keep)


def cmd_keep(args) -> int:
    from ..dashboard.publish import read_config
    from ..results.keep import copy_file, plan_keep
    from ..regress.rules import load_config

    config = Path(args.config)
    root = config.resolve().parent
    local_asv = root / read_config(config).get("results_dir", ".asv/results")
    plan = plan_keep(root, local_asv, args.machine, args.allow_contended, load_config().contended_floor)
    print(f"spikeflops keep: found {plan.found['asv results']} asv result(s) and "
          f"{plan.found['pytest-benchmark runs']} pytest-benchmark run(s)"
          + (f" of machine {args.machine!r}" if args.machine else ""), file=sys.stderr)
    for note in plan.notes:
        print(f"  {note}", file=sys.stderr)
    if not plan.copies:
        raise SpikeflopsError("nothing new to keep" + (f" for machine {args.machine!r}" if args.machine else "")
                              + " (what was found is said above)")
    for copy in plan.copies:
        verb = ("would merge", "merged") if copy.text is not None else ("would copy", "copied")
        print(f"{verb[0] if args.dry_run else verb[1]} {copy.src.relative_to(root)} -> {copy.dst.relative_to(root)}")
        if not args.dry_run:
            try:
                copy.dst.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpikeflopsError(f"{copy.dst.parent}: cannot create ({exc.strerror or exc})") from None
            copy_file(copy.src, copy.dst, copy.text)
    if not args.dry_run:
        print(f"spikeflops keep: {len(plan.copies)} file{'s' if len(plan.copies) != 1 else ''} in results/; commit "
              "them with `git add results && git commit`", file=sys.stderr)
    return 0
