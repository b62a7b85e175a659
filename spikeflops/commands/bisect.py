"""`spikeflops bisect GOOD BAD --metric NAME`: the first commit between GOOD and BAD where a metric regressed."""

from __future__ import annotations

import sys
from pathlib import Path

from ..argtypes import positive_int


def add_parser(subparsers) -> None:
    b = subparsers.add_parser(
        "bisect", help="the first commit between GOOD and BAD where a metric regressed",
        description="Binary search between GOOD and BAD. A deterministic metric: asv measures each probe and the "
                    "gate's rule decides whether it is worse than GOOD. A timing: each probe is a paired comparison "
                    "with GOOD (`compare`'s ABBA rounds and interval), never a single sample.")
    b.add_argument("good", help="a commit where the metric was fine")
    b.add_argument("bad", help="a later commit where it is worse")
    b.add_argument("--metric", required=True, help="<Family>.<metric>, e.g. GPTStep.time_step, GPTOpCount.operators")
    b.add_argument("--match", default=None, help="only the cases whose label contains this (e.g. 'fast, train')")
    b.add_argument("--quick", action="store_true", help="asv --quick: one sample per benchmark (deterministic metrics)")
    b.add_argument("--rounds", type=positive_int, default=5,
                   help="a timing: paired ABBA rounds of each probe against GOOD (default 5)")
    b.add_argument("--max-rounds", type=positive_int, default=10, metavar="N",
                   help="a timing: rounds added while a probe is undecided, up to N (default 10)")
    b.add_argument("--repo", default=".", help="the git checkout to bisect (default: here)")
    b.add_argument("--machine", default=None, help="asv machine name (default: this machine's, registered)")
    b.add_argument("--work", default=None, help="folder for asv's environment and results (default: a temp folder)")
    b.add_argument("--config", default=None, help="thresholds file (default: the shipped gate.toml)")
    b.set_defaults(func=cmd_bisect)


def cmd_bisect(args) -> int:
    import contextlib

    from ..asvmachine import register
    from ..regress.bisect import Bisector, plan_bisect
    from ..gitrepo import git, prune_own_worktrees
    from ..regress.rules import load_config
    from ..results.fileio import scratch_folder

    config = load_config(args.config)
    repo = Path(git(Path(args.repo), "rev-parse", "--show-toplevel"))
    # every check in one place, before asv's machine file is touched; the plan is handed on, never re-checked
    plan = plan_bisect(repo, args.metric, args.good, args.bad, config, match=args.match, rounds=args.rounds,
                       max_rounds=args.max_rounds, quick=args.quick)
    machine, _ = register(args.machine)

    def say(text):
        print(text, flush=True)

    with contextlib.ExitStack() as stack:
        # a folder of our own is removed if the search is refused or interrupted; one the user named stays
        work = Path(args.work) if args.work else stack.enter_context(scratch_folder("spikeflops-bisect-"))
        prune_own_worktrees(repo, "spikeflops-bisect-")     # a killed run's, whose scratch folder was pruned: ours only
        found = Bisector(plan, config, work, machine, say=say).run()
    print(f"first bad commit: {found.commit} {found.subject}")
    print(f"(asv results of every probe: {work / 'results'})", file=sys.stderr)
    return 0
