"""`spikeflops calibrate`: this machine's run-to-run noise per metric, from A/A runs, for the gate."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.errors import SpikeflopsError
from ..argtypes import output_file, positive_int


def add_parser(subparsers) -> None:
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
                   help="calibration file (default: spikeflops-out/calibration/<machine>-<harness>.json, an ignored "
                        "folder; results/calibration/ holds the committed ones, written only when named here)")
    c.add_argument("--allow-different-commits", action="store_true",
                   help="calibrate from runs of different commits too (their differences are then changes of "
                        "the code as well as noise, so the detectable change is overstated)")
    c.set_defaults(func=cmd_calibrate)


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name)).strip("-.").lower()[:80]


def cmd_calibrate(args) -> int:
    import subprocess
    import tempfile

    from workloads.hardware import machine_name
    from ..results.fileio import write_json
    from ..regress.calibration import calibrate
    from ..results.records import load
    from ..regress.rules import load_config

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
    commits = sorted({(r.commit or "?")[:12] for r in runs})
    if len(commits) > 1:
        if not args.allow_different_commits:
            raise SpikeflopsError(f"the runs are of {len(commits)} commits ({', '.join(commits)}): A/A runs are "
                                  "of one commit (--allow-different-commits to calibrate from them anyway)")
        print(f"spikeflops calibrate: WARNING: runs of {len(commits)} commits ({', '.join(commits)}): their "
              "differences include code changes, not only noise", file=sys.stderr)
    result = calibrate(runs, config)
    # named after the machine that made the runs, which need not be this one
    made_on = _file_safe(runs[0].machine.get("machine") or "") or machine_name()
    out = Path(args.out) if args.out else Path("spikeflops-out") / "calibration" / f"{made_on}-{result['harness']}.json"
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
