"""`spikeflops compare BASE CAND`: both commits run alternately on this machine, timings judged on the
paired rounds."""

from __future__ import annotations

import sys
from pathlib import Path

from ..argtypes import output_file, positive_int


def add_parser(subparsers) -> None:
    i = subparsers.add_parser(
        "compare", help="run two commits alternately on this machine and judge timings on the paired rounds",
        description="Each round runs BASE and CAND back to back (ABBA order) from their own git worktrees with "
                    "`spikeflops run`; timings are judged on the rounds' log ratios (a Student-t interval: regressed, "
                    "unchanged, or undecided when the interval still reaches past the threshold), deterministic "
                    "metrics as the gate does. Exit 1 on a regression, 3 when a timing stays undecided or contended "
                    "after every round.")
    i.add_argument("base", help="baseline commit (e.g. origin/main)")
    i.add_argument("cand", help="candidate commit (e.g. HEAD)")
    i.add_argument("--rounds", type=positive_int, default=5,
                   help="rounds of both commits before the first decision (default 5; at least 3 to judge timings)")
    i.add_argument("--max-rounds", type=positive_int, default=None, metavar="N",
                   help="add rounds, up to N, while a timing is undecided (default: --rounds; no more)")
    i.add_argument("--families", nargs="+", default=None, metavar="FAMILY", help="only these metric families")
    i.add_argument("--profile", default=None, help="the profile (default as `spikeflops run`)")
    i.add_argument("--repo", default=".", help="the git checkout (default: here)")
    i.add_argument("--config", default=None, help="thresholds file (default: the shipped gate.toml)")
    i.add_argument("--markdown", metavar="FILE", type=output_file, help="write a markdown summary")
    i.add_argument("--all", action="store_true", help="show unchanged metrics too")
    i.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from ..gitrepo import git, prune_own_worktrees
    from ..regress.attribution import attribute
    from ..regress.interleave import compare_interleaved
    from ..regress.judge import exit_code
    from ..regress.render import markdown_report, terminal_report
    from ..regress.rules import load_config
    from ..results.fileio import scratch_folder, write_text

    config = load_config(args.config)
    repo = Path(git(Path(args.repo), "rev-parse", "--show-toplevel"))
    if git(repo, "status", "--porcelain", "--untracked-files=no").strip():
        print("spikeflops compare: the working tree has uncommitted edits; both sides are measured from their "
              "commits, so the edits are left out (commit them to compare them)", file=sys.stderr)
    with scratch_folder("spikeflops-compare-") as work:     # removed if refused or interrupted
        prune_own_worktrees(repo, "spikeflops-compare-")     # a killed run's, whose scratch folder was pruned: ours only
        last: dict = {}
        verdicts = compare_interleaved(repo, args.base, args.cand, args.rounds, config, work, args.families,
                                       args.profile, say=lambda t: print(t, file=sys.stderr, flush=True),
                                       max_rounds=args.max_rounds, last_runs=last)
    attributions = attribute(verdicts, last[0], last[1]) if 0 in last and 1 in last else []
    header = (f"interleaved: {args.rounds}-{max(args.rounds, args.max_rounds or args.rounds)} rounds of "
              f"{args.base} and {args.cand} on this machine, timings judged on paired rounds' log ratios "
              f"(Student-t interval, alpha {config.alpha} per side, spent over the rounds added)")
    print(terminal_report(verdicts, show_all=args.all, header=header, attributions=attributions))
    if args.markdown:
        write_text(args.markdown, markdown_report(verdicts, header=header, attributions=attributions))
    print(f"(each round's results: {work})", file=sys.stderr)
    return exit_code(verdicts)
