"""`spikeflops gate`, `calibrate`, `compare` and `bisect`: the commands that judge results files."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.errors import SpikeflopsError
from ..argtypes import output_file, positive_int


def add_parser(subparsers) -> None:
    g = subparsers.add_parser(
        "gate", help="fail (exit 1) when any tracked metric got worse between two results files",
        description="Compare a candidate's asv or pytest-benchmark results with a baseline's, metric by metric. "
                    "Exit 0: nothing regressed; 1: a regression or a failed benchmark; 2: unusable input; 3: no "
                    "regression found, but a metric could not be judged (contended, too noisy, undecided).")
    g.add_argument("baseline", help="results file (asv or pytest-benchmark JSON), or a folder: its newest file")
    g.add_argument("candidate", help="results file or folder, as baseline")
    g.add_argument("--config", default=None, help="thresholds file (default: the gate.toml shipped with spikeflops)")
    g.add_argument("--noise", default=None,
                   help="judge only metrics of these noise models, comma-separated: timing, exact, seeds, median "
                        "(e.g. 'exact,seeds' for the deterministic metrics of a shared CPU runner)")
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
    g.add_argument("--markdown", metavar="FILE", type=output_file, help="write a markdown summary (for a pull-request comment)")
    g.add_argument("--out", metavar="FILE", type=output_file, help="write every verdict as JSON to FILE")
    g.add_argument("--json", action="store_true", help="print every verdict as JSON instead of the table")
    g.add_argument("--all", action="store_true", help="show unchanged and untracked metrics too")
    g.set_defaults(func=cmd_gate)

    c = subparsers.add_parser(
        "calibrate", help="this machine's run-to-run noise per metric, from A/A runs, for the gate",
        description="From two or more results files of the same code on this machine (or --runs N fresh "
                    "`spikeflops run`s), write each metric's detectable change (the largest A/A difference) "
                    "and print the gate's A/A false-alarm rate with and without it.")
    c.add_argument("results", nargs="*", help="results files of A/A runs (asv, pytest-benchmark, spikeflops run)")
    c.add_argument("--runs", type=positive_int, default=None,
                   help="make this many `spikeflops run`s here first (at least 2) and calibrate from them")
    c.add_argument("--families", nargs="+", default=None, metavar="FAMILY", help="with --runs: only these families")
    c.add_argument("--profile", default=None, help="with --runs: the profile (default as `spikeflops run`)")
    c.add_argument("--config", default=None, help="thresholds file (default: the shipped gate.toml)")
    c.add_argument("--out", type=output_file, default=None,
                   help="calibration file (default: results/calibration/<machine>-<harness>.json)")
    c.set_defaults(func=cmd_calibrate)

    from .bisect import cmd_bisect
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

    from .interleave import cmd_compare
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


def load_results(path: str):
    """A results file as given; a folder: its newest results file by the date recorded inside it
    (asv: the commit's date; pytest-benchmark: the run's), never by file time, which a clone resets.
    Each file's header is read, then the newest file in full."""
    from .records import load

    p = Path(path)
    if p.exists() and not p.is_dir():
        return load(p)
    if not p.is_dir():
        raise SpikeflopsError(f"{path}: no such file or folder")
    files = sorted(f for f in p.glob("*.json") if f.name not in ("machine.json", "benchmarks.json"))
    if not files:
        raise SpikeflopsError(f"{path}: no results files in this folder")
    headers = readable_headers(files)
    if not headers:
        raise SpikeflopsError(f"{path}: none of its {len(files)} results files is readable")
    newest = load(max(headers, key=lambda rs: rs.order_key).path)
    print(f"spikeflops gate: {path} -> {newest.path}", file=sys.stderr)
    return newest


def readable_headers(files: list[Path]) -> list:
    """The headers of ``files``; one that cannot be read (permissions, not JSON, not a regular file) is
    named on stderr and left out, as a report does: one bad file must not stop every gate of a folder."""
    from .records import peek

    out = []
    for f in files:
        try:
            out.append(peek(f))
        except SpikeflopsError as exc:
            print(f"spikeflops gate: skipped {exc}", file=sys.stderr)
    return out


