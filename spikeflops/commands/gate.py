"""`spikeflops gate`: judge a candidate's results against a baseline's, metric by metric."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.metrics import NOISE_MODELS
from ..argtypes import noise_models, output_file, positive_int


def add_parser(subparsers) -> None:
    g = subparsers.add_parser(
        "gate", help="fail (exit 1) when any tracked metric got worse between two results files",
        description="Compare a candidate's asv or pytest-benchmark results with a baseline's, metric by metric. "
                    "Exit 0: nothing regressed; 1: a regression or a failed benchmark; 2: unusable input; 3: no "
                    "regression found, but a metric could not be judged (contended, too noisy, undecided).")
    g.add_argument("baseline", help="results file (asv or pytest-benchmark JSON), or a folder: its newest file")
    g.add_argument("candidate", help="results file or folder, as baseline")
    g.add_argument("--config", default=None, help="thresholds file (default: the gate.toml shipped with spikeflops)")
    g.add_argument("--noise", type=noise_models, default=None,
                   help=f"judge only metrics of these noise models, comma-separated: {', '.join(NOISE_MODELS)} "
                        "(e.g. 'exact,seeds' for the deterministic metrics of a shared CPU runner; 'counted' for "
                        "instructions; 'oncpu,blocked' for a busy runner's timings)")
    g.add_argument("--cross-hardware", action="store_true",
                   help="compare results from different machines (refused otherwise)")
    g.add_argument("--fail-on-missing", action="store_true", help="a metric the candidate lacks is a failure too")
    g.add_argument("--history", type=positive_int, default=None, metavar="N",
                   help="BASELINE is a folder: judge the candidate against its newest N results of the candidate's "
                        "machine (others are left out): per metric, the median of the runs since the last change "
                        "point asv's step detection finds in them, with the threshold widened to their spread")
    g.add_argument("--calibration", metavar="FILE", default=None,
                   help="this machine's noise (from `spikeflops calibrate`): each metric is judged at the larger "
                        "of its threshold and the change A/A runs here already showed; within that: too noisy")
    g.add_argument("--markdown", metavar="FILE", type=output_file,
                   help="write a markdown summary (for a pull-request comment)")
    g.add_argument("--out", metavar="FILE", type=output_file, help="write every verdict as JSON to FILE")
    g.add_argument("--json", action="store_true", help="print every verdict as JSON instead of the table")
    g.add_argument("--all", action="store_true", help="show unchanged and untracked metrics too")
    g.set_defaults(func=cmd_gate)


def cmd_gate(args) -> int:
    from dataclasses import asdict

    from ..regress.inputs import HOW_TO_MAKE, calibration_for, describe, load_history, load_results
    from ..results.fileio import write_json, write_text
    from ..regress.judge import (ALIKE_IN_EVERY_HARNESS, judge_pair, coverage_problem, exit_code,
                                 hardware_difference, staleness)
    from ..regress.attribution import attribute
    from ..regress.calibration import apply as calibration_apply
    from ..regress.render import markdown_report, terminal_report
    from ..regress.rules import load_config

    config = load_config(args.config)
    noise = args.noise                          # checked by its argument type (argtypes.noise_models)
    if args.history:
        from ..regress.judge import pool_history

        candidate = load_results(args.candidate)
        runs = load_history(args.baseline, args.history, candidate)
        def threshold_of(metric: str) -> float:          # the change that counts as a new level
            rule = config.rule_for(metric)
            return rule.threshold if rule is not None else 0.0

        baseline, spreads = pool_history(runs, threshold_of)
    else:                                        # the baseline first: its errors are reported first
        baseline, spreads = load_results(args.baseline), None
        candidate = load_results(args.candidate)
    judged_files = {Path(r.path).resolve() for r in (runs if args.history else [baseline]) + [candidate]}
    for option, target in (("--out", args.out), ("--markdown", args.markdown)):
        if target and Path(target).resolve() in judged_files:
            raise SpikeflopsError(f"{option} {target}: is a results file this gate reads; give another file")
    harnesses = None
    if baseline.harness != candidate.harness:
        if noise is None or not set(noise) <= set(ALIKE_IN_EVERY_HARNESS):
            raise SpikeflopsError(
                f"baseline is {baseline.harness} results, candidate is {candidate.harness} results: each harness "
                f"times differently; {HOW_TO_MAKE[baseline.harness]} makes a file comparable with this baseline, "
                f"or --noise {','.join(ALIKE_IN_EVERY_HARNESS)} judges only what every harness measures alike")
        harnesses = f"{baseline.harness} baseline, {candidate.harness} candidate"
    difference = hardware_difference(baseline, candidate)
    if difference and not args.cross_hardware:
        raise SpikeflopsError(f"different hardware ({difference}); pass --cross-hardware to compare anyway")
    verdicts = judge_pair(baseline, candidate, config, noise, cross_hardware=bool(difference), spreads=spreads)
    if args.calibration:            # before the coverage check: a calibration that leaves nothing judged fails it
        verdicts = calibration_apply(verdicts, calibration_for(args.calibration, candidate))
    problem = coverage_problem(baseline, candidate, verdicts)
    if problem:
        raise SpikeflopsError(f"nothing was compared: {problem}")
    stale = staleness(baseline, candidate, verdicts)
    header = (f"baseline {describe(baseline)}\ncandidate {describe(candidate)}"
              + (f"\n{stale}" if stale else "")
              + (f"\nCROSS-HARNESS: {harnesses}; only {' and '.join(noise)} metrics are judged" if harnesses else "")
              + (f"\nCROSS-HARDWARE: {difference}; only portable metrics are judged, and instruction counts "
                 f"where valgrind showed both the same machine" if difference else ""))
    attributions = attribute(verdicts, baseline, candidate)
    if args.markdown:
        write_text(args.markdown, markdown_report(verdicts, header=header,
                                                  attributions=attributions))
    record = {"baseline": baseline.path, "candidate": candidate.path,
              "cross_hardware": difference, "config": config.source,
              "exit_code": exit_code(verdicts, args.fail_on_missing),
              "verdicts": [_plain_json(asdict(v)) for v in verdicts],
              "attributions": [{"metric": a.verdict.label, "family": a.family,
                                "parts": [{"name": p.name, "baseline": p.baseline, "candidate": p.candidate}
                                          for p in a.parts]} for a in attributions]}
    if args.out:
        write_json(args.out, record)
    if args.json:
        import json

        json.dump(record, sys.stdout, indent=2)
        print()
    else:
        print(terminal_report(verdicts, show_all=args.all, header=header, attributions=attributions))
    return exit_code(verdicts, args.fail_on_missing)


def _plain_json(record: dict) -> dict:
    """NaN and infinities are not JSON: "never reached" and "from zero" become null."""
    import math

    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}

