"""`spikeflops error-rates`: the timing verdict's own error rates on this machine, measured.

A real step (a GPT case, on the pinned CPU thread count) is compared with itself (A/A) and with
itself plus an injected cost (a busy-wait of a fixed share of the step's median time, 2-20 %),
each comparison in ABBA rounds judged by exactly the statistic `spikeflops compare` uses
(:func:`interleave.judge_pairs`, the shipped rule and alpha). The rule and its settings are fixed
before any of these runs (nothing is tuned on them: the rates are out of sample). Per injected
size: how often the verdict was "regressed", "undecided", "unchanged" and "not judged"; the
false-alarm rate (A/A regressed) and each detection rate with a Wilson 95 % interval; and the
smallest size detected in at least 95 % of comparisons. Rounds run in this process, back to back:
`compare`'s fresh process per round adds start-up noise this does not see.
"""

from __future__ import annotations

import sys
import time

from workloads.errors import SpikeflopsError
from ..argtypes import output_file, positive_int, positive_number

FORMAT = "spikeflops-error-rates/1"
DEFAULT_SIZES = (0.0, 0.02, 0.05, 0.10, 0.20)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "error-rates", help="measure the timing verdict's false-alarm and detection rates on this machine",
        description="A/A comparisons of a real GPT step, and the same step with injected slowdowns, judged by "
                    "`spikeflops compare`'s paired statistic: false-alarm rate, detection rate per size (Wilson "
                    "95%% intervals) and the smallest slowdown detected 95%% of the time. Writes JSON.")
    p.add_argument("--trials", type=positive_int, default=40, help="comparisons per injected size (default 40)")
    p.add_argument("--rounds", type=positive_int, default=5, help="ABBA rounds per comparison (default 5, as CI)")
    p.add_argument("--max-rounds", type=positive_int, default=None, metavar="N",
                   help="add rounds while undecided, up to N, as `compare --max-rounds` (default: --rounds)")
    p.add_argument("--budget", type=positive_number, default=None,
                   help="seconds of steps per side per round (default: the ci profile's timing budget, as "
                        "`spikeflops run` in `compare`)")
    p.add_argument("--sizes", default=",".join(f"{s:g}" for s in DEFAULT_SIZES),
                   help="injected slowdowns as fractions of the step, comma-separated (0 = A/A)")
    p.add_argument("--size", dest="model_size", default="gpt-nano", help="GPT size of the step (default gpt-nano)")
    p.add_argument("--variant", default="fast", choices=("book", "fast"))
    p.add_argument("--mode", default="forward", choices=("forward", "train"))
    p.add_argument("--batch", type=positive_int, default=4)
    p.add_argument("--config", default=None, help="thresholds file (default: the shipped gate.toml)")
    p.add_argument("--out", type=output_file, default=None, help="write the table as JSON here")
    p.set_defaults(func=cmd_error_rates)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion: honest at 0 of 40, where the normal interval says [0, 0]."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest, norm

    interval = binomtest(successes, n).proportion_ci(confidence_level=1 - 2 * norm.sf(z), method="wilson")
    return float(interval.low), float(interval.high)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _side(fn, extra: float, budget: float) -> float:
    """Median seconds per call of ``fn`` (plus ``extra`` busy seconds), calls until ``budget`` is spent (>= 3)."""
    import statistics

    samples: list[float] = []
    while len(samples) < 3 or sum(samples) < budget:
        t0 = time.perf_counter()
        fn()
        if extra:
            _spin(extra)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def measure_error_rates(fn, sizes, trials: int, rounds: int, budget: float, rule, alpha: float,
                        floor: float, progress=None, max_rounds: int | None = None) -> dict:
    """The table for a prepared callable ``fn`` (see the module's docstring)."""
    max_rounds = max(rounds, max_rounds or rounds)
    looks = max_rounds - rounds + 1
    from workloads.load import CPU_THREADS, LoadProbe
    from .interleave import judge_pairs

    step = _side(fn, 0.0, budget)                       # the injected costs are shares of this median
    rows = []
    for size in sizes:
        counts = {"regressed": 0, "undecided": 0, "unchanged": 0, "improved": 0, "not judged": 0}
        shares = []
        used = []
        for trial in range(trials):
            pairs, round_shares = [], []
            for r in range(max_rounds):
                got = {}
                for which in ((0, 1) if r % 2 == 0 else (1, 0)):            # ABBA, as compare
                    with LoadProbe(threads=CPU_THREADS) as probe:
                        got[which] = _side(fn, size * step if which == 1 else 0.0, budget)
                    got[f"share{which}"] = probe.record.cpu_share
                pairs.append((got[0], got[1]))
                round_shares.append((got["share0"], got["share1"]))
                if r + 1 < rounds:
                    continue
                v = judge_pairs("error-rates", rule.name, "seconds", (), pairs, rule, alpha, looks=looks,
                                shares=round_shares, floor=floor)
                if v.status != "undecided":                  # as compare: add rounds only while undecided
                    break
            used.append(len(pairs))
            shares += [s for pair in round_shares for s in pair]
            counts[v.status] = counts.get(v.status, 0) + 1
            if progress:
                progress(f"  +{100 * size:g}%: comparison {trial + 1}/{trials}: {v.status}")
        judged = trials - counts["not judged"]
        flagged = counts["regressed"]
        low, high = wilson(flagged, judged)
        rows.append({"injected": size, "comparisons": trials, **{k.replace(" ", "_"): n for k, n in counts.items()},
                     "flagged_rate": flagged / judged if judged else None, "flagged_rate_ci95": [low, high],
                     "cpu_share_median": sorted(shares)[len(shares) // 2] if shares else None,
                     "rounds_mean": sum(used) / len(used)})
    detected = [r["injected"] for r in rows if r["injected"] > 0 and r["flagged_rate"] is not None
                and r["flagged_rate"] >= 0.95]
    return {"format": FORMAT, "step_seconds": step, "rounds": rounds, "max_rounds": max_rounds, "budget_s": budget,
            "trials": trials,
            "rule": {"metric": "GPTStep.time_step", "threshold": rule.threshold, "alpha": alpha,
                     "contended_floor": floor},
            "rows": rows, "smallest_detected_at_95": min(detected) if detected else None}


def cmd_error_rates(args) -> int:
    from workloads.gpt.case import GPTCase
    from workloads.gpt.workload import prepare
    from workloads.hardware import machine_facts
    from workloads.load import CPU_THREADS, intra_op_threads
    from workloads.profiles import get_profile
    from ..resultsio import write_json
    from ..tables import format_table
    from .rules import load_config

    try:
        sizes = tuple(float(s) for s in args.sizes.split(",") if s.strip())
    except ValueError:
        raise SpikeflopsError(f"--sizes {args.sizes!r}: fractions such as 0,0.05,0.1") from None
    if not sizes or any(not (0 <= s < 10) for s in sizes):
        raise SpikeflopsError(f"--sizes {args.sizes!r}: each slowdown must be a fraction in [0, 10)")
    config = load_config(args.config)
    rule = config.rule_for("GPTStep.time_step")
    budget = args.budget or get_profile("ci").timing_budget_s
    max_rounds = max(args.rounds, args.max_rounds or args.rounds)
    case = GPTCase(args.model_size, args.variant, "float32", "cpu", args.mode, batch=args.batch)
    say = (lambda t: print(t, file=sys.stderr, flush=True))
    say(f"spikeflops error-rates: {case.label()}, {len(sizes)} sizes x {args.trials} comparisons x "
        f"{args.rounds}-{max_rounds} rounds x 2 x {budget:g} s: {len(sizes) * args.trials * args.rounds * 2 * budget / 60:.0f}"
        f"-{len(sizes) * args.trials * max_rounds * 2 * budget / 60:.0f} min")
    with intra_op_threads(CPU_THREADS), prepare(case, warmup=2) as step:
        table = measure_error_rates(step.run_synced, sizes, args.trials, args.rounds, budget, rule,
                                    config.alpha, config.contended_floor, progress=say, max_rounds=max_rounds)
    table.update(case=case.to_dict(), machine=machine_facts(), threads=CPU_THREADS,
                 date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if args.out:
        write_json(args.out, table)
    rows = [[f"{100 * r['injected']:g}%" + (" (A/A)" if r["injected"] == 0 else ""), str(r["comparisons"]),
             str(r["regressed"]), str(r["undecided"]), str(r["unchanged"] + r["improved"]), str(r["not_judged"]),
             "-" if r["flagged_rate"] is None else
             f"{100 * r['flagged_rate']:.0f}% ({100 * r['flagged_rate_ci95'][0]:.0f}-{100 * r['flagged_rate_ci95'][1]:.0f}%)",
             "-" if r["cpu_share_median"] is None else f"{r['cpu_share_median']:.2f}",
             f"{r['rounds_mean']:.1f}"] for r in table["rows"]]
    print(f"timing verdict of `spikeflops compare` ({args.rounds}-{max_rounds} rounds of {budget:g} s a side, threshold {100 * rule.threshold:g}%, "
          f"alpha {config.alpha}) on {case.label()}, step {1e3 * table['step_seconds']:.1f} ms")
    print(format_table(["injected", "comparisons", "regressed", "undecided", "unchanged", "not judged",
                        "flagged (Wilson 95%)", "CPU share", "rounds"], rows))
    smallest = table["smallest_detected_at_95"]
    print("smallest slowdown detected in >= 95% of comparisons: "
          + (f"{100 * smallest:g}%" if smallest is not None else "none of those tried"))
    return 0