def load_history(folder: str, n: int, candidate=None) -> list:
    """The newest ``n`` results files of a folder (oldest first) from the candidate's machine, the candidate's
    own file left out. Runs of other machines are left out and counted: pooled, another CPU's speed reads
    as a regression (an unchanged candidate read as +199 %)."""
    from .judge import hardware_difference
    from .records import load

    p = Path(folder)
    if not p.is_dir():
        raise SpikeflopsError(f"{folder}: --history needs a folder of results files")
    skip = Path(candidate.path).resolve() if candidate is not None else None
    files = [f for f in sorted(p.glob("*.json")) if f.name not in ("machine.json", "benchmarks.json")
             and f.resolve() != skip]
    runs = readable_headers(files)        # headers only: the newest n of this machine are read in full below
    others = []
    if candidate is not None:
        others = [rs for rs in runs if rs.harness != candidate.harness or hardware_difference(rs, candidate)]
        runs = [rs for rs in runs if rs not in others]
    runs = [load(rs.path) for rs in sorted(runs, key=lambda rs: rs.order_key)[-n:]]
    if len(runs) < 2:
        elsewhere = f" ({len(others)} more came from other machines or harnesses, left out)" if others else ""
        raise SpikeflopsError(f"{folder}: --history needs at least 2 earlier results of the candidate's machine, "
                              f"found {len(runs)}{elsewhere}")
    left_out = f"; {len(others)} runs of other machines left out" if others else ""
    print(f"spikeflops gate: history of {len(runs)} runs of this machine in {folder}{left_out}", file=sys.stderr)
    return runs


# the command that makes a candidate of each harness, for a refusal that says what to do instead
HOW_TO_MAKE = {
    "asv": "`asv run --python=same --quick -b \"$(spikeflops info --asv-bench)\" --set-commit-hash "
           "$(git rev-parse HEAD)` (then gate its results folder)",
    "pytest-benchmark": "`python -m pytest benchmarks/test_pytest_benchmark.py --benchmark-only --benchmark-json=FILE`",
    "spikeflops-run": "`spikeflops run --out FILE` (on the baseline's commit too)",
}


def cmd_gate(args) -> int:
    from dataclasses import asdict

    from ..resultsio import write_json, write_text
    from .judge import ALIKE_IN_EVERY_HARNESS, compare, coverage_problem, exit_code, hardware_difference
    from .attribution import attribute
    from .calibration import apply as calibration_apply
    from .render import markdown_report, terminal_report
    from .rules import NOISE_MODELS, load_config

    config = load_config(args.config)
    noise = None
    if args.noise:
        noise = tuple(n.strip() for n in args.noise.split(",") if n.strip())
        bad = [n for n in noise if n not in NOISE_MODELS]
        if bad or not noise:
            raise SpikeflopsError(f"--noise {args.noise!r}: choose from {', '.join(NOISE_MODELS)}")
    if args.history:
        from .judge import pool_history

        candidate = load_results(args.candidate)
        runs = load_history(args.baseline, args.history, candidate)
        baseline, spreads = pool_history(runs)
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
    verdicts = compare(baseline, candidate, config, noise, cross_hardware=bool(difference), spreads=spreads)
    if args.calibration:            # before the coverage check: a calibration that leaves nothing judged fails it
        verdicts = calibration_apply(verdicts, _calibration_for(args.calibration, candidate))
    problem = coverage_problem(baseline, candidate, verdicts)
    if problem:
        raise SpikeflopsError(f"nothing was compared: {problem}")
    header = (f"baseline {_describe(baseline)}\ncandidate {_describe(candidate)}"
              + (f"\nCROSS-HARNESS: {harnesses}; only {' and '.join(noise)} metrics are judged" if harnesses else "")
              + (f"\nCROSS-HARDWARE: {difference}; only portable metrics are judged" if difference else ""))
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


def _describe(rs) -> str:
    commit = (rs.commit or "?")[:8]
    m = rs.machine
    index = f"; names from the {rs.index_source}" if (rs.index_source or "").startswith("case table") else ""
    return (f"{rs.path} ({rs.harness}, commit {commit}, machine {m.get('machine')}, "
            f"{m.get('gpu') or m.get('cpu')}{index})")


def _calibration_for(path: str, candidate) -> dict:
    from ..resultsio import read_json
    from .calibration import check
    from .judge import HARDWARE_KEYS

    calibration = check(read_json(path), path)
    if calibration.get("harness") != candidate.harness:
        raise SpikeflopsError(f"{path} calibrates {calibration.get('harness')} results, the candidate is "
                              f"{candidate.harness} results")
    for key in HARDWARE_KEYS:
        mine, theirs = calibration.get("machine", {}).get(key), candidate.machine.get(key)
        if mine != theirs:
            raise SpikeflopsError(f"{path} was made on another machine ({key}: {mine!r}, candidate {theirs!r}): "
                                  "noise is a property of a machine")
    return calibration


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name)).strip("-.").lower()[:80]


def cmd_calibrate(args) -> int:
    import subprocess
    import tempfile

    from workloads.hardware import machine_name
    from ..resultsio import write_json
    from .calibration import calibrate
    from .records import load
    from .rules import load_config

    config = load_config(args.config)
    files = list(args.results)
    if args.runs is not None:
        if args.runs < 2:
            raise SpikeflopsError("--runs must be at least 2: noise is a difference between runs")
        folder = Path(tempfile.mkdtemp(prefix="spikeflops-calibrate-"))
        for i in range(args.runs):
            out = folder / f"run-{i}.json"
            print(f"spikeflops calibrate: A/A run {i + 1} of {args.runs} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, "-m", "spikeflops.cli", "run", "--out", str(out)]
            cmd += ["--families", *args.families] if args.families else []
            cmd += ["--profile", args.profile] if args.profile else []
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise SpikeflopsError(f"A/A run {i + 1} failed: {last}")
            files.append(str(out))
    if len(files) < 2:
        raise SpikeflopsError("calibrate needs at least 2 results files of A/A runs, or --runs N")
    unique = list(dict.fromkeys(str(Path(f).resolve()) for f in files))
    if len(unique) < len(files):
        raise SpikeflopsError("the same results file was given twice: an A/A pair needs two runs")
    # a shell glob over an asv machine folder brings asv's machine.json and benchmarks.json: not runs
    skipped = [f for f in files if Path(f).name in ("machine.json", "benchmarks.json")]
    files = [f for f in files if f not in skipped]
    if skipped:
        print(f"spikeflops calibrate: left out {len(skipped)} asv file(s) that hold no results "
              f"({', '.join(sorted({Path(f).name for f in skipped}))})", file=sys.stderr)
    if len(files) < 2:
        raise SpikeflopsError("calibrate needs at least 2 results files of A/A runs, or --runs N")
    runs = [load(f) for f in files]
    result = calibrate(runs, config)
    # named after the machine that made the runs, which need not be this one
    made_on = _file_safe(runs[0].machine.get("machine") or "") or machine_name()
    out = Path(args.out) if args.out else Path("results") / "calibration" / f"{made_on}-{result['harness']}.json"
    write_json(out, result)
    noisy = sorted(((e["detectable"], label) for label, e in result["metrics"].items()), reverse=True)
    print(f"calibrated {len(result['metrics'])} metrics from {len(runs)} {result['harness']} runs -> {out}")
    print("noisiest here (detectable change):")
    for detectable, label in noisy[:8]:
        print(f"  {100 * detectable:7.1f}%  {label}")
    a = result["a_a"]
    rate = lambda n, of: f"{n} of {of} judged comparisons ({100 * n / max(of, 1):.1f}%)"  # noqa: E731
    print(f"A/A false alarms over {a['pairs']} pairs, both orders: "
          f"{rate(a['false_alarms_at_thresholds'], a['judged_at_thresholds'])} at the configured thresholds; "
          f"{rate(a['false_alarms_calibrated'], a['judged_calibrated'])} with this calibration (the same runs: "
          "in-sample, a floor, not a promise)")
    return 0
